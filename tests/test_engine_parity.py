"""One store, two engines: the same logs read back the same from SQLite and PostgreSQL.

``engine_db`` (conftest.py) is a SQLite path or the URL of a fresh database on the
session's PostgreSQL server. The tests that compare frames write the same logs to
both and assert the frames are equal: columns, dtypes and values.
"""

import os
import random

import numpy as np
import pandas as pd
import pytest

from xetrack import Reader, Tracker

STAMPS = ["timestamp", "track_id"]


def both(tmp_path, pg_url):
    return {"sqlite": str(tmp_path / "exp.db"), "postgres": pg_url}


def same_frames(frames: dict) -> None:
    sqlite, postgres = frames["sqlite"], frames["postgres"]
    assert list(sqlite.columns) == list(postgres.columns)
    assert sqlite.dtypes.astype(str).to_dict() == postgres.dtypes.astype(str).to_dict()
    pd.testing.assert_frame_equal(
        sqlite.drop(columns=STAMPS, errors="ignore"), postgres.drop(columns=STAMPS, errors="ignore")
    )


def run_both(tmp_path, pg_url, script):
    """``script(tracker)`` on each engine with the same track_id; the engines' Readers."""
    readers = {}
    for name, db in both(tmp_path, pg_url).items():
        tracker = Tracker(db, params={"model": "rf", "seed": 7}, track_id="run-1")
        script(tracker)
        tracker.close()
        readers[name] = Reader(db)
    return readers


def test_log_of_every_plain_type_reads_back_the_same(tmp_path, pg_url):
    def script(t):
        t.log({"i": 1, "f": 0.5, "s": "x", "b": True, "j": {"k": [1, 2]}, "none": None})
        t.log({"i": None, "f": float("nan"), "s": None, "b": False, "j": [1], "none": 4})
        t.log({"i": 2**62, "f": float("inf"), "s": "ü ✓", "b": None, "none": 5})

    readers = run_both(tmp_path, pg_url, script)
    frames = {k: r.to_df() for k, r in readers.items()}
    same_frames(frames)
    dtypes = frames["postgres"].dtypes.astype(str).to_dict()
    assert dtypes["i"] == "Int64" and dtypes["f"] == "float64" and dtypes["b"] == "boolean"
    assert dtypes["none"] == "Int64"
    assert frames["postgres"]["f"].iloc[2] == float("inf")
    assert frames["postgres"]["j"].tolist()[:2] == ['{"k": [1, 2]}', "[1]"] and frames["postgres"]["j"].isna().iloc[2]


def test_a_later_value_of_another_type_is_stored_as_given(tmp_path, pg_url):
    def script(t):
        t.log({"n": 1, "acc": 0.9, "flag": True, "tag": "a"})
        t.log({"n": 2.5, "acc": "high", "flag": 3, "tag": "b"})  # widen; misfits kept as given
        t.log({"n": 3, "acc": 0.7, "flag": False, "tag": "c"})

    readers = run_both(tmp_path, pg_url, script)
    frames = {k: r.to_df() for k, r in readers.items()}
    same_frames(frames)
    pg = frames["postgres"]
    assert pg["n"].dtype == "float64" and pg["n"].tolist() == [1.0, 2.5, 3.0]
    assert pg["acc"].tolist() == [0.9, "high", 0.7]
    heads = {k: r.head(1) for k, r in readers.items()}  # the widened type holds for every read
    same_frames(heads)


def test_log_batch_params_set_value_set_where(tmp_path, pg_url):
    def script(t):
        t.log_batch([{"epoch": e, "loss": 1 / (e + 1)} for e in range(20)])
        t.log_batch([{"x": 1}, {"x": 2.5}, {"x": None, "y": "z"}])
        assert t.set_value("note", "done") == 23
        assert t.set_where("best", True, "epoch", 19) == 1
        assert t.set_where("lossy", 1.5, "loss", 0.5) == 1

    readers = run_both(tmp_path, pg_url, script)
    same_frames({k: r.to_df() for k, r in readers.items()})
    same_frames({k: r.tail(3) for k, r in readers.items()})
    same_frames({k: r.head(4) for k, r in readers.items()})
    same_frames({k: r["loss"].to_frame() for k, r in readers.items()})


