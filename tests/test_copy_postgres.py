"""``xetrack.copy`` and ``xt copy`` between SQLite files and PostgreSQL, both ways."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd

import xetrack
from xetrack import Reader, Tracker
from xetrack.copy import copy_tables


def log_some(db, runs=3):
    for r in range(runs):
        with Tracker(db, params={"model": f"m{r}", "lr": 0.1 * (r + 1)}) as run:
            for epoch in range(4):
                run.log({"epoch": epoch, "loss": 1 / (epoch + 1 + r), "ok": epoch % 2 == 0})
            run.log({"weights": np.arange(r + 2), "note": None})
    Tracker(db, table="other").log({"x": 1, "s": "a"})


def frame(db, table="default"):
    return Reader(db, table=table).to_df()


def test_sqlite_to_postgres_and_back_keeps_every_row_once(tmp_path, pg_url):
    laptop = str(tmp_path / "laptop.db")
    log_some(laptop)
    assert xetrack.copy(laptop, pg_url) == 16
    assert xetrack.copy(laptop, pg_url) == 0  # idempotent
    pd.testing.assert_frame_equal(frame(laptop), frame(pg_url))
    pd.testing.assert_frame_equal(frame(laptop, "other"), frame(pg_url, "other"))
    pg = Reader(pg_url)
    hashes = pg["weights"].dropna().tolist()
    assert [pg.assets[h].tolist() for h in hashes] == [[0, 1], [0, 1, 2], [0, 1, 2, 3]]
    assert pg.runs()["status"].tolist() == ["finished"] * 3

    snapshot = str(tmp_path / "snapshot.db")
    result = copy_tables(pg_url, snapshot)
    assert result.rows == 16 and result.runs == 3
    pd.testing.assert_frame_equal(frame(laptop), frame(snapshot))
    assert Reader(snapshot).assets[hashes[0]].tolist() == [0, 1]
    assert Reader(snapshot).runs()["status"].tolist() == ["finished"] * 3


def test_a_file_that_kept_growing_copies_only_its_new_rows(tmp_path, pg_url):
    worker = str(tmp_path / "worker.db")
    tracker = Tracker(worker, track_id="w1")
    tracker.log_batch([{"i": i} for i in range(12_000)])  # more than one batch
    assert xetrack.copy(worker, pg_url) == 12_000
    tracker.log_batch([{"i": i, "late": "yes"} for i in range(12_000, 12_010)])
    assert xetrack.copy(worker, pg_url) == 10
    copied = frame(pg_url)
    assert copied["i"].tolist() == list(range(12_010)) and copied["late"].notna().sum() == 10


def test_xt_copy_with_a_url_prints_no_password(tmp_path, pg_server):
    from pg_server import PASSWORD, PASSWORD_ROLE

    name = pg_server.create_database(owner=PASSWORD_ROLE).rsplit("/", 1)[1]
    url = pg_server.url(name, user=PASSWORD_ROLE, password=PASSWORD)
    laptop = str(tmp_path / "laptop.db")
    log_some(laptop, runs=1)
    script = os.path.join(os.path.dirname(sys.executable), "xt")
    out = subprocess.run([script, "copy", laptop, url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    assert out.stdout == "Copied 6 rows and 1 asset\n" and len(frame(url)) == 5


def log_side_tables(db, seed):
    """Artifacts (one multi-chunk), predictions and a registry with aliases, in ``db``."""
    import random

    from xetrack.store import chunks

    rng = random.Random(seed)
    big = bytes(rng.getrandbits(8) for _ in range(3 * chunks.CHUNK_SIZE // 1000 + 17))
    with Tracker(db, params={"model": "rf"}, track_id=f"run-{seed}") as run:
        run.log({"acc": 0.5})
        run.log_predictions([1, 0, 1], [1, 1, 1], name="val")
        run.log_predictions(["a", "b"], ["a", "c"], metrics=["accuracy"], name="labels")
        run.log_artifact(big, name="weights.bin")
        run.log_artifact(pd.DataFrame({"y": [1.5, None]}), name="preds.parquet")
        run.register_model("iris", {"seed": seed}, alias="staging")
        run.register_model("iris", run.log_artifact(b"ONNX-%d" % seed, name="iris.onnx"), alias="production")
    return big


def side_state(db):
    """What a user sees of the side tables: entries, bytes, predictions, the registry."""
    reader = Reader(db)
    artifacts = reader.artifacts().drop(columns=["created"]).sort_values(["track_id", "name"]).reset_index(drop=True)
    models = reader.models().drop(columns=["created"])
    return {
        "artifacts": artifacts.to_dict("list"),
        "bytes": {(t, n): reader.artifact(n, track_id=t) for t, n in zip(artifacts["track_id"], artifacts["name"])},
        "predictions": {t: reader.predictions(t).to_dict("list") for t in sorted(set(artifacts["track_id"]))},
        "models": models.to_dict("list"),
        "loaded": {f"{n}:{v}": reader.load_model(f"{n}:{v}") for n, v in zip(models["name"], models["version"])},
    }


def test_artifacts_predictions_and_the_registry_go_both_ways_once(tmp_path, pg_url, monkeypatch):
    from xetrack.store import chunks

    monkeypatch.setattr(chunks, "CHUNK_SIZE", 4096)  # several chunks per blob, on both engines
    laptop = str(tmp_path / "laptop.db")
    big = log_side_tables(laptop, 1)
    first = copy_tables(laptop, pg_url)
    assert (first.artifacts, first.blobs, first.predictions, first.models, first.aliases) == (3, 3, 5, 2, 2)
    again = copy_tables(laptop, pg_url)  # idempotent
    assert (again.rows, again.artifacts, again.blobs, again.predictions, again.models, again.aliases) == (0,) * 6
    assert side_state(pg_url) == side_state(laptop)
    assert Reader(pg_url).artifact("weights.bin") == big
    assert Reader(pg_url).load_model("iris@production") == b"ONNX-1"

    log_side_tables(pg_url, 2)  # the server gets work of its own, then a snapshot goes home
    home = str(tmp_path / "home.db")
    assert copy_tables(pg_url, home).models == 4
    assert copy_tables(pg_url, home).models == 0
    assert side_state(home) == side_state(pg_url)
    assert Reader(home).load_model("iris:3") == {"seed": 2}
    assert Reader(home).models()["aliases"].tolist() == [[], [], ["staging"], ["production"]]
    back = copy_tables(home, laptop)  # the laptop catches up through the snapshot
    assert (back.models, back.artifacts, back.aliases) == (2, 3, 0)
    laptop_state, home_state = side_state(laptop), side_state(home)
    assert laptop_state["models"].pop("aliases") == [["staging"], ["production"], [], []]  # TARGET's aliases win
    home_state["models"].pop("aliases")
    assert laptop_state == home_state


def test_a_copy_without_assets_leaves_out_what_target_lacks(tmp_path, pg_url):
    laptop = str(tmp_path / "laptop.db")
    log_side_tables(laptop, 3)
    result = copy_tables(laptop, pg_url, assets=False)
    assert (result.artifacts, result.blobs, result.models) == (0, 0, 0) and result.left_out == 5
    assert Reader(pg_url).artifacts().empty and Reader(pg_url).models().empty
    result = copy_tables(laptop, pg_url)
    assert (result.artifacts, result.models, result.left_out) == (3, 2, 0)


def test_damaged_artifact_bytes_are_not_copied(tmp_path, pg_url):
    from pg_server import raw_sql
    from xetrack.errors import IntegrityError

    laptop = str(tmp_path / "laptop.db")
    Tracker(laptop).log_artifact(b"the real weights", name="model.bin")
    raw_sql(laptop, "UPDATE xetrack_chunks SET data = ?", (b"tampered bytes!!",))
    try:
        copy_tables(laptop, pg_url)
        raise AssertionError("a damaged blob was copied")
    except IntegrityError as exc:
        assert "corrupt" in str(exc) and "not copied" in str(exc)
    assert Reader(pg_url).artifacts().empty
    assert raw_sql(pg_url, "SELECT count(*) FROM xetrack_blobs", (), [(0,)]) == [(0,)]


def test_bytes_stored_in_other_chunk_sizes_copy_exactly_randomized(tmp_path, pg_server, monkeypatch):
    """Seeded: blobs of random sizes, chunked one way in SOURCE, re-cut into TARGET's
    chunks (several transactions each), read back equal on both sides."""
    import random

    import xetrack.artifacts as artifacts
    from xetrack.store import chunks

    for seed in range(3):
        rng = random.Random(seed)
        pg_url = pg_server.create_database()
        source = str(tmp_path / f"src-{seed}.db")
        monkeypatch.setattr(chunks, "CHUNK_SIZE", rng.choice([7, 100, 1000]))
        payloads = {f"b{i}.bin": rng.randbytes(rng.choice([0, 1, rng.randrange(2, 9000)])) for i in range(6)}
        tracker = Tracker(source)
        for name, data in payloads.items():
            tracker.log_artifact(data, name=name)
        monkeypatch.setattr(chunks, "CHUNK_SIZE", rng.choice([64, 333, 4096]))
        monkeypatch.setattr(artifacts, "BATCH_BYTES", rng.choice([500, 2000, 10**6]))
        result = copy_tables(source, pg_url)
        reader = Reader(pg_url)
        got = {name: reader.artifact(name, track_id=tracker.track_id) for name in payloads}
        assert got == payloads, f"seed {seed}"
        assert result.blobs == len(set(payloads.values())), f"seed {seed}"
        home = str(tmp_path / f"home-{seed}.db")
        monkeypatch.setattr(chunks, "CHUNK_SIZE", rng.choice([5, 50, 500]))
        copy_tables(pg_url, home)
        back = Reader(home)
        assert {n: back.artifact(n, track_id=tracker.track_id) for n in payloads} == payloads, f"seed {seed}"


def test_tags_run_names_kinds_and_descriptions_go_both_ways(tmp_path, pg_url):
    copy = xetrack.copy
    first, back = str(tmp_path / "first.db"), str(tmp_path / "back.db")
    with Tracker(first, params={"lr": 0.1}, track_id="r1", run_name="baseline", description="sweep") as run:
        run.log({"f1": 0.5})  # logged once: a metric because it is recorded so
        run.set_tag("team", "vision")
    copy(first, pg_url)
    copy(pg_url, back)
    copy(pg_url, back)  # a second copy adds nothing and keeps what is there
    for db in (pg_url, back):
        reader = Reader(db)
        runs = reader.runs()
        assert runs.loc[0, "run_name"] == "baseline" and runs.loc[0, "tags.team"] == "vision", db
        params, metrics, _ = reader._runs().classify()
        assert params == ["lr"] and metrics == ["f1"], db
        assert reader.tables()["description"].tolist() == ["sweep"], db
