"""The dashboard's guards: ASGI middleware around its Starlette app (docs/ui.md).

- :class:`SecurityHeaders` puts the security headers on every answer, the guards' own
  refusals and Starlette's default ones included;
- :class:`HostGate` refuses a Host header that names another host (DNS rebinding);
- :class:`TokenGate` refuses a request without the token, and takes the token out of
  the address bar: a page opened with a right ``?token=`` is sent, with the cookie set,
  to the same address without it.

>>> gated = TokenGate(starlette_app, "s3cret", pages=("/runs",))  # doctest: +SKIP
>>> app = SecurityHeaders(gated, {"x-frame-options": "DENY"})  # doctest: +SKIP
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, Response

#: The token cookie's name; the port the server listens on is added to it
#: (``xt_ui_token_8080``), since a browser sends a host's cookies to all its ports.
TOKEN_COOKIE = "xt_ui_token"


def cookie_name(scope: Any) -> str:
    """The token cookie of the server that ``scope`` reached: ``xt_ui_token_<port>``."""
    server = scope.get("server") or (None, None)
    port = server[1] if len(server) > 1 else None
    return f"{TOKEN_COOKIE}_{int(port)}" if port is not None else TOKEN_COOKIE


class SecurityHeaders:
    """ASGI middleware: every HTTP answer carries ``headers`` (those it does not set itself)."""

    def __init__(self, app: Any, headers: Mapping[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                missing = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *missing]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TokenGate:
    """ASGI middleware: refuse (403) any request without the token.

    The token comes as ``?token=``, as the ``X-XT-Token`` header, or as the cookie
    (:func:`cookie_name`) that a request with a right ``?token=`` sets, so that the
    page's own requests carry it. A GET of one of ``pages`` with a right ``?token=`` is
    answered 303 to the same address without the token: it stays out of the history
    and out of the links the user copies.
    """

    def __init__(self, app: Any, token: str, pages: Sequence[str] = ()) -> None:
        self.app = app
        self.token = token
        self.pages = frozenset(pages)
        self.state = app.state

    def right(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered.encode(), self.token.encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_query = scope.get("query_string", b"").decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        # Parsed as browsers do: another site's odd cookie on this host hides no token.
        cookies = cookie_parser(headers.get("cookie", ""))
        name = cookie_name(scope)
        given = (parse_qs(raw_query).get("token") or [None])[0]
        kept = self.right(headers.get("x-xt-token")) or self.right(cookies.get(name))
        if not (self.right(given) or kept):
            response: Response = JSONResponse(
                {"error": "This dashboard needs its token: open the URL that `xt ui` printed (?token=...)"},
                status_code=403,
            )
            await response(scope, receive, send)
            return
        if not self.right(given):
            await self.app(scope, receive, send)
            return
        set_cookie = f"{name}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        if scope.get("method") in ("GET", "HEAD") and scope.get("path") in self.pages:
            rest = "&".join(p for p in raw_query.split("&") if p and unquote_plus(p.split("=", 1)[0]) != "token")
            location = scope["path"] + (f"?{rest}" if rest else "")
            response = Response(
                status_code=303,
                headers={"location": location, "set-cookie": set_cookie, "cache-control": "no-store"},
            )
            await response(scope, receive, send)
            return

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", set_cookie.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


class HostGate:
    """ASGI middleware: refuse (400) a request whose Host header is not one of ``hosts``."""

    def __init__(self, app: Any, hosts: Sequence[str]) -> None:
        self.app = app
        self.hosts = {h.lower() for h in hosts}
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers", []))
            host = headers.get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.hosts:
                response = JSONResponse(
                    {"error": f"Unexpected Host header {host!r}: open the dashboard through the URL `xt ui` printed"},
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


__all__ = ["HostGate", "SecurityHeaders", "TOKEN_COOKIE", "TokenGate", "cookie_name"]
