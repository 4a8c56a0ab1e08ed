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
import logging
import os
from collections.abc import Iterator, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as url_quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import ColumnNotFoundError, DatabaseError, IntegrityError, NotFoundError, TableNotFoundError, XetrackError
from ..filters import FilterError
from . import curves, data, groups
from .data import BadRequest, TooLarge
from .guards import TOKEN_COOKIE as TOKEN_COOKIE
from .guards import HostGate, SecurityHeaders, TokenGate
from .source import Busy, FileGone, Source

if TYPE_CHECKING:
    from .reading import ReaderFactory

PAGES = ("/", "/runs", "/run", "/charts", "/compare", "/models")
# No inline script and no other origin: a logged string that slipped into the page as
# HTML still could not run. Plotly sets style attributes, hence 'unsafe-inline' for styles.
# No other site may frame the dashboard (clickjacking) or load its files and answers.
# Every answer carries them (guards.SecurityHeaders), the gates' refusals included.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-resource-policy": "same-origin",
}
_PREVIEW_BYTES = 5_000_000
_BLOCK = 1 << 20  # bytes of an artifact read at a time
_PREVIEW_ROWS = 50


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


@functools.lru_cache(maxsize=1)
def plotly_version() -> str:
    """The installed plotly's version: the versioned URL of plotly.min.js names it."""
    from importlib.metadata import version

    return version("plotly")


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
        with source.borrow(request.query_params.get("table")) as reader:
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
        if name == f"plotly-{plotly_version()}.min.js":  # a new plotly is a new URL: kept a year
            immutable = {**SECURITY_HEADERS, "cache-control": "public, max-age=31536000, immutable"}
            return FileResponse(plotly_js(), media_type="application/javascript", headers=immutable)
        kind = STATIC_TYPES.get(name.rsplit(".", 1)[-1])
        if kind is None or name not in static_files():
            return error(404, f"No static file {name!r}")
        return FileResponse(static_path(name), media_type=kind, headers=SECURITY_HEADERS)

    def api_tables(request: Request) -> Response:
        with source.borrow(None) as reader:
            body = data.tables(reader, source.open)
        return answer({"default_table": source.default_table, "db": _name_of(source.db), "tables": body})

    def api_runs(request: Request) -> Response:
        q = request.query_params
        number, size = data.page_args(q.get("page"), q.get("size"))
        columns = [c for c in (q.get("columns") or "").split(",") if c] or None
        return answer(run(request, lambda r: data.runs_page(r, q.get("filter"), q.get("sort"), number, size, columns)))

    def api_columns(request: Request) -> Response:
        return answer(run(request, data.columns_info))

    def api_run_groups(request: Request) -> Response:
        q = request.query_params
        number, size = data.page_args(q.get("page"), q.get("size"))
        by = [g for g in q.getlist("group") if g]
        return answer(run(request, lambda r: groups.groups(r, q.get("filter"), by, q.get("sort"), number, size)))

    def api_run_parallel(request: Request) -> Response:
        q = request.query_params
        return answer(run(request, lambda r: groups.parallel(r, q.get("filter"), q.get("color") or None)))

    def api_images(request: Request) -> Response:
        ids = request.query_params.getlist("run")
        return answer(run(request, lambda r: groups.images(r, ids)))

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
        span = curves.x_range(q.get("xmin"), q.get("xmax"))
        if span is not None:  # a zoomed range, read by the store: min and max per pixel column
            low, high = span
            x = q.get("x") or None
            return answer(run(request, lambda r: curves.curve_range(r, track_id, metric, x, low, high, points)))
        return answer(run(request, lambda r: data.curve(r, track_id, metric, q.get("x") or None, after, points, start)))

    def chart_runs(request: Request) -> curves.RunChoice:
        q = request.query_params
        top = data.int_arg("top", q.get("top"), curves.DEFAULT_TOP)
        return q.getlist("run"), q.get("filter"), q.get("sort"), top

    def curve_points(request: Request) -> int:
        points = data.int_arg("points", request.query_params.get("points"), data.MAX_POINTS)
        if not 2 <= points <= data.MAX_POINTS:
            raise BadRequest(f"points must be between 2 and {data.MAX_POINTS}, got {points}")
        return points

    def api_charts(request: Request) -> Response:
        return answer(run(request, lambda r: curves.chart_setup(r, *chart_runs(request))))

    def api_curves(request: Request) -> Response:
        q = request.query_params
        metric, points, x = required(request, "metric"), curve_points(request), q.get("x") or None
        after = [data.int_arg("after", a, 0) for a in q.getlist("after")]
        start = [data.int_arg("start", a, 0) for a in q.getlist("start")]
        span, runs = curves.x_range(q.get("xmin"), q.get("xmax")), chart_runs(request)
        return answer(run(request, lambda r: curves.curves(r, runs, metric, x, points, after, start, span)))

    def api_group_curves(request: Request) -> Response:
        q = request.query_params
        metric, points, x = required(request, "metric"), curve_points(request), q.get("x") or None
        span = curves.x_range(q.get("xmin"), q.get("xmax"))
        by, band, runs = q.getlist("group"), q.get("band") or "std", chart_runs(request)
        return answer(run(request, lambda r: curves.group_curves(r, runs, metric, by, band, x, points, span)))

    def api_plotly(request: Request) -> Response:
        version = plotly_version()
        return answer({"version": version, "src": f"/static/plotly-{version}.min.js"})

    def api_curve_csv(request: Request) -> Response:
        q = request.query_params
        ids, metric = list(dict.fromkeys(q.getlist("run"))), required(request, "metric")
        if not ids:
            raise BadRequest("Pass one or more runs: ?run=ID")
        if len(ids) > data.MAX_CSV_RUNS:
            raise TooLarge(f"At most {data.MAX_CSV_RUNS} runs per CSV, got {len(ids)}: download them in parts")
        x = q.get("x") or None
        # Check the names and count the points now: a bad name is a 400 and too many
        # points a 413, not a broken download.
        total = run(request, lambda r: data.csv_points(r, ids, metric, x))
        if total > data.MAX_CSV_POINTS:
            raise TooLarge(
                f"These runs hold {total:,} points of {metric!r}; one CSV holds at most {data.MAX_CSV_POINTS:,}: "
                "download fewer runs at a time"
            )
        owned = source.own(q.get("table"))
        reader = owned.__enter__()

        def lines() -> Iterator[str]:
            try:
                yield from data.curve_csv(reader, ids, metric, x)
            finally:
                owned.__exit__(None, None, None)

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
        # Inline only as an image type a browser cannot run (png, jpeg, gif, webp); never svg.
        image = groups.image_type(name) if request.query_params.get("inline") == "1" else None
        inline = image is not None
        owned = source.own(reader_table)  # a Reader of its own: a slow download holds none that requests share
        reader = owned.__enter__()
        try:
            stream = reader.open_artifact(found, track_id)
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
        except BaseException:
            owned.__exit__(None, None, None)
            raise

        def chunks() -> Iterator[bytes]:
            try:
                yield first
                while not last:
                    block = stream.read(_BLOCK)  # the hash is checked when the end is read
                    if not block:
                        return
                    yield block
            finally:
                stream.close()
                owned.__exit__(None, None, None)

        headers = {
            **SECURITY_HEADERS,
            "x-content-hash": found,
            "content-disposition": disposition(name, inline),
        }
        if known(row["size"]):
            headers["content-length"] = str(int(row["size"]))
        return StreamingResponse(chunks(), media_type=image or "application/octet-stream", headers=headers)

    def api_artifact_preview(request: Request) -> Response:
        found, track_id, name, row = find_artifact(request)
        lowered = name.lower()
        if not lowered.endswith((".csv", ".parquet")):
            raise BadRequest(f"Only .csv and .parquet artifacts have a table preview, not {name!r}")
        if known(row["size"]) and int(row["size"]) > _PREVIEW_BYTES:
            raise BadRequest(f"{name!r} is over {_PREVIEW_BYTES} bytes: download it instead")
        import io

        import pandas as pd

        with source.borrow(request.query_params.get("table")) as reader:
            raw = reader.artifact(found, track_id)
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
        Route("/api/runs/groups", guarded(api_run_groups)),
        Route("/api/runs/parallel", guarded(api_run_parallel)),
        Route("/api/images", guarded(api_images)),
        Route("/api/scatter", guarded(api_scatter)),
        Route("/api/compare", guarded(api_compare)),
        Route("/api/run", guarded(api_run)),
        Route("/api/rows", guarded(api_rows)),
        Route("/api/curve", guarded(api_curve)),
        Route("/api/curve.csv", guarded(api_curve_csv)),
        Route("/api/charts", guarded(api_charts)),
        Route("/api/curves", guarded(api_curves)),
        Route("/api/group_curves", guarded(api_group_curves)),
        Route("/api/plotly", guarded(api_plotly)),
        Route("/api/artifact", guarded(api_artifact)),
        Route("/api/artifact/preview", guarded(api_artifact_preview)),
        Route("/api/models", guarded(api_models)),
    ]

    async def on_error(request: Request, exc: Exception) -> Response:
        return error(*status_of(exc))

    app = Starlette(routes=routes, exception_handlers={Exception: on_error, HTTPException: on_error})
    app.state.source = source
    source.keep_warm()
    gated: Any = app if token is None else TokenGate(app, token, pages=PAGES)
    gated = gated if hosts is None else HostGate(gated, hosts)
    return SecurityHeaders(gated, SECURITY_HEADERS)


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
    if isinstance(exc, (IntegrityError, DatabaseError)):  # damaged bytes: no fault of the request
        return 500, str(exc)
    if isinstance(exc, TooLarge):
        return 413, str(exc)
    if isinstance(exc, FileGone):
        return 410, str(exc)
    if isinstance(exc, Busy):
        return 503, str(exc)
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
