"""The dashboard's Starlette app: its pages, its JSON API and the token check.

>>> from starlette.testclient import TestClient  # doctest: +SKIP
>>> app = create_app(lambda table: Reader("exp.db", table=table, persist_summary=False))  # doctest: +SKIP
>>> TestClient(app).get("/api/tables").json()  # doctest: +SKIP
{'default_table': 'default', 'tables': [{'table': 'default', 'rows': 10, 'runs': 2, 'last': '...'}]}

Every endpoint reads; none writes. Errors are ``{"error": message}`` with a 4xx status
(a 500 says only that something failed, with no traceback).
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from urllib.parse import quote as url_quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import ColumnNotFoundError, IntegrityError, NotFoundError, TableNotFoundError, XetrackError
from ..filters import FilterError
from . import data
from .data import BadRequest

if TYPE_CHECKING:
    from .reading import ReaderFactory, TableReader

PAGES = ("/", "/runs", "/run", "/charts", "/compare", "/models")
TOKEN_COOKIE = "xt_ui_token"
# No inline script and no other origin: a logged string that slipped into the page as
# HTML still could not run. Plotly sets style attributes, hence 'unsafe-inline' for styles.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_PREVIEW_BYTES = 5_000_000
_BLOCK = 1 << 20  # bytes of an artifact read at a time
_PREVIEW_ROWS = 50


class Source:
    """One store served read-only: a Reader per table, each opened by ``open_reader``
    (the dashboard's Readers leave the file as it is), and one lock, since a Reader's
    connection serves one query at a time."""

    def __init__(self, open_reader: ReaderFactory, table: str = "default") -> None:
        self.open = open_reader
        self.default_table = table
        self.lock = threading.RLock()
        first = open_reader(table)
        self.db = first.db  # as shown: a PostgreSQL URL without its password
        self._readers: dict[str, TableReader] = {table: first}

    def reader(self, table: str | None) -> TableReader:
        name = table or self.default_table
        if name not in self._readers:
            known = [str(t) for t in self._readers[self.default_table].tables()["table"]]
            if name not in known:
                listed = ", ".join(known) or "none"
                raise TableNotFoundError(f"Table {name!r} not found in {self.db!r}. Tables: {listed}")
            self._readers[name] = self.open(name)
        return self._readers[name]

    def close(self) -> None:
        with self.lock:
            for reader in self._readers.values():
                reader.close()


def _name_of(db: Any) -> str:
    """What the page calls the store (``db`` as a Reader shows it, no password): a file's
    name, or a URL's database."""
    text = str(db)
    if "://" in text:
        return text.split("?", 1)[0].rsplit("/", 1)[-1] or text
    return os.path.basename(text)


def static_path(name: str) -> str:
    """The path of one of the page's own files (``index.html``, ``app.js``, ``app.css``)."""
    return str(resources.files("xetrack.ui").joinpath("static").joinpath(name))


STATIC_TYPES = {"js": "application/javascript", "css": "text/css"}


@functools.lru_cache(maxsize=1)
def static_files() -> frozenset[str]:
    """The names of the page's own scripts and styles: the only static files served."""
    folder = resources.files("xetrack.ui").joinpath("static")
    return frozenset(p.name for p in folder.iterdir() if p.name.rsplit(".", 1)[-1] in STATIC_TYPES)


def plotly_js() -> str:
    """``plotly.min.js`` inside the installed plotly wheel (never a CDN)."""
    import plotly

    path = os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")
    if not os.path.isfile(path):  # pragma: no cover - a broken plotly install
        raise FileNotFoundError(f"plotly.min.js is missing from the plotly package at {path}")
    return path


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)


def answer(body: Any) -> JSONResponse:
    return JSONResponse(body, headers={**SECURITY_HEADERS, "cache-control": "no-store"})