def test_latest_rows_and_items(engine_db):
    tracker = Tracker(engine_db, track_id="a")
    tracker.log({"acc": 0.5, "opt": None})
    tracker.log({"acc": 0.6, "epoch": 2})
    other = Tracker(engine_db, track_id="b")
    other.log({"acc": 0.1})
    assert tracker.latest == {"acc": 0.6, "epoch": 2, "timestamp": tracker.latest["timestamp"], "track_id": "a"}
    assert tracker[1]["acc"] == 0.5 and "opt" in tracker[1]
    assert tracker[-1]["epoch"] == 2
    assert len(tracker) == 2 and len(Reader(engine_db)) == 3
    assert Reader(engine_db).latest()["track_id"].tolist() == ["b"]
    assert tracker["acc"].tolist() == [0.5, 0.6]
    assert Tracker(engine_db, track_id="a").to_df()["acc"].tolist() == [0.5, 0.6]
    with pytest.raises(IndexError):
        tracker[5]


def test_assets_are_stored_once_and_read_back(engine_db):
    tracker = Tracker(engine_db)
    model = np.arange(5)  # no plain value: pickled into the asset store
    first = tracker.log({"model": model})["model"]
    second = tracker.log({"model": model})["model"]
    assert first == second and len(tracker.assets) == 1
    loaded = tracker.get(first)
    assert loaded.tolist() == [0, 1, 2, 3, 4]
    assert Reader(engine_db).assets[first].tolist() == [0, 1, 2, 3, 4]
    assert tracker.remove_asset(first, "model") == 2
    assert len(tracker.assets) == 0 and tracker["model"].isna().all()


def test_reset_and_several_tables(engine_db):
    Tracker(engine_db, table="a").log({"x": 1})
    Tracker(engine_db, table="b").log({"y": "s"})
    assert Reader(engine_db, table="a")["x"].tolist() == [1]
    Tracker(engine_db, table="a", reset=True).log({"z": 2.5})
    frame = Reader(engine_db, table="a").to_df()
    assert list(frame.columns) == STAMPS + ["z"] and frame["z"].tolist() == [2.5]
    assert Reader(engine_db, table="b")["y"].tolist() == ["s"]


def test_delete_run_and_unknown_names(engine_db):
    Tracker(engine_db, track_id="a").log({"x": 1})
    Tracker(engine_db, track_id="b").log({"x": 2})
    reader = Reader(engine_db)
    assert reader.delete_run("a") == 1 and reader["x"].tolist() == [2]
    with pytest.raises(KeyError, match="Did you mean: x"):
        reader["xx"]
    with pytest.raises(ValueError, match="Table 'nope' not found"):
        Reader(engine_db, table="nope").to_df()


def test_randomized_logs_read_back_the_same(tmp_path, pg_url):
    seed = int(os.environ.get("XT_SEED") or random.randrange(2**32))  # XT_SEED=... reruns a failure
    rng = random.Random(seed)
    numbers = [None, 0, 1, -5, 2**40, 0.25, -1e300, float("nan"), True, False, "txt"]
    texts = [None, "", "txt", "ü"]  # SQLite's TEXT affinity would turn a number into text: none here
    pick = {"a": numbers, "b": numbers, "c": numbers, "d": texts}
    typed: set = set()  # numeric columns that had a number: text may come later (SQLite's
    rows = []  # TEXT affinity would turn later numbers into text, PostgreSQL not)
    for _ in range(60):
        row = {}
        for k in rng.sample(sorted(pick), rng.randint(1, 4)):
            choices = pick[k] if k in typed or k == "d" else pick[k][:-1]
            row[k] = rng.choice(choices)
            if row[k] is not None and row[k] == row[k]:
                typed.add(k)
        rows.append(row)
    batched = [rng.random() < 0.3 for _ in rows]  # some rows go in log_batch calls

    def script(t):
        batch = []
        for r, in_batch in zip(rows, batched):
            if in_batch:
                batch.append(r)
                continue
            if batch:
                t.log_batch(batch)
                batch = []
            t.log(r)
        if batch:
            t.log_batch(batch)

    readers = run_both(tmp_path, pg_url, script)
    try:
        same_frames({k: r.to_df() for k, r in readers.items()})
        same_frames({k: r.tail(7) for k, r in readers.items()})
    except AssertionError as exc:
        raise AssertionError(f"seed {seed}: {exc}") from None


