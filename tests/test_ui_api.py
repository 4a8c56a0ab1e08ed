"""The dashboard's JSON API (`xt ui`), driven with Starlette's TestClient as the page does."""

import math
import os
import random
import signal
import subprocess
import sys
import time
import warnings

import pytest

pytest.importorskip("starlette", reason="the ui extra: pip install 'xetrack[ui]'")

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from xetrack import Reader, Tracker
from xetrack.ui.app import create_app
from xetrack.ui.data import MAX_POINTS, downsample_indices


def dashboard(db, **options):
    """The app over ``db``, its Readers opened as ``Reader.ui()`` opens them."""
    return create_app(lambda table: Reader(db, table=table, persist_summary=False), **options)


XSS = "<img src=x onerror=alert(1)>"
LONG = 20_000
BIG = os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk of the stream


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A file with finished, failed and XSS-named runs, artifacts, a model and a long run."""
    db = str(tmp_path_factory.mktemp("ui") / "ui.db")
    ids = []
    for model, lr in [("rf", 0.1), ("rf", 0.3), ("nn", 0.01), ("nn", 0.05), (XSS, 0.2)]:
        with Tracker(db, params={"model": model, "lr": lr}) as run:
            for step in range(30):
                loss = math.exp(-lr * step)
                run.log({"step": step, "loss": loss, "accuracy": 1 - loss / 2})
            run.log_artifact(b"a,b\n1,2\n3,4\n", name="data.csv")
            ids.append(run.track_id)
    with Tracker(db, params={"model": "rf", "lr": 0.1}) as run:
        run.log({"step": 0, "loss": 0.5, "accuracy": 0.7})
        big_hash = run.log_artifact(BIG, name="weights.bin")
        run.log_artifact(b"\x89PNG\r\n\x1a\nfake", name="plots/loss.png")
        run.log_artifact(b"x", name=XSS + ".txt")
        run.register_model("iris", {"w": [1, 2]}, alias="production")
        ids.append(run.track_id)
    try:
        with Tracker(db, params={"model": "bad", "lr": 9.0}) as run:
            run.log({"step": 0, "loss": 99.0, "accuracy": 0.0})
            failed = run.track_id
            raise FloatingPointError("loss exploded")
    except FloatingPointError:
        pass
    with Tracker(db, params={"model": "xss", "lr": 1.0}, track_id=XSS) as run:
        run.log({"step": 0, "loss": 1.0, "accuracy": 0.5})
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    values = [rng.gauss(0, 1) for _ in range(LONG)]
    values[rng.randrange(LONG)] = 1e6  # a spike a plain stride would miss
    values[rng.randrange(LONG)] = -1e6
    with Tracker(db, params={"model": "long", "lr": 0.0}) as run:
        run.log_batch([{"step": i, "loss": v} for i, v in enumerate(values)])
        long_id = run.track_id
    return {
        "db": db,
        "ids": ids,
        "failed": failed,
        "big_hash": big_hash,
        "long": long_id,
        "values": values,
        "seed": seed,
    }


@pytest.fixture(scope="module")
def client(made):
    with TestClient(dashboard(made["db"])) as c:
        yield c


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def test_tables_list_rows_runs_and_last_write(client, made):
    body = ok(client.get("/api/tables"))
    (entry,) = [t for t in body["tables"] if t["table"] == "default"]
    reader = Reader(made["db"])
    assert entry["table"] == "default" and body["default_table"] == "default"
    assert entry["rows"] == len(reader) and entry["runs"] == len(reader.runs())
    assert entry["last"] == reader.tail(1)["timestamp"].iloc[0]


def test_columns_say_which_are_params_metrics_and_numbers(client, made):
    body = ok(client.get("/api/columns"))
    assert body["columns"] == Reader(made["db"]).columns
    assert set(body["params"]) == {"model", "lr"}
    assert {"loss", "accuracy"} <= set(body["metrics"])
    assert {"loss", "accuracy", "lr", "step"} <= set(body["numeric"]) and "model" not in body["numeric"]


def test_runs_page_holds_every_run_with_status(client, made):
    body = ok(client.get("/api/runs", params={"size": 100}))
    runs = Reader(made["db"]).runs()
    assert body["total"] == len(runs)
    assert body["all_columns"] == list(runs.columns)
    by_id = {row[0]: dict(zip(body["columns"], row)) for row in body["rows"]}
    assert set(by_id) == set(runs["track_id"])
    assert by_id[made["failed"]]["status"] == "failed"
    assert by_id[made["ids"][0]]["status"] == "finished"


@pytest.mark.parametrize(
    "where",
    ["loss < 0.1", "metrics.loss < 0.1 and params.model = 'rf'", "model = 'nn' OR lr > 1", "params.lr >= 0.2"],
)
def test_filters_match_reader_search(client, made, where):
    body = ok(client.get("/api/runs", params={"filter": where}))
    expected = list(Reader(made["db"]).search(where)["track_id"])
    assert body["total"] == len(expected) > 0
    assert sorted(row[0] for row in body["rows"]) == sorted(expected)


@pytest.mark.parametrize("sort", ["loss", "-loss", "-lr,loss", "model"])
def test_sorting_is_server_side(client, made, sort):
    body = ok(client.get("/api/runs", params={"sort": sort}))
    keys = sort.split(",")
    expected = list(Reader(made["db"]).search(None, order_by=keys)["track_id"])
    assert [row[0] for row in body["rows"]] == expected
    if sort == "-loss":
        losses = [row[body["columns"].index("loss")] for row in body["rows"]]
        assert losses == sorted(losses, reverse=True)


def test_paging_covers_every_run_once(client, made):
    first = ok(client.get("/api/runs", params={"size": 3, "sort": "track_id"}))
    seen = []
    for page in range(math.ceil(first["total"] / 3)):
        body = ok(client.get("/api/runs", params={"size": 3, "page": page, "sort": "track_id"}))
        assert len(body["rows"]) <= 3
        seen += [row[0] for row in body["rows"]]
    assert seen == sorted(Reader(made["db"]).runs()["track_id"])
    assert ok(client.get("/api/runs", params={"size": 3, "page": 99}))["rows"] == []


def test_column_chooser_keeps_track_id_and_the_chosen(client):
    body = ok(client.get("/api/runs", params={"columns": "loss,model"}))
    assert body["columns"] == ["track_id", "loss", "model"]
    assert all(len(row) == 3 for row in body["rows"])


def test_a_parse_error_is_a_400_with_the_search_message(client, made):
    response = client.get("/api/runs", params={"filter": "metrics.loss >"})
    assert response.status_code == 400
    with pytest.raises(ValueError) as raised:
        Reader(made["db"]).search("metrics.loss >")
    assert response.json() == {"error": str(raised.value)}


@pytest.mark.parametrize(
    "path, params, status, words",
    [
        ("/api/runs", {"filter": "nope > 1"}, 400, "nope"),
        ("/api/runs", {"filter": "loss > 1; DROP TABLE x"}, 400, ""),
        ("/api/runs", {"sort": "nope"}, 400, "nope"),
        ("/api/runs", {"sort": "-"}, 400, "sort"),
        ("/api/runs", {"size": "ten"}, 400, "size"),
        ("/api/runs", {"size": "0"}, 400, "size"),
        ("/api/runs", {"page": "-1"}, 400, "page"),
        ("/api/runs", {"columns": "nope"}, 400, "nope"),
        ("/api/runs", {"table": "missing"}, 404, "missing"),
        ("/api/curve", {"metric": "loss"}, 400, "run"),
        ("/api/curve", {"run": "x", "metric": "nope"}, 400, "nope"),
        ("/api/curve", {"run": "x", "metric": "loss", "x": "nope"}, 400, "nope"),
        ("/api/curve", {"run": "x", "metric": "loss", "points": "99999"}, 400, "points"),
        ("/api/curve.csv", {"metric": "loss"}, 400, "run"),
        ("/api/run", {"run": "no-such-run"}, 404, "no-such-run"),
        ("/api/rows", {"run": "x", "after": "abc"}, 400, "after"),
        ("/api/compare", {"run": "no-such-run"}, 404, "no-such-run"),
        ("/api/scatter", {"x": "lr"}, 400, "y"),
        ("/api/scatter", {"x": "lr", "y": "nope"}, 400, "nope"),
        ("/api/artifact", {}, 400, "hash"),
        ("/api/artifact", {"name": "nothing.bin"}, 404, "nothing.bin"),
        ("/api/artifact", {"name": "../../etc/passwd"}, 404, "passwd"),
        ("/api/artifact/preview", {"name": "weights.bin"}, 400, "csv"),
        ("/api/nowhere", {}, 404, ""),
        ("/static/../app.py", {}, 404, ""),
    ],
)
def test_bad_requests_get_a_4xx_json_message_never_a_traceback(client, path, params, status, words):
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text
    if path.startswith("/api"):
        message = response.json()["error"]
        assert words in message


def test_no_endpoint_changes_the_file(made):
    db = made["db"]
    before = Reader(db).to_df()
    stamps = {p: os.stat(p).st_mtime_ns for p in (db, db + "-wal") if os.path.exists(p)}
    with TestClient(dashboard(db)) as c:
        for path in ["/api/tables", "/api/runs", "/api/columns", "/api/models"]:
            ok(c.get(path))
        ok(c.get("/api/run", params={"run": made["ids"][0]}))
        ok(c.get("/api/curve", params={"run": made["ids"][0], "metric": "loss"}))
        assert c.post("/api/runs").status_code == 405
        assert c.delete("/api/run", params={"run": made["ids"][0]}).status_code == 405
    assert {p: os.stat(p).st_mtime_ns for p in stamps} == stamps
    assert Reader(db).to_df().equals(before)


def test_curve_of_a_small_run_is_whole_over_each_x_axis(client, made):
    run = made["ids"][0]
    history = Reader(made["db"]).history("loss", track_id=run)
    body = ok(client.get("/api/curve", params={"run": run, "metric": "loss"}))
    assert body["x"] == list(history["step"]) and body["y"] == pytest.approx(list(history["value"]))
    assert body["n"] == len(history) == 30
    rows = Reader(made["db"]).to_df(track_id=run)
    wall = ok(client.get("/api/curve", params={"run": run, "metric": "loss", "x": "_wall"}))
    assert wall["x"] == list(rows["timestamp"])
    relative = ok(client.get("/api/curve", params={"run": run, "metric": "loss", "x": "_relative"}))
    assert relative["x"][0] == pytest.approx(0.0, abs=0.5) and relative["x"] == sorted(relative["x"])
    over = ok(client.get("/api/curve", params={"run": run, "metric": "loss", "x": "accuracy"}))
    assert over["x"] == pytest.approx(list(rows["accuracy"]))


def test_downsampling_stays_under_the_bound_and_keeps_the_extremes(client, made):
    values = made["values"]
    body = ok(client.get("/api/curve", params={"run": made["long"], "metric": "loss"}))
    assert body["n"] == LONG, f"seed {made['seed']}"
    assert len(body["x"]) <= MAX_POINTS < LONG
    assert max(body["y"]) == max(values) and min(body["y"]) == min(values), f"seed {made['seed']}"
    assert body["x"][0] == 0 and body["x"][-1] == LONG - 1
    assert body["x"] == sorted(body["x"])
    assert all(values[x] == y for x, y in zip(body["x"], body["y"])), f"seed {made['seed']}"


@pytest.mark.parametrize("seed", [random.randrange(2**32) for _ in range(5)])
def test_downsample_keeps_each_buckets_min_and_max(seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    n, limit = int(rng.integers(1, 50_000)), int(rng.integers(4, 5000))
    y = rng.normal(size=n).cumsum()
    chosen = downsample_indices(y, limit)
    assert len(chosen) <= max(limit, 4), f"seed {seed}"
    assert list(chosen) == sorted(set(chosen.tolist())), f"seed {seed}"
    assert y[chosen].max() == y.max() and y[chosen].min() == y.min(), f"seed {seed}"
    if n > 0:
        assert chosen[0] == 0 and chosen[-1] == n - 1, f"seed {seed}"


def test_curve_csv_downloads_every_point(client, made):
    response = client.get("/api/curve.csv", params={"run": [made["long"], made["ids"][0]], "metric": "loss"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "track_id,step,loss"
    assert len(lines) == 1 + LONG + 30
    first = lines[1].split(",")
    assert first[0] == made["long"] and float(first[2]) == made["values"][0]


def test_compare_marks_the_fields_that_differ(client, made):
    a, b = made["ids"][0], made["ids"][1]
    body = ok(client.get("/api/compare", params={"run": [a, b]}))
    assert body["runs"] == [a, b]
    fields = {f["field"]: f for f in body["fields"]}
    assert fields["model"]["values"] == ["rf", "rf"] and not fields["model"]["differs"]
    assert fields["lr"]["values"] == [0.1, 0.3] and fields["lr"]["differs"]


def test_scatter_gives_two_fields_of_the_filtered_runs(client, made):
    body = ok(client.get("/api/scatter", params={"x": "lr", "y": "loss", "filter": "params.model = 'rf'"}))
    runs = Reader(made["db"]).search("params.model = 'rf'")
    assert body["track_id"] == list(runs["track_id"])
    assert body["x"] == list(runs["lr"]) and body["y"] == pytest.approx(list(runs["loss"]))


def test_run_page_has_params_metrics_status_error_artifacts_and_models(client, made):
    failed = ok(client.get("/api/run", params={"run": made["failed"]}))
    assert failed["run"]["status"] == "failed"
    assert failed["error"] == "FloatingPointError: loss exploded"
    assert failed["params"] == {"model": "bad", "lr": 9.0}
    assert failed["metrics"]["loss"] == 99.0
    owner = ok(client.get("/api/run", params={"run": made["ids"][5]}))
    names = [row[owner["artifacts"]["columns"].index("name")] for row in owner["artifacts"]["rows"]]
    assert names == ["weights.bin", "plots/loss.png", XSS + ".txt"]
    assert owner["error"] is None
    model = dict(zip(owner["models"]["columns"], owner["models"]["rows"][0]))
    assert model["name"] == "iris" and model["version"] == 1 and model["aliases"] == ["production"]


def test_rows_are_paged_oldest_first(client, made):
    run = made["long"]
    page = ok(client.get("/api/rows", params={"run": run, "page": 2, "size": 50}))
    assert page["total"] == LONG and len(page["rows"]) == 50
    step = page["columns"].index("step")
    assert [row[step] for row in page["rows"]] == list(range(100, 150))
    # A page's cursor is the run's last row, whatever the page: a poll from it brings only news.
    assert ok(client.get("/api/rows", params={"run": run, "after": page["cursor"]}))["rows"] == []


def test_the_live_cursor_returns_only_the_new_rows(made):
    db = made["db"]
    with Tracker(db, params={"model": "live", "lr": 0.5}) as run:
        run.log({"step": 0, "loss": 1.0})
        with TestClient(dashboard(db)) as c:
            first = ok(c.get("/api/rows", params={"run": run.track_id}))
            assert len(first["rows"]) == 1
            curve = ok(c.get("/api/curve", params={"run": run.track_id, "metric": "loss"}))
            assert ok(c.get("/api/rows", params={"run": run.track_id, "after": first["cursor"]}))["rows"] == []
            other = Tracker(db, params={"model": "other"})
            other.log({"step": 5, "loss": 5.0})  # another run's row is not this run's news
            for step in range(1, 4):
                run.log({"step": step, "loss": 1.0 / (step + 1)})
            fresh = c.get("/api/rows", params={"run": run.track_id, "after": first["cursor"]})
            body = ok(fresh)
            steps = [row[body["columns"].index("step")] for row in body["rows"]]
            assert steps == [1, 2, 3]
            assert body["cursor"] > first["cursor"]
            assert ok(c.get("/api/rows", params={"run": run.track_id, "after": body["cursor"]}))["rows"] == []
            whole = c.get("/api/rows", params={"run": run.track_id, "size": 1000})
            assert len(fresh.content) < len(whole.content)
            more = ok(c.get("/api/curve", params={"run": run.track_id, "metric": "loss", "after": curve["cursor"]}))
            assert more["x"] == [1, 2, 3] and more["y"] == pytest.approx([0.5, 1 / 3, 0.25])
            # With no step column, x is the point's index: new points follow the ones sent.
            with Tracker(db, table="plain", params={"model": "plain"}) as plain:
                plain.log({"loss": 0.9})
                plain.log({"loss": 0.8})
                sent = ok(c.get("/api/curve", params={"table": "plain", "run": plain.track_id, "metric": "loss"}))
                assert sent["x"] == [0, 1] and sent["x_name"] == "index"
                plain.log({"loss": 0.7})
                asked = {"table": "plain", "run": plain.track_id, "metric": "loss", "after": sent["cursor"]}
                counted = ok(c.get("/api/curve", params=asked))
                told = ok(c.get("/api/curve", params={**asked, "start": sent["n"]}))
                assert counted["x"] == told["x"] == [2] and told["y"] == [0.7]
            status = ok(c.get("/api/run", params={"run": run.track_id}))["run"]["status"]
            assert status == "running"
            other.close()


def test_an_artifact_downloads_streamed_with_equal_bytes_and_its_hash(client, made):
    run = made["ids"][5]
    by_name = client.get("/api/artifact", params={"run": run, "name": "weights.bin"})
    assert by_name.status_code == 200
    assert by_name.content == BIG
    assert by_name.headers["x-content-hash"] == made["big_hash"]
    assert by_name.headers["content-type"] == "application/octet-stream"
    assert 'filename="weights.bin"' in by_name.headers["content-disposition"]
    by_hash = client.get("/api/artifact", params={"hash": made["big_hash"]})
    assert by_hash.content == BIG


def test_a_corrupt_artifact_is_an_error_not_a_download(tmp_path):
    import sqlite3

    db = str(tmp_path / "corrupt.db")
    tracker = Tracker(db)
    tracker.log_artifact(b"the real weights", name="model.bin")
    tracker.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE xetrack_chunks SET data = CAST(? AS BLOB) WHERE seq = 0", (b"tampered",))
    with TestClient(dashboard(db)) as c:
        response = c.get("/api/artifact", params={"name": "model.bin"})
    assert response.status_code == 500
    assert "corrupt" in response.json()["error"] and "model.bin" in response.json()["error"]
    assert b"tampered" not in response.content


def test_only_png_shows_inline(client, made):
    run = made["ids"][5]
    png = client.get("/api/artifact", params={"run": run, "name": "plots/loss.png", "inline": "1"})
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    other = client.get("/api/artifact", params={"run": run, "name": XSS + ".txt", "inline": "1"})
    assert other.headers["content-type"] == "application/octet-stream"
    assert other.headers["content-disposition"].startswith("attachment")
    assert "<" not in other.headers["content-disposition"].split(";")[1]


def test_a_small_csv_artifact_previews_as_a_table(client, made):
    body = ok(client.get("/api/artifact/preview", params={"run": made["ids"][0], "name": "data.csv"}))
    assert body["columns"] == ["a", "b"] and body["rows"] == [[1, 2], [3, 4]] and body["total"] == 2


def test_models_registry(client, made):
    body = ok(client.get("/api/models"))
    models = Reader(made["db"]).models()
    assert len(body["rows"]) == len(models) == 1
    row = dict(zip(body["columns"], body["rows"][0]))
    assert row["name"] == "iris" and row["track_id"] == made["ids"][5] and row["aliases"] == ["production"]


def test_the_token_is_required_when_set(made):
    with TestClient(dashboard(made["db"], token="s3cret")) as c:
        for path in ["/api/runs", "/runs", "/static/app.js"]:
            refused = c.get(path)
            assert refused.status_code == 403 and "token" in refused.json()["error"]
        assert c.get("/api/runs", params={"token": "wrong"}).status_code == 403
        assert c.get("/api/runs", headers={"x-xt-token": "wrong"}).status_code == 403
        assert c.get("/api/runs", headers={"x-xt-token": "s3cret"}).status_code == 200
        page = c.get("/runs", params={"token": "s3cret"}, follow_redirects=False)  # to /runs, the token in a cookie
        assert page.status_code == 303 and "xt_ui_token_80=s3cret" in page.headers["set-cookie"]
        assert "HttpOnly" in page.headers["set-cookie"]
        assert c.get("/api/runs").status_code == 200  # the cookie now carries it


def test_on_loopback_a_foreign_host_header_is_refused(made):
    app = dashboard(made["db"], hosts=("127.0.0.1", "localhost"))
    with TestClient(app, base_url="http://127.0.0.1:8080") as c:
        assert c.get("/api/tables").status_code == 200
        refused = c.get("/api/tables", headers={"host": "evil.example:8080"})
        assert refused.status_code == 400 and "Host" in refused.json()["error"]
    with TestClient(app, base_url="http://localhost") as c:
        assert c.get("/runs").status_code == 200


def test_a_run_whose_process_died_shows_as_dead(made):
    code = (
        "import os, sys; from xetrack import Tracker\n"
        "t = Tracker(sys.argv[1], params={'model': 'doomed'}).start()\n"
        "t.log({'step': 0, 'loss': 1.0}); print(t.track_id, flush=True); os._exit(0)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", code, made["db"]], capture_output=True, text=True, env=env, check=True)
    track_id = done.stdout.strip()
    with TestClient(dashboard(made["db"])) as c:
        assert ok(c.get("/api/run", params={"run": track_id}))["run"]["status"] == "dead"
        runs = ok(c.get("/api/runs", params={"filter": "status = 'dead'"}))
        assert track_id in [row[0] for row in runs["rows"]]


def test_logged_xss_strings_come_back_as_json_data(client, made):
    runs = client.get("/api/runs", params={"size": 100})
    assert runs.headers["content-type"] == "application/json"
    assert runs.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in runs.headers["content-security-policy"]
    body = runs.json()
    ids = [row[0] for row in body["rows"]]
    models = [row[body["columns"].index("model")] for row in body["rows"]]
    assert XSS in ids and XSS in models  # the exact text, as data, for the page to show as text
    run = ok(client.get("/api/run", params={"run": XSS}))
    assert run["run"]["track_id"] == XSS
    names = ok(client.get("/api/run", params={"run": made["ids"][5]}))["artifacts"]
    assert XSS + ".txt" in [row[1] for row in names["rows"]]
    page = client.get("/runs")
    assert page.headers["content-type"].startswith("text/html") and XSS not in page.text
    from xetrack.ui.app import static_files

    scripts = [name for name in static_files() if name.endswith(".js")]
    assert "app.js" in scripts and "common.js" in scripts
    for name in scripts:  # the page's own modules: none writes HTML from text or runs text as code
        script = client.get(f"/static/{name}").text
        assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script, name


def test_the_page_and_plotly_come_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script type="module" src="/static/app.js"' in page.text
    assert "http://" not in page.text and "https://" not in page.text
    plotly = client.get("/static/plotly.min.js")
    import plotly as plotly_package

    path = os.path.join(os.path.dirname(plotly_package.__file__), "package_data", "plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) == os.path.getsize(path)
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")


def test_reader_ui_serves_in_a_background_thread(made):
    import httpx

    url = Reader(made["db"]).ui()
    assert url.startswith("http://127.0.0.1:") and "/runs?table=default" in url
    base = url.split("/runs")[0]
    assert httpx.get(base + "/api/tables", timeout=10).json()["tables"][0]["table"] == "default"


def xt_ui(*args, **kwargs):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.Popen(
        [sys.executable, "-c", "from xetrack.cli import main; main()", "ui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


def test_xt_ui_prints_its_url_serves_and_stops_on_ctrl_c(made):
    import httpx

    proc = xt_ui(made["db"], "--port", "0")
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, proc.stderr.read() if proc.poll() is not None else line
        url = line.split(": ", 1)[1].strip()
        base = url.split("/runs")[0]
        deadline = time.monotonic() + 15
        while True:
            try:
                body = httpx.get(base + "/api/runs", timeout=5).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "xt ui never answered"
                time.sleep(0.1)
        assert body["total"] == len(Reader(made["db"]).runs())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) in (0, 130)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_xt_ui_on_another_address_prints_a_token(made):
    import httpx

    proc = xt_ui(made["db"], "--host", "0.0.0.0", "--port", "0")
    try:
        line = proc.stdout.readline()
        assert "token=" in line, line
        url = line.split(": ", 1)[1].strip()
        token = url.split("token=")[1]
        port = url.split("://")[1].split("/")[0].rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                refused = httpx.get(base + "/api/tables", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert refused.status_code == 403
        assert httpx.get(base + "/api/tables", params={"token": token}, timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_xt_ui_errors_in_one_line(made, tmp_path):
    missing = subprocess.run(
        [sys.executable, "-c", "from xetrack.cli import main; main()", "ui", str(tmp_path / "none.db")],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "none.db" in missing.stderr
    no_extra = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['starlette'] = None; from xetrack.cli import main; main()",
            "ui",
            made["db"],
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = subprocess.run(
            [sys.executable, "-c", "from xetrack.cli import main; main()", "ui", made["db"], "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        )
    assert busy.returncode == 1 and busy.stdout == ""
    assert busy.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in busy.stderr and "--port 0" in busy.stderr
    assert no_extra.returncode == 1
    assert "pip install 'xetrack[ui]'" in no_extra.stderr and "Traceback" not in no_extra.stderr