def create_app(
    open_reader: ReaderFactory, table: str = "default", token: str | None = None, hosts: Sequence[str] | None = None
) -> Any:
    """The dashboard over the store whose tables ``open_reader`` opens (a Reader per
    table, :data:`xetrack.ui.ReaderFactory`), read-only, ``table`` shown first.

    With ``token``, every request must carry it: ``?token=...`` (which also sets a
    cookie, so the page's own requests carry it) or the header ``X-XT-Token``. With
    ``hosts``, a request whose Host header names another host is refused (a web page
    that rebinds its own DNS name to 127.0.0.1 cannot read the dashboard).
    """
    source = Source(open_reader, table)

    def run(request: Request, work: Any) -> Any:
        with source.lock:
            reader = source.reader(request.query_params.get("table"))
            return work(reader)

    def required(request: Request, name: str) -> str:
        value = request.query_params.get(name)
        if not value:
            raise BadRequest(f"Missing query parameter {name!r}")
        return value

    def page(request: Request) -> Response:
        return FileResponse(static_path("index.html"), headers=SECURITY_HEADERS, media_type="text/html")

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return FileResponse(plotly_js(), media_type="application/javascript", headers=SECURITY_HEADERS)
        kind = STATIC_TYPES.get(name.rsplit(".", 1)[-1])
        if kind is None or name not in static_files():
            return error(404, f"No static file {name!r}")
        return FileResponse(static_path(name), media_type=kind, headers=SECURITY_HEADERS)

    def api_tables(request: Request) -> Response:
        with source.lock:
            body = data.tables(source.reader(None), source.open)
        return answer({"default_table": source.default_table, "db": _name_of(source.db), "tables": body})

    def api_runs(request: Request) -> Response:
        q = request.query_params
        number, size = data.page_args(q.get("page"), q.get("size"))
        columns = [c for c in (q.get("columns") or "").split(",") if c] or None
        return answer(run(request, lambda r: data.runs_page(r, q.get("filter"), q.get("sort"), number, size, columns)))

    def api_columns(request: Request) -> Response:
        return answer(run(request, data.columns_info))

    def api_scatter(request: Request) -> Response:
        q = request.query_params
        x, y = required(request, "x"), required(request, "y")
        return answer(run(request, lambda r: data.scatter(r, q.get("filter"), x, y)))

    def api_compare(request: Request) -> Response:
        ids = request.query_params.getlist("run")
        return answer(run(request, lambda r: data.compare(r, ids)))

    def api_run(request: Request) -> Response:
        track_id = required(request, "run")
        return answer(run(request, lambda r: data.run_summary(r, track_id)))

    def api_rows(request: Request) -> Response:
        q = request.query_params
        track_id = required(request, "run")
        number, size = data.page_args(q.get("page"), q.get("size"))
        after = None if q.get("after") in (None, "") else data.int_arg("after", q.get("after"), 0)
        return answer(run(request, lambda r: data.run_rows(r, track_id, after, number, size)))

    def api_curve(request: Request) -> Response:
        q = request.query_params
        track_id, metric = required(request, "run"), required(request, "metric")
        after = data.int_arg("after", q.get("after"), 0)
        points = data.int_arg("points", q.get("points"), data.MAX_POINTS)
        if not 2 <= points <= data.MAX_POINTS:
            raise BadRequest(f"points must be between 2 and {data.MAX_POINTS}, got {points}")
        start = None if q.get("start") in (None, "") else data.int_arg("start", q.get("start"), 0)
        return answer(run(request, lambda r: data.curve(r, track_id, metric, q.get("x") or None, after, points, start)))

    def api_curve_csv(request: Request) -> Response:
        q = request.query_params
        ids, metric = q.getlist("run"), required(request, "metric")
        if not ids:
            raise BadRequest("Pass one or more runs: ?run=ID")
        x = q.get("x") or None
        # Check the names now, so that a bad one is a 400 and not a broken download.
        run(request, lambda r: data.curve(r, ids[0], metric, x, limit=2))
        table = q.get("table")

        def lines() -> Iterator[str]:
            with source.lock:
                text = list(data.curve_csv(source.reader(table), ids, metric, x))
            yield from text

        filename = f"{metric}.csv"
        return StreamingResponse(
            lines(), media_type="text/csv", headers={**SECURITY_HEADERS, "content-disposition": disposition(filename)}
        )

    def api_models(request: Request) -> Response:
        return answer(run(request, lambda r: data.json_frame(r.models())))

    def find_artifact(request: Request) -> tuple[str, str | None, str, Any]:
        """(hash or name, track_id, its name, its listing row) of the artifact asked for."""
        q = request.query_params
        key = q.get("hash") or q.get("name")
        if not key:
            raise BadRequest("Pass the artifact's hash=... or name=... (with run=...)")
        track_id = q.get("run") or None

        def look(reader: Any) -> Any:
            listing = reader.artifacts(track_id)
            column = "hash" if q.get("hash") else "name"
            rows = listing[listing[column] == key]
            if rows.empty:
                where = f"run {track_id!r}" if track_id else f"table {reader.table_name!r}"
                raise NotFoundError(f"No artifact with {column} {key!r} in {where}")
            return rows.iloc[-1]

        row = run(request, look)
        return str(row["hash"]), track_id, str(row["name"]), row

    def api_artifact(request: Request) -> Response:
        found, track_id, name, row = find_artifact(request)
        reader_table = request.query_params.get("table")
        inline = request.query_params.get("inline") == "1" and name.lower().endswith(".png")
        with source.lock:
            stream = source.reader(reader_table).open_artifact(found, track_id)
            try:
                # The first block is read before the headers go out: an artifact that fits
                # in it is verified by then, and a corrupt one is an error, not a download.
                first = stream.read(_BLOCK)
                more = stream.read(1) if len(first) < _BLOCK else b""  # b"": the end, verified
                last = len(first) < _BLOCK and not more
                first += more
            except BaseException:
                stream.close()
                raise

        def chunks() -> Iterator[bytes]:
            try:
                yield first
                while not last:
                    with source.lock:
                        block = stream.read(_BLOCK)  # the hash is checked when the end is read
                    if not block:
                        return
                    yield block
            finally:
                stream.close()

        headers = {
            **SECURITY_HEADERS,
            "x-content-hash": found,
            "content-disposition": disposition(name, inline),
        }
        if known(row["size"]):
            headers["content-length"] = str(int(row["size"]))
        return StreamingResponse(
            chunks(), media_type="image/png" if inline else "application/octet-stream", headers=headers
        )

    def api_artifact_preview(request: Request) -> Response:
        found, track_id, name, row = find_artifact(request)
        lowered = name.lower()
        if not lowered.endswith((".csv", ".parquet")):
            raise BadRequest(f"Only .csv and .parquet artifacts have a table preview, not {name!r}")
        if known(row["size"]) and int(row["size"]) > _PREVIEW_BYTES:
            raise BadRequest(f"{name!r} is over {_PREVIEW_BYTES} bytes: download it instead")
        import io

        import pandas as pd

        with source.lock:
            raw = source.reader(request.query_params.get("table")).artifact(found, track_id)
        try:
            frame = pd.read_csv(io.BytesIO(raw)) if lowered.endswith(".csv") else pd.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # noqa: BLE001 - the readers raise many kinds on a file that is not what its name says
            raise BadRequest(f"Cannot read {name!r} as a table: {exc}") from None
        body = data.json_frame(frame.head(_PREVIEW_ROWS))
        body["total"] = len(frame)
        return answer(body)

    routes = [Route(path, guarded(page)) for path in PAGES] + [
        Route("/static/{name}", guarded(static)),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/tables", guarded(api_tables)),
        Route("/api/runs", guarded(api_runs)),
        Route("/api/columns", guarded(api_columns)),
        Route("/api/scatter", guarded(api_scatter)),
        Route("/api/compare", guarded(api_compare)),
        Route("/api/run", guarded(api_run)),
        Route("/api/rows", guarded(api_rows)),
        Route("/api/curve", guarded(api_curve)),
        Route("/api/curve.csv", guarded(api_curve_csv)),
        Route("/api/artifact", guarded(api_artifact)),
        Route("/api/artifact/preview", guarded(api_artifact_preview)),
        Route("/api/models", guarded(api_models)),
    ]

    async def on_error(request: Request, exc: Exception) -> Response:
        return error(*status_of(exc))

    app = Starlette(routes=routes, exception_handlers={Exception: on_error, HTTPException: on_error})
    app.state.source = source
    gated: Any = app if token is None else TokenGate(app, token)
    return gated if hosts is None else HostGate(gated, hosts)