def test_big_batches_through_copy_read_back_the_same(tmp_path, pg_url):
    """log_batch of hundreds of rows (PostgreSQL's binary COPY) with text that COPY's text
    format would escape, numbers at the edges, NaN, bools, None and later misfits."""
    seed = int(os.environ.get("XT_SEED") or random.randrange(2**32))  # XT_SEED=... reruns a failure
    rng = random.Random(seed)
    texts = ["", "tab\there", "line\nbreak\r", "back\\slash \\N", "ü ∑ 😀", "'quoted' \"x\"", "\\x00ff"]
    numbers = [0, -1, 2**53, 2**63 - 1, -(2**63), 0.5, -0.0, 1e300, float("inf"), float("-inf"), float("nan")]
    first = [{"i": k, "f": k / 3, "s": rng.choice(texts), "b": k % 2 == 0, "n": None} for k in range(300)]
    later = []
    for _ in range(300):
        row = {
            "i": rng.choice(numbers + [None]),
            "f": rng.choice(numbers + [None, 7]),
            "s": rng.choice(texts + [None]),
            "b": rng.choice([True, False, None]),
            "n": rng.choice(numbers + texts),
        }
        if rng.random() < 0.05:
            row["i"] = rng.choice(["text in an int column", 2.5, True])
        later.append(row)

    def script(t):
        t.log_batch(first)
        t.log_batch(later)
        t.log_batch(later * 20)  # 6,000 rows: PostgreSQL's COPY hands them to a writer thread
        t.set_params({"seed": "seven", "new_param": 1.5})  # a param that no longer fits its column
        t.log_batch(first * 20)

    readers = run_both(tmp_path, pg_url, script)
    try:
        same_frames({k: r.to_df() for k, r in readers.items()})
    except AssertionError as exc:
        raise AssertionError(f"seed {seed}: {exc}") from None


# -- runs: the lifecycle side table and the run queries ------------------------------
TIMES = ["start", "end", "duration"]


def log_runs(db):
    for lr in (0.1, 0.01):
        with Tracker(db, params={"lr": lr, "model": "rf"}) as run:
            for epoch in range(4):
                run.log({"epoch": epoch, "loss": 1 / (epoch + 1 + lr), "acc": epoch / 4})
            run.log_predictions([1, 2, 3], [1, 2, 4], ["mae"])
    failed = Tracker(db, track_id="broken", params={"lr": 1.0})
    try:
        with failed:
            failed.log({"epoch": 0, "loss": 9.0})
            raise RuntimeError("diverged")
    except RuntimeError:
        pass


