"""The dashboard's JSON API on each engine: the same logs, served from a SQLite file and
from a real PostgreSQL store (fixture ``engine_db``), answer the same."""

import math
import random
import warnings

import pytest

pytest.importorskip("starlette", reason="the ui extra: pip install 'xetrack[ui]'")

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from xetrack import Reader, Tracker
from xetrack.ui.app import create_app


def dashboard(db, **options):
    """The app over ``db``, its Readers opened as ``Reader.ui()`` opens them."""
    return create_app(lambda table: Reader(db, table=table, persist_summary=False), **options)


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def _log(db, seed):
    """Three runs of 40 steps, one failed, one with a text value in its numeric column."""
    rng = random.Random(seed)
    ids = []
    for lr in (0.1, 0.3):
        with Tracker(db, params={"model": "rf", "lr": lr}) as run:
            run.log_batch([{"step": s, "loss": math.exp(-lr * s) + rng.random() / 100} for s in range(40)])
            ids.append(run.track_id)
    try:
        with Tracker(db, params={"model": "nn", "lr": 9.0}) as run:
            run.log({"step": 0, "loss": 1.5})
            run.log({"step": 1, "loss": "diverged"})  # kept as logged, a gap in the curve
            failed = run.track_id
            raise FloatingPointError("loss exploded")
    except FloatingPointError:
        pass
    return ids, failed


@pytest.fixture
def served(engine_db):
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    ids, failed = _log(engine_db, seed)
    with TestClient(dashboard(engine_db)) as client:
        yield client, engine_db, ids, failed


def test_runs_and_compare(served):
    client, _, ids, failed = served
    body = ok(client.get("/api/runs", params={"sort": "-lr"}))
    assert body["total"] == 3
    track = body["columns"].index("track_id")
    assert [row[track] for row in body["rows"]] == [failed, ids[1], ids[0]]
    compared = ok(client.get("/api/compare", params=[("run", ids[0]), ("run", ids[1])]))
    assert compared["runs"] == ids
    fields = {f["field"]: f for f in compared["fields"]}
    assert fields["lr"]["values"] == [0.1, 0.3] and fields["lr"]["differs"]
    assert not fields["model"]["differs"]


def test_run_page_shows_status_and_error_text(served):
    client, _, ids, failed = served
    body = ok(client.get("/api/run", params={"run": failed}))
    assert body["run"]["status"] == "failed"
    assert "loss exploded" in body["error"]
    assert ok(client.get("/api/run", params={"run": ids[0]}))["error"] is None
    assert client.get("/api/run", params={"run": "no-such-run"}).status_code == 404


def test_rows_pages_then_live_cursor_brings_only_new_rows(served):
    client, db, ids, _ = served
    first = ok(client.get("/api/rows", params={"run": ids[0], "size": 15}))
    assert first["total"] == 40 and len(first["rows"]) == 15
    step = first["columns"].index("step")
    assert [r[step] for r in first["rows"]] == list(range(15))
    second = ok(client.get("/api/rows", params={"run": ids[0], "size": 15, "page": 2}))
    assert [r[step] for r in second["rows"]] == list(range(30, 40))
    assert ok(client.get("/api/rows", params={"run": ids[0], "after": first["cursor"]}))["rows"] == []
    # The same run goes on in another process's Tracker: a poll brings exactly the new rows.
    Tracker(db, track_id=ids[0]).log_batch([{"step": 40 + s, "loss": 0.01} for s in range(3)])
    Tracker(db, params={"model": "other"}).log({"step": 99, "loss": 2.0})  # another run
    live = ok(client.get("/api/rows", params={"run": ids[0], "after": first["cursor"]}))
    columns = live["columns"]
    assert [r[columns.index("step")] for r in live["rows"]] == [40, 41, 42]
    assert live["cursor"] > first["cursor"]
    assert ok(client.get("/api/rows", params={"run": ids[0], "after": live["cursor"]}))["rows"] == []


def test_curve_whole_then_after_cursor_and_text_is_a_gap(served):
    client, db, ids, failed = served
    body = ok(client.get("/api/curve", params={"run": ids[1], "metric": "loss"}))
    assert body["x_name"] == "step" and body["x"] == list(range(40)) and body["n"] == 40
    assert all(abs(y - math.exp(-0.3 * s)) < 0.02 for s, y in zip(body["x"], body["y"]))
    Tracker(db, track_id=ids[1]).log({"step": 40, "loss": 0.5})
    more = ok(client.get("/api/curve", params={"run": ids[1], "metric": "loss", "after": body["cursor"]}))
    assert more["x"] == [40] and more["y"] == [0.5]
    index = ok(client.get("/api/curve", params={"run": ids[1], "metric": "loss", "x": "_relative"}))
    assert index["x"][0] == 0 and index["x"] == sorted(index["x"]) and len(index["x"]) == 41
    counted = ok(
        client.get("/api/curve", params={"run": ids[1], "metric": "loss", "x": "step", "after": more["cursor"]})
    )
    assert counted["x"] == [] and counted["cursor"] == more["cursor"]
    gap = ok(client.get("/api/curve", params={"run": failed, "metric": "loss"}))
    assert gap["x"] == [0] and gap["y"] == [1.5]
    assert client.get("/api/curve", params={"run": ids[0], "metric": "nope"}).status_code == 400


def test_reader_ui_on_a_postgres_url_with_a_password_never_shows_it(pg_url):
    import httpx

    from xetrack import Reader

    secret = "s3cret-pw"
    assert pg_url.startswith("postgresql://postgres@")
    url = pg_url.replace("postgres@", f"postgres:{secret}@", 1)  # the test server trusts local users
    ids, failed = _log(url, 7)
    Tracker(url, table="other").log({"x": 1})
    reader = Reader(url)
    served = reader.ui()
    try:
        base = served.split("/runs")[0]
        texts = []
        for path, params in [
            ("/api/tables", {}),
            ("/api/runs", {}),
            ("/api/run", {"run": failed}),
            ("/api/rows", {"run": ids[0], "table": "other"}),
            ("/api/run", {"run": "x", "table": "nope"}),
        ]:
            response = httpx.get(base + path, params=params, timeout=30)
            texts.append(response.text)
            assert response.status_code in (200, 404), response.text
        tables = httpx.get(base + "/api/tables", timeout=30).json()
        assert {t["table"]: t["rows"] for t in tables["tables"]} == {"default": 40 + 40 + 2, "other": 1}
        assert tables["db"] == url.rsplit("/", 1)[-1]
        assert all(secret not in text for text in texts)
    finally:
        reader.close()


def test_artifacts_and_models_on_the_run_page_and_their_bytes(served):
    client, db, ids, _ = served
    assert ok(client.get("/api/models"))["rows"] == []
    run = Tracker(db, track_id=ids[0])
    weights = bytes(range(256)) * 40
    key = run.log_artifact(weights, name="weights.bin")
    run.register_model("iris", key, alias="production")
    page = ok(client.get("/api/run", params={"run": ids[0]}))
    names = [row[page["artifacts"]["columns"].index("name")] for row in page["artifacts"]["rows"]]
    assert names == ["weights.bin"]
    model = dict(zip(page["models"]["columns"], page["models"]["rows"][0]))
    assert (model["name"], model["version"], model["aliases"]) == ("iris", 1, ["production"])
    listed = ok(client.get("/api/models"))
    assert [row[listed["columns"].index("name")] for row in listed["rows"]] == ["iris"]
    download = client.get("/api/artifact", params={"run": ids[0], "name": "weights.bin"})
    assert download.status_code == 200 and download.content == weights