def guarded(endpoint: Any) -> Any:
    """``endpoint`` answering any exception as a JSON error, never with a traceback."""

    @functools.wraps(endpoint)
    def wrapper(request: Request) -> Response:
        try:
            return endpoint(request)
        except Exception as exc:
            status, message = status_of(exc)
            if status >= 500:
                logging.getLogger("xetrack.ui").exception("%s failed", request.url.path)
            return error(status, message)

    return wrapper


def status_of(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and message a failed request answers with."""
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, IntegrityError):  # stored bytes that fail their hash: no fault of the request
        return 500, str(exc)
    if isinstance(exc, (BadRequest, FilterError, ColumnNotFoundError)):
        return 400, str(exc)
    if isinstance(exc, (TableNotFoundError, NotFoundError)):
        return 404, str(exc)
    if isinstance(exc, (XetrackError, ValueError, TypeError)):
        return 400, str(exc)
    if isinstance(exc, NotImplementedError):  # a feature this store's engine lacks (it says which)
        return 501, str(exc)
    return 500, f"The server could not answer: {type(exc).__name__}"


def known(value: Any) -> bool:
    """False for None, NaN and pandas' NA."""
    import pandas as pd

    return bool(pd.notna(value))


def disposition(filename: str, inline: bool = False) -> str:
    """A Content-Disposition header naming ``filename`` safely (RFC 6266 / 5987)."""
    base = filename.rsplit("/", 1)[-1] or "artifact"
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "._-+ ") else "_" for c in base)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{url_quote(base, safe='')}"


class TokenGate:
    """ASGI middleware: refuse (403) any request without the token.

    The token comes as ``?token=``, as the ``X-XT-Token`` header, or as the cookie that a
    request with a right ``?token=`` sets, so that the page's own requests carry it.
    """

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except CookieError:  # a malformed Cookie header holds no token
            pass
        given = (query.get("token") or [None])[0]
        offered = [given, headers.get("x-xt-token"), cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else None]
        if not any(o is not None and hmac.compare_digest(o.encode(), self.token.encode()) for o in offered):
            response = error(403, "This dashboard needs its token: open the URL that `xt ui` printed (?token=...)")
            await response(scope, receive, send)
            return
        if given is None:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                value = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", value.encode())]}
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
                response = error(
                    400, f"Unexpected Host header {host!r}: open the dashboard through the URL `xt ui` printed"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
