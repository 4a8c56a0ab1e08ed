"""``xt ui``: a local dashboard over one database file (docs/ui.md).

>>> Reader("exp.db").ui()  # doctest: +SKIP
'http://127.0.0.1:8080/runs?table=default'

The server is Starlette on uvicorn, from the ``ui`` extra. It binds 127.0.0.1 unless
told otherwise; on any other address it makes up a token and refuses requests without it.

The dashboard reads through :class:`~xetrack.Reader`'s public calls, on Readers that the
caller's ``open_reader(table)`` opens, one per table asked for; it never imports the
Reader itself (``Reader.ui()`` and ``xt ui`` hand it theirs):

>>> from xetrack import Reader
>>> open_reader = lambda table: Reader("exp.db", table=table, persist_summary=False)
>>> serve_in_thread(open_reader).url  # doctest: +SKIP
'http://127.0.0.1:41737/runs?table=default'
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .reading import ReaderFactory, TableReader

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
INSTALL_HINT = "The dashboard needs the 'ui' extra: pip install 'xetrack[ui]'"


def require_extra() -> None:
    """Raise ImportError naming the pip command when starlette/uvicorn/plotly are missing."""
    for module in ("starlette", "uvicorn", "plotly"):
        try:
            __import__(module)
        except ImportError:
            raise ImportError(f"{INSTALL_HINT} ({module} is not installed)") from None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1 and localhost: the addresses only this machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (``port=0``: a free one), made before the URL is
    printed, so that the URL names the real port and a taken port is a clear error."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise OSError(
            f"Cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port, or --port 0 for a free one"
        ) from None
    sock.set_inheritable(True)
    return sock


@dataclass
class Dashboard:
    """A dashboard served in a background thread; ``url`` opens it, ``stop()`` ends it."""

    url: str
    server: Any = field(repr=False)
    thread: threading.Thread = field(repr=False)
    app: Any = field(default=None, repr=False)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.app is not None:
            self.app.state.source.close()  # its warming thread and its Readers

    def _repr_html_(self) -> str:
        # In a notebook: a link. The dashboard refuses to be framed by any page
        # (frame-ancestors 'none', X-Frame-Options DENY), so an IFrame would stay blank.
        from html import escape

        url = escape(self.url)
        return f'<a href="{url}" target="_blank" rel="noopener">Open the xetrack dashboard: {url}</a>'


def prepare(
    open_reader: ReaderFactory, table: str = "default", host: str = "127.0.0.1", port: int = 8080
) -> tuple[Any, str, Any, socket.socket]:
    """(uvicorn server, URL, app, bound socket) for the store whose tables ``open_reader``
    opens; ``port=0`` picks a free port. Serve with ``server.run(sockets=[sock])``."""
    require_extra()
    import uvicorn

    from .app import create_app

    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535, got {port!r}")
    token = None if is_loopback(host) else secrets.token_urlsafe(18)
    # On loopback, the Host header must name this machine; elsewhere the token guards it.
    hosts = (*LOOPBACK_NAMES, host.lower(), f"[{host.lower()}]") if is_loopback(host) else None
    app = create_app(open_reader, table, token=token, hosts=hosts)
    sock = listen(host, port)
    port = int(sock.getsockname()[1])
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if host in ("0.0.0.0", "::"):
        shown = socket.gethostname()
    url = f"http://{shown}:{port}/runs?table={quote(table, safe='')}"
    if token:
        url += f"&token={token}"
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    return uvicorn.Server(config), url, app, sock


def serve_in_thread(
    open_reader: ReaderFactory, table: str = "default", host: str = "127.0.0.1", port: int = 0
) -> Dashboard:
    """Start the dashboard in a daemon thread and return once it accepts connections
    (``open_reader``: see :data:`ReaderFactory`).

    >>> serve_in_thread(lambda table: Reader("exp.db", table=table, persist_summary=False)).url  # doctest: +SKIP
    'http://127.0.0.1:41737/runs?table=default'
    """
    server, url, app, sock = prepare(open_reader, table, host, port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="xetrack-ui", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"The dashboard did not start on {host}:{server.config.port}")
        time.sleep(0.02)
    return Dashboard(url, server, thread, app)


__all__ = [
    "Dashboard",
    "INSTALL_HINT",
    "ReaderFactory",
    "TableReader",
    "is_loopback",
    "listen",
    "prepare",
    "require_extra",
    "serve_in_thread",
]
