"""The dashboard's guards (issue 23): security headers on every answer, a token cookie per
port, the token out of the address bar, 400 for numbers out of range and for filters too
deep or too long. TestClient for headers and statuses; real servers where a port matters;
Chromium where the address bar does."""

import math
import os
import warnings
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

pytest.importorskip("starlette", reason="the ui extra: pip install 'xetrack[ui]'")

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

import httpx

from xetrack import Reader, Tracker
from xetrack.filters import MAX_COMPARISONS, MAX_LENGTH, MAX_NESTING, FilterError
from xetrack.ui import serve_in_thread
from xetrack.ui.app import PAGES, create_app
from xetrack.ui.data import MAX_INT, MAX_PAGE, MAX_POINTS

XSS = "<img src=x onerror=alert(1)>"
TOKEN = "s3cret-token"
CHROMIUM = "/usr/bin/chromium"
MODELS = [("rf", 0.1), ("rf", 0.3), ("nn", 0.01), ("nn", 0.05), (XSS, 0.2)]


def opener(db):
    return lambda table: Reader(db, table=table, persist_summary=False)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Runs of two models and one whose name is markup; a run id that is markup; artifacts."""
    db = str(tmp_path_factory.mktemp("security") / "guarded.db")
    ids = []
    for model, lr in MODELS:
        with Tracker(db, params={"model": model, "lr": lr}) as run:
            for step in range(20):
                run.log({"step": step, "loss": math.exp(-lr * step)})
            run.log_artifact(b"a,b\n1,2\n", name="data.csv")
            ids.append(run.track_id)
    with Tracker(db, params={"model": "named", "lr": 0.7}, track_id=XSS) as run:
        run.log({"step": 0, "loss": 1.0})
        run.log_artifact(b"\x89PNG\r\n\x1a\nfake", name="plot.png")
        run.log_artifact(b"x", name=XSS + ".txt")
    return {"db": db, "ids": ids, "runs": len(MODELS) + 1}


@pytest.fixture(scope="module")
def client(made):
    with TestClient(create_app(opener(made["db"]))) as c:
        yield c


@pytest.fixture(scope="module")
def guarded(made):
    """The app behind both gates, as `xt ui --host` serves it (token) and as loopback does (hosts)."""
    app = create_app(opener(made["db"]), token=TOKEN, hosts=("testserver",))
    with TestClient(app, follow_redirects=False) as c:
        yield c


# ------------------------------------------------------------------ 1. headers
def route_families(made):
    """(method, path, params, headers, status) of one answer of each kind the app gives."""
    run = made["ids"][0]
    key = {"x-xt-token": TOKEN}
    pages = [("GET", page, {}, key, 200) for page in PAGES]
    return pages + [
        ("GET", "/static/app.js", {}, key, 200),
        ("GET", "/static/app.css", {}, key, 200),
        ("GET", "/static/plotly.min.js", {}, key, 200),
        ("GET", "/static/nope.js", {}, key, 404),
        ("GET", "/favicon.ico", {}, key, 204),
        ("GET", "/api/tables", {}, key, 200),
        ("GET", "/api/runs", {"filter": "model = 'rf'"}, key, 200),
        ("GET", "/api/run", {"run": XSS}, key, 200),
        ("GET", "/api/rows", {"run": run}, key, 200),
        ("GET", "/api/curve", {"run": run, "metric": "loss"}, key, 200),
        ("GET", "/api/curve.csv", {"run": run, "metric": "loss"}, key, 200),
        ("GET", "/api/artifact", {"run": run, "name": "data.csv"}, key, 200),
        ("GET", "/api/artifact", {"run": XSS, "name": "plot.png", "inline": "1"}, key, 200),
        ("GET", "/api/artifact/preview", {"run": run, "name": "data.csv"}, key, 200),
        ("GET", "/api/runs", {"page": "-1"}, key, 400),
        ("GET", "/api/run", {"run": "no-such-run"}, key, 404),
        ("GET", "/api/nowhere", {}, key, 404),
        ("POST", "/api/runs", {}, key, 405),
        ("GET", "/api/runs", {}, {}, 403),  # the token gate
        ("GET", "/api/runs", {}, {**key, "host": "evil.example"}, 400),  # the Host gate
        ("GET", "/runs", {"token": TOKEN}, {}, 303),  # the token leaving the address bar
        ("GET", "/api/runs", {"token": TOKEN}, {}, 200),  # an API call that sets the cookie
    ]


def test_every_answer_carries_the_security_headers(guarded, made):
    seen = []
    for method, path, params, headers, status in route_families(made):
        guarded.cookies.clear()
        response = guarded.request(method, path, params=params, headers=headers)
        where = f"{method} {path} {params} {headers}"
        assert response.status_code == status, (where, response.text[:200])
        csp = response.headers.get_list("content-security-policy")
        assert len(csp) == 1 and "frame-ancestors 'none'" in csp[0] and "script-src 'self'" in csp[0], where
        assert "unsafe-eval" not in csp[0], where  # no page compiles code (parallel coordinates are SVG)
        assert response.headers.get_list("x-frame-options") == ["DENY"], where
        assert response.headers.get_list("cross-origin-resource-policy") == ["same-origin"], where
        assert response.headers.get_list("x-content-type-options") == ["nosniff"], where
        assert response.headers.get_list("referrer-policy") == ["no-referrer"], where
        seen.append(status)
    assert {200, 204, 303, 400, 403, 404, 405} <= set(seen)


def test_an_unguarded_loopback_app_carries_them_too(client):
    for path in ("/runs", "/favicon.ico", "/api/nowhere"):
        response = client.get(path)
        assert response.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path


# --------------------------------------------------- 2. a token cookie per port
@pytest.fixture(scope="module")
def servers(made):
    """Two dashboards as `xt ui --host 0.0.0.0` starts them (a token each), reached on
    127.0.0.1: same host, two ports."""
    started = [serve_in_thread(opener(made["db"]), host="0.0.0.0", port=0) for _ in range(2)]
    for dashboard in started:
        parts = urlsplit(dashboard.url)
        dashboard.port = parts.port
        dashboard.base = f"http://127.0.0.1:{parts.port}"
        dashboard.printed = urlunsplit(parts._replace(netloc=f"127.0.0.1:{parts.port}"))
    yield started
    for dashboard in started:
        dashboard.stop()


def test_the_printed_url_has_the_token(servers):
    for dashboard in servers:
        assert "token=" in dashboard.printed
        assert httpx.get(dashboard.base + "/api/tables", timeout=10).status_code == 403


def test_two_dashboards_on_one_host_keep_their_own_cookie(servers, made):
    first, second = servers
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        assert browser.get(first.printed).status_code == 200
        assert browser.get(second.printed).status_code == 200  # its cookie comes after the first's
        for dashboard in servers:
            answer = browser.get(dashboard.base + "/api/runs")  # the cookie alone carries the token
            assert answer.status_code == 200, answer.text
            assert answer.json()["total"] == made["runs"]
        names = {cookie.name: cookie.value for cookie in browser.cookies.jar}
    tokens = [urlsplit(d.printed).query.split("token=")[1] for d in servers]
    assert names == {f"xt_ui_token_{first.port}": tokens[0], f"xt_ui_token_{second.port}": tokens[1]}


def test_a_cookie_of_another_port_opens_nothing(servers):
    first, second = servers
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        browser.get(first.printed)
        token = browser.cookies.get(f"xt_ui_token_{first.port}")
        assert token
        stolen = {"cookie": f"xt_ui_token_{second.port}={token}"}  # the first's token, the second's name
        assert httpx.get(second.base + "/api/runs", headers=stolen, timeout=10).status_code == 403


# ------------------------------------------------ 3. the token leaves the address bar
def test_a_page_with_the_token_redirects_to_itself_without_it(guarded):
    guarded.cookies.clear()
    rest = f"table=default&run={quote(XSS)}"
    answer = guarded.get(f"/run?{rest}&token={TOKEN}&tab=rows")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/run?{rest}&tab=rows"  # the rest as it came
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"xt_ui_token_80={TOKEN};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert guarded.get("/", params={"token": TOKEN}).headers["location"] == "/"
    assert guarded.get(answer.headers["location"]).status_code == 200  # now by the cookie


def test_api_calls_keep_taking_the_token_in_the_query_or_a_header(guarded):
    guarded.cookies.clear()
    by_query = guarded.get("/api/runs", params={"token": TOKEN})
    assert by_query.status_code == 200 and by_query.json()["total"] > 0
    guarded.cookies.clear()
    assert guarded.get("/api/runs", headers={"x-xt-token": TOKEN}).status_code == 200
    assert guarded.get("/runs", params={"token": "wrong"}).status_code == 403
    old_name = {"cookie": f"xt_ui_token={TOKEN}"}  # the port-less name of before
    assert guarded.get("/api/runs", headers=old_name).status_code == 403


@pytest.fixture(scope="module")
def chromium(request):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python: pip install 'xetrack[dev]'")
    return request.getfixturevalue("chromium_browser"), sync_api.expect  # one Chromium for the session


def test_in_chromium_the_token_leaves_the_address_bar_and_the_page_works(chromium, servers, made):
    browser, expect = chromium
    first, second = servers
    context = browser.new_context()
    requests, dialogs, problems = [], [], []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto(first.printed)
        rows = page.locator("#runs tbody tr")
        expect(rows).to_have_count(made["runs"], timeout=15_000)  # the page's API calls got in
        expect(page.get_by_text(XSS).first).to_be_visible()  # the markup name shows as text
        assert "token" not in page.url and page.url.startswith(first.base + "/runs?table=default")
        hrefs = page.locator("a[href]").evaluate_all("links => links.map(a => a.href)")
        assert hrefs and not [h for h in hrefs if "token" in h]
        # A second dashboard on the same host, in the same browser: the first keeps working.
        other = context.new_page()
        other.on("pageerror", lambda error: problems.append(str(error)))
        other.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        other.goto(second.printed)
        expect(other.locator("#runs tbody tr")).to_have_count(made["runs"], timeout=15_000)
        assert "token" not in other.url
        page.reload()
        expect(rows).to_have_count(made["runs"], timeout=15_000)
        names = {c["name"] for c in context.cookies()}
        assert {f"xt_ui_token_{first.port}", f"xt_ui_token_{second.port}"} <= names
    finally:
        context.close()
    ours = {urlsplit(d.base).netloc for d in servers}
    foreign = [u for u in requests if urlsplit(u).scheme in ("http", "https") and urlsplit(u).netloc not in ours]
    assert foreign == [] and dialogs == [] and problems == [], (foreign, dialogs, problems)


# ---------------------------------------------------------- 4. numbers in range
PAGE_BOUND = (MAX_INT - 1) // 100  # the default size


@pytest.mark.parametrize(
    "path, name, value, bound",
    [
        ("/api/runs", "page", 10**17, PAGE_BOUND),
        ("/api/runs", "page", 10**30, MAX_INT),
        ("/api/runs", "size", 10**30, MAX_INT),
        ("/api/runs", "size", MAX_PAGE + 1, MAX_PAGE),
        ("/api/rows", "page", 10**17, PAGE_BOUND),
        ("/api/rows", "page", PAGE_BOUND + 1, PAGE_BOUND),
        ("/api/rows", "size", 10**30, MAX_INT),
        ("/api/rows", "after", 10**30, MAX_INT),
        ("/api/rows", "after", 2**63, MAX_INT),
        ("/api/curve", "after", 10**30, MAX_INT),
        ("/api/curve", "after", MAX_INT + 1, MAX_INT),
        ("/api/curve", "points", 10**30, MAX_INT),
        ("/api/curve", "points", MAX_POINTS + 1, MAX_POINTS),
        ("/api/curve", "start", 10**30, MAX_INT),
    ],
)
def test_numbers_out_of_range_are_a_400_naming_the_parameter_and_its_bound(client, made, path, name, value, bound):
    params = {"run": made["ids"][0], "metric": "loss", name: str(value)}
    answer = client.get(path, params=params)
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]
    assert message.startswith(name) and str(bound) in message, message


def test_a_number_thousands_of_digits_long_is_a_short_400(client, made):
    answer = client.get("/api/rows", params={"run": made["ids"][0], "after": "9" * 5000})
    assert answer.status_code == 400
    message = answer.json()["error"]
    assert message.startswith("after") and len(message) < 200, message


def test_numbers_up_to_the_bound_are_answered(client, made):
    run = made["ids"][0]
    last_page = client.get("/api/rows", params={"run": run, "page": PAGE_BOUND})
    assert last_page.status_code == 200 and last_page.json()["rows"] == []
    after = client.get("/api/rows", params={"run": run, "after": MAX_INT})
    assert after.status_code == 200 and after.json()["rows"] == []
    curve = client.get("/api/curve", params={"run": run, "metric": "loss", "after": MAX_INT, "start": MAX_INT})
    assert curve.status_code == 200 and curve.json()["x"] == []
    runs = client.get("/api/runs", params={"page": (MAX_INT - 1) // MAX_PAGE, "size": MAX_PAGE})
    assert runs.status_code == 200 and runs.json()["rows"] == []


# ---------------------------------------------------- 5. filters too deep or too long
DEEP = {
    "nests": "(" * 3000 + "lr > 0" + ")" * 3000,
    "nots": "NOT " * 2000 + "lr > 0",
    "just past the limit": "lr > 0 OR lr > 0 AND (" * (MAX_NESTING + 1) + "lr > 0" + ")" * (MAX_NESTING + 1),
}
TOO_MANY = " OR ".join(["lr>0"] * 1100)  # under MAX_LENGTH characters


@pytest.mark.parametrize("kind", sorted(DEEP))
def test_a_filter_nested_too_deep_is_a_400_and_a_filter_error(client, made, kind):
    text = DEEP[kind]
    for path in ("/api/runs", "/api/scatter"):
        answer = client.get(path, params={"filter": text, "x": "lr", "y": "loss"})
        assert answer.status_code == 400, answer.text[:300]
        assert f"deeper than {MAX_NESTING} levels" in answer.json()["error"]
    with pytest.raises(FilterError, match=f"deeper than {MAX_NESTING} levels"):
        Reader(made["db"]).search(text)


def test_a_filter_too_long_or_with_too_many_comparisons_is_a_400(client, made):
    long = "lr > 0 OR " * (MAX_LENGTH // 10) + "model = 'rf'"
    answer = client.get("/api/runs", params={"filter": long})
    assert answer.status_code == 400 and f"the most is {MAX_LENGTH}" in answer.json()["error"]
    assert str(len(long)) in answer.json()["error"]
    answer = client.get("/api/runs", params={"filter": TOO_MANY})
    assert answer.status_code == 400 and f"more than {MAX_COMPARISONS} comparisons" in answer.json()["error"]
    with pytest.raises(FilterError, match="characters long"):
        Reader(made["db"]).search(long)
    with pytest.raises(FilterError, match="comparisons"):
        Reader(made["db"]).search(TOO_MANY)


def models_where(made, keep):
    runs = Reader(made["db"]).runs()
    return sorted(runs[[keep(m, lr) for m, lr in zip(runs["model"], runs["lr"])]]["track_id"])


WITHIN = [
    # At the limits the engine still parses the condition, and answers right.
    (
        "lr > 5 OR lr > 5 AND (" * MAX_NESTING + "model = 'rf'" + ")" * MAX_NESTING,
        lambda m, lr: False,
    ),
    ("lr > 5 OR lr >= 0 AND (" * MAX_NESTING + "model = 'rf'" + ")" * MAX_NESTING, lambda m, lr: m == "rf"),
    ("NOT " * MAX_NESTING + "model = 'nn'", lambda m, lr: (m == "nn") == (MAX_NESTING % 2 == 0)),
    (" OR ".join(["lr < 0"] * (MAX_COMPARISONS - 1) + ["model = 'nn'"]), lambda m, lr: m == "nn"),
    # AND binds tighter than OR, NOT tighter than AND, as before.
    ("model = 'rf' OR model = 'nn' AND lr > 0.02", lambda m, lr: m == "rf" or (m == "nn" and lr > 0.02)),
    ("(model = 'rf' OR model = 'nn') AND lr > 0.02", lambda m, lr: m in ("rf", "nn") and lr > 0.02),
    ("NOT model = 'rf' AND lr > 0.02", lambda m, lr: m != "rf" and lr > 0.02),
    ("NOT (model = 'rf' AND lr > 0.2)", lambda m, lr: not (m == "rf" and lr > 0.2)),
    ("NOT (model = 'rf' OR lr < 0.1) AND NOT NOT lr < 0.5", lambda m, lr: not (m == "rf" or lr < 0.1) and lr < 0.5),
    (f"model = '{XSS}' OR (lr > 0.25 AND (lr < 0.5))", lambda m, lr: m == XSS or 0.25 < lr < 0.5),
]


@pytest.mark.parametrize("where, keep", WITHIN)
def test_filters_within_the_limits_answer_as_written(client, made, where, keep):
    expected = models_where(made, keep)
    assert sorted(Reader(made["db"]).search(where)["track_id"]) == expected
    answer = client.get("/api/runs", params={"filter": where})
    assert answer.status_code == 200, answer.text[:300]
    body = answer.json()
    shown = sorted(row[body["columns"].index("track_id")] for row in body["rows"])
    assert shown == expected


@pytest.fixture(params=["sqlite", "duckdb", "postgres"])
def store(request, tmp_path):
    """The runs of MODELS on each engine: (what Reader and Tracker take, their options)."""
    if request.param == "postgres":
        db, options = request.getfixturevalue("pg_url"), {}
    else:
        db, options = str(tmp_path / "runs.db"), {"engine": request.param}
    for model, lr in MODELS:
        with Tracker(db, params={"model": model, "lr": lr}, **options) as run:
            run.log({"step": 0, "loss": lr})
    return Reader(db, **options)


def test_every_engine_reads_the_conditions_within_the_limits_and_refuses_past_them(store):
    runs = store.runs()
    for where, keep in WITHIN:
        expected = sorted(runs[[keep(m, lr) for m, lr in zip(runs["model"], runs["lr"])]]["track_id"])
        assert sorted(store.search(where)["track_id"]) == expected, where[:80]
    for text in DEEP.values():
        with pytest.raises(FilterError, match="deeper than"):
            store.search(text)
    with pytest.raises(FilterError, match="comparisons"):
        store.search(TOO_MANY)