def test_runs_search_compare_history_read_back_the_same(tmp_path, pg_url):
    readers = {}
    for name, db in both(tmp_path, pg_url).items():
        log_runs(db)
        readers[name] = Reader(db)
    runs = {k: r.runs().drop(columns=TIMES) for k, r in readers.items()}
    for frame in runs.values():  # run ids differ between the engines; the order is by start
        frame["track_id"] = range(len(frame))
    same_frames(runs)
    pg = readers["postgres"].runs()
    assert pg["status"].tolist() == ["finished", "finished", "failed"]
    assert pg["events"].tolist() == [5, 5, 1] and pg["lr"].tolist() == [0.1, 0.01, 1.0]
    found = {
        k: r.search("loss < 0.5 AND model = 'rf'", order_by="-lr").drop(columns=["track_id", *TIMES])
        for k, r in readers.items()
    }
    same_frames(found)
    assert len(found["postgres"]) == 2
    ids = readers["postgres"].runs()["track_id"].tolist()
    compared = readers["postgres"].compare(ids[:2], only_diff=True)
    assert set(compared["field"]) >= {"lr", "loss"} and "model" not in set(compared["field"])
    history = {k: r.history("loss").drop(columns=["track_id"]) for k, r in readers.items()}
    same_frames(history)
    one = readers["postgres"].history("loss", track_id=ids[0])
    assert one["step"].tolist() == [0, 1, 2, 3] and one["track_id"].unique().tolist() == [ids[0]]
    aggregated = {k: r.aggregate("acc", by=["model"]) for k, r in readers.items()}
    same_frames(aggregated)
    predicted = {k: r.predictions(r.runs()["track_id"].iloc[0]) for k, r in readers.items()}
    same_frames(predicted)
    assert predicted["postgres"]["actual"].tolist() == [1, 2, 4]
    tables = {k: r.tables() for k, r in readers.items()}
    same_frames(tables)
    assert tables["postgres"]["runs"].tolist() == [3]


def test_delete_run_forgets_its_side_rows(engine_db):
    with Tracker(engine_db, track_id="gone", run_name="first try") as run:
        run.log({"x": 1})
        run.log_predictions([1], [1], ["mae"])
        run.set_tag("team", "vision")
    Tracker(engine_db, track_id="kept", run_name="second").log({"x": 2})
    reader = Reader(engine_db)
    assert reader.delete_run("gone") == 2
    assert reader.runs()["track_id"].tolist() == ["kept"]
    assert len(reader.predictions("gone")) == 0
    again = Tracker(engine_db, track_id="gone")  # the id used again: nothing of the old run
    again.log({"x": 3})
    assert again.tags == {}
    runs = Reader(engine_db).runs().set_index("track_id")
    assert runs.loc["kept", "run_name"] == "second" and pd.isna(runs.loc["gone", "run_name"])


def test_duckdb_reads_a_url_through_the_postgres_scanner(tmp_path, pg_url):
    def script(t):
        t.log({"n": 1, "acc": 0.9, "flag": True, "none": None, "blob": b"\x00\x01"})
        t.log({"n": 2.5, "acc": "high", "flag": None, "none": 3, "blob": None})
        t.log_batch([{"n": i, "acc": i / 10} for i in range(5)])

    run_both(tmp_path, pg_url, script)
    plain, duck = Reader(pg_url), Reader(pg_url, engine="duckdb")
    pd.testing.assert_frame_equal(plain.to_df(), duck.to_df())
    pd.testing.assert_frame_equal(plain.tail(2), duck.tail(2))
    pd.testing.assert_frame_equal(plain.head(3), duck.head(3))
    pd.testing.assert_frame_equal(
        Tracker(pg_url, track_id="run-1").to_df(), Tracker(pg_url, track_id="run-1", engine="duckdb").to_df()
    )
    assert duck["acc"].tolist()[:2] == [0.9, "high"]
    assert duck.conn.execute('SELECT count(*) FROM db.public."default"').fetchone() == (7,)
    sqlite = Reader(str(tmp_path / "exp.db"), engine="duckdb").to_df()
    same_frames({"sqlite": sqlite, "postgres": duck.to_df()})


def test_nan_is_stored_as_null_by_log_and_log_batch(engine_db):
    tracker = Tracker(engine_db)
    tracker.log({"f": float("nan"), "g": 1.5})
    tracker.log_batch([{"f": 0.5, "g": float("nan")}, {"f": float("nan"), "g": 2.5}])
    raw = tracker.conn.execute('SELECT count(*) FROM "default" WHERE "f" IS NULL').fetchone()[0]
    assert raw == 2
    assert tracker.conn.execute('SELECT count(*) FROM "default" WHERE "g" IS NULL').fetchone()[0] == 1
    assert Reader(engine_db).to_df()["g"].isna().tolist() == [False, True, False]


