"""Fixtures shared by the test files. A file may define its own ``db`` to name its file."""

import pytest


@pytest.fixture(params=["sqlite", "duckdb"])
def engine(request):
    """Both engines, for tests of anything that touches storage."""
    return request.param


@pytest.fixture
def db(tmp_path):
    """A path for a fresh database file."""
    return str(tmp_path / "exp.db")


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server for the whole session (see tests/pg_server.py); skips,
    naming the Debian package, on a machine without it."""
    from pg_server import PACKAGE_HINT, PgServer, find_bin

    if find_bin("initdb") is None or find_bin("pg_ctl") is None:
        pytest.skip(PACKAGE_HINT)
    server = PgServer.start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server):
    """The URL of a fresh, empty database on the session's server."""
    return pg_server.create_database()


@pytest.fixture(params=["sqlite", "postgres"])
def engine_db(request, tmp_path):
    """The same store on each engine: a SQLite path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "exp.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def chromium_browser():
    """One headless Debian Chromium for every browser test of the session: Playwright's sync
    API allows one running instance per thread."""
    import os

    path = "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.skip(f"no Chromium at {path}: install the Debian package 'chromium' (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python: pip install 'xetrack[dev]'")
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=args, headless=True)
        yield browser
        browser.close()


# -- the dashboard's browser tests (test_ui_browser/_charts/_workspace): each module's
# ``made`` fixture makes its file; these serve it and open pages on it.
@pytest.fixture(scope="module")
def base(made):
    """The dashboard over the module's ``made["db"]``, served from a thread: its address."""
    from xetrack import Reader
    from xetrack.ui import serve_in_thread

    dashboard = serve_in_thread(lambda table: Reader(made["db"], table=table, persist_summary=False), port=0)
    yield dashboard.url.split("/runs")[0]
    dashboard.stop()


@pytest.fixture(scope="session")
def browser(chromium_browser):
    return chromium_browser


@pytest.fixture
def page(browser, base):
    """A fresh page that records every request and dialog; none may leave the server."""
    from browser_pages import check_page, open_page

    context, page = open_page(browser, base)
    yield page
    check_page(context, page, base)