def test_tags_run_names_and_kinds_read_back_the_same(tmp_path, pg_url):
    frames = {}
    for name, db in both(tmp_path, pg_url).items():
        with Tracker(db, params={"model": "rf"}, run_name="baseline", description="sweep") as run:
            run.log({"f1": 0.5})  # logged once: a metric, as recorded
            run.set_tags({"team": "vision", "note": "<b>x</b>"})
        Tracker(db, params={"model": "lr"}).log({"f1": 0.7})
        reader = Reader(db)
        reader.set_tag(run.track_id, "reviewed", "yes")
        found = reader.search("tags.team = 'vision' and run_name = 'baseline'")
        assert len(found) == 1 and found.loc[0, "tags.reviewed"] == "yes", name
        frames[name] = reader.runs().drop(columns=["track_id", *TIMES])
        assert reader.tables()["description"].tolist() == ["sweep"], name
    same_frames(frames)
    assert frames["postgres"]["run_name"].iloc[0] == "baseline" and frames["postgres"]["run_name"].isna().iloc[1]
    assert list(frames["postgres"].columns[-3:]) == ["tags.note", "tags.reviewed", "tags.team"]


def test_artifacts_and_models_read_back_the_same(tmp_path, pg_url):
    """The same artifacts, registry and gc on both engines: equal frames, equal bytes."""
    rng = random.Random(11)
    blob = bytes(rng.getrandbits(8) for _ in range(5_000))
    table = pd.DataFrame({"y": [1, 2, 3], "label": ["a", "b", None]})
    out = tmp_path / "outputs"
    (out / "plots").mkdir(parents=True)
    (out / "model.pt").write_bytes(blob)
    (out / "plots" / "curve.csv").write_bytes(b"x,y\n1,2\n")
    listings, registries, stored, results = {}, {}, {}, {}

    def script(t):
        t.log({"step": 1})
        t.log_artifact(blob, name="weights/last.bin", type="checkpoint")
        t.log_artifact(table)
        t.log_artifacts(out, prefix="epoch-1")
        t.log_artifact(b"v1", name="notes.txt")
        t.log_artifact(b"v2", name="notes.txt")  # replaces v1's entry
        t.register_model("iris", {"w": [0.1, 0.2]}, description="first")
        t.register_model("iris", t.log_artifact(b"ONNX", name="iris.onnx"), alias="production")
        t.set_model_alias("iris", 1, "baseline")

    for name, reader in run_both(tmp_path, pg_url, script).items():
        listings[name] = reader.artifacts().drop(columns=["created"])
        registries[name] = reader.models().drop(columns=["created"])
        stored[name] = {n: reader.artifact(n) for n in listings[name]["name"]}
        stored[name]["iris:1"] = reader.load_model("iris:1")
        stored[name]["iris@production"] = reader.load_model("iris@production")
        with reader.open_artifact("weights/last.bin") as stream:
            stored[name]["streamed"] = stream.read()
        reader.delete_run("run-1")
        results[name] = (reader.gc(dry_run=True).hashes, reader.gc().bytes, reader.gc().bytes)
    pd.testing.assert_frame_equal(listings["sqlite"], listings["postgres"])
    pd.testing.assert_frame_equal(registries["sqlite"], registries["postgres"])
    assert stored["sqlite"] == stored["postgres"]
    assert stored["postgres"]["weights/last.bin"] == blob == stored["postgres"]["streamed"]
    assert stored["postgres"]["iris@production"] == b"ONNX" and stored["postgres"]["iris:1"] == {"w": [0.1, 0.2]}
    assert registries["postgres"]["aliases"].tolist() == [["baseline"], ["production"]]
    assert results["sqlite"] == results["postgres"]
    assert results["postgres"][1] > 5_000 and results["postgres"][2] == 0  # the registry keeps its bytes
