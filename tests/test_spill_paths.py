"""Keys past a table's columns (the spill, store/sqlite/spill.py) along every path that
reads or writes rows besides the Tracker and the Reader's frames: copies (to a new file,
into a file with rows and spilled keys of its own, to PostgreSQL), the dashboard's run
reads (rows, curves, zoom, CSV, charts), the ``xt`` read commands, and an MLflow export
and import. The file is issue 24's example: 2,500 per-class metrics in one row, then a
``loss`` and a spilled metric over steps."""

from __future__ import annotations

import json
import os
import random
import sqlite3
from fractions import Fraction

import pandas as pd
import pytest

from xetrack import Reader, Tracker
from xetrack.copy import copy_tables

STEPS = 60
LINK = "xetrack$row"


def frame(db):
    with Reader(db) as reader:
        return reader.to_df()


def spilled(db):
    with Reader(db) as reader:
        return reader.store.spilled("default")


def log_example(db):
    """Issue 24's example, then steps of ``loss`` and ``class_2400_f1`` (both spilled:
    the table is full), a spilled asset and a spilled bool; a second run with a few."""
    first = Tracker(db, params={"model": "m"})
    first.log({f"class_{i}_f1": i / 3000 for i in range(2500)})
    for step in range(STEPS):
        first.log({"step": step, "loss": 1 / (step + 1), "class_2400_f1": step / 100})
    first.log({"step": STEPS, "boxed": Fraction(1, 3), "flag_ok": True, "class_7_f1": 0.5})
    second = Tracker(db, params={"model": "n"})
    second.log({"step": 0, "loss": 3.0, "class_2401_f1": 0.25, "flag_ok": False})
    first.close()
    second.close()
    return first.track_id, second.track_id


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("spill") / "example.db")
    first, second = log_example(db)
    keys = {k.lower() for k in spilled(db)}
    assert {"class_2400_f1", "loss", "boxed", "flag_ok", "class_2499_f1"} <= keys  # the paths below see spilled keys
    assert "step" not in keys and "model" not in keys
    return {"db": db, "first": first, "second": second, "frame": frame(db)}


def boxed_hash(rows):
    return rows.loc[rows["boxed"].notna(), "boxed"].iloc[0]


# ============================================================================ copy
def test_copy_to_a_new_file_carries_every_key_value_type_and_asset(example, tmp_path):
    target = str(tmp_path / "copy.db")
    result = copy_tables(example["db"], target)
    assert result.rows == len(example["frame"])
    pd.testing.assert_frame_equal(frame(target), example["frame"])  # keys, order, values, dtypes
    assert spilled(target) == spilled(example["db"])  # the same rules, the same layout
    got = frame(target)
    assert got["flag_ok"].dropna().tolist() == [True, False]
    key = boxed_hash(got)
    with Reader(target) as reader, Reader(example["db"]) as source:
        assert reader.assets.bytes(key) == source.assets.bytes(key)
        assert reader.assets[key] == Fraction(1, 3)
        assert reader.assets.references(key) == source.assets.references(key) == 1
    again = copy_tables(example["db"], target)  # rows TARGET has are skipped
    assert (again.rows, again.skipped) == (0, len(example["frame"]))
    pd.testing.assert_frame_equal(frame(target), example["frame"])


def own_target(path):
    """A file with a run of its own: 2,100 keys of its own (so some spilled), then keys the
    example also has (spilled here as well)."""
    tracker = Tracker(path, params={"lr": 0.1})
    tracker.log({f"other_{i}": i for i in range(2100)})
    tracker.log({"step": 0, "class_2400_f1": 7.5, "loss": 9.0, "other_2099": -1})
    tracker.close()
    return tracker.track_id


def check_links(path):
    """Every link is one row's, and every spill row belongs to a row of the table."""
    conn = sqlite3.connect(path)
    try:
        rows, links = conn.execute(f'SELECT count("{LINK}"), count(DISTINCT "{LINK}") FROM "default"').fetchone()
        assert rows == links
        orphans = conn.execute(
            "SELECT count(*) FROM xetrack_spill AS s WHERE s.\"tbl\" = 'default' "
            f'AND NOT EXISTS (SELECT 1 FROM "default" AS t WHERE t."{LINK}" = s."row")'
        ).fetchone()[0]
        assert orphans == 0
    finally:
        conn.close()


def test_copy_into_a_file_with_its_own_rows_and_spilled_keys(example, tmp_path):
    target = str(tmp_path / "target.db")
    own = own_target(target)
    before, own_spilled = frame(target), spilled(target)
    assert {"class_2400_f1", "loss"} <= {k.lower() for k in own_spilled}
    result = copy_tables(example["db"], target)
    assert result.rows == len(example["frame"])
    after = frame(target)
    mine = after[after["track_id"] == own].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine[before.columns], before, check_dtype=False)
    copied = after[after["track_id"] != own].reset_index(drop=True)
    pd.testing.assert_frame_equal(copied[example["frame"].columns], example["frame"], check_dtype=False)
    assert spilled(target)[: len(own_spilled)] == own_spilled  # a key spilled stays spilled
    check_links(target)
    with Reader(target) as reader:  # the copied runs go with their spill rows, and only theirs
        reader.delete_run(example["first"])
        reader.delete_run(example["second"])
    pd.testing.assert_frame_equal(frame(target)[before.columns], before, check_dtype=False)
    check_links(target)


def test_a_failed_copy_leaves_the_target_as_it_was(example, tmp_path):
    target = str(tmp_path / "target.db")
    own_target(target)
    before, keys = frame(target), spilled(target)
    calls = []

    def progress(done, total):
        calls.append(done)
        if done:  # after the first batch is written, inside the copy's one transaction
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_tables(example["db"], target, progress=progress)
    assert len(calls) == 2
    pd.testing.assert_frame_equal(frame(target), before)
    assert spilled(target) == keys
    check_links(target)


def values(rows):
    return [[None if pd.isna(v) else v for v in row] for row in rows.astype(object).itertuples(index=False)]


def test_random_keys_and_values_copy_exactly(tmp_path):
    """Two files of random keys (each of one random type, some values missing), each past
    its columns, merged: each file's rows read back exactly."""
    seed = int(os.environ.get("SPILL_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    makers = [lambda: rng.randrange(-5, 5), rng.random, lambda: f"t{rng.randrange(9)}", lambda: rng.random() < 0.5]
    pool = {f"k{i}": rng.choice(makers) for i in range(2040)}

    def value(key):
        return None if rng.random() < 0.1 else pool[key]()

    source, target = str(tmp_path / "source.db"), str(tmp_path / "target.db")
    for path, runs in ((source, 2), (target, 1)):
        for _ in range(runs):
            tracker = Tracker(path, params={"p": rng.randrange(3)})
            tracker.log({k: value(k) for k in rng.sample(list(pool), rng.randrange(1900, 2040))})
            for _ in range(rng.randrange(1, 6)):
                tracker.log({k: value(k) for k in rng.sample(list(pool), rng.randrange(1, 30))})
            tracker.close()
    wanted, mine = frame(source), frame(target)
    try:
        copy_tables(source, target)
        got = frame(target)
        ids = set(wanted["track_id"])
        theirs = got[got["track_id"].isin(ids)].reset_index(drop=True)[wanted.columns]
        ours = got[~got["track_id"].isin(ids)].reset_index(drop=True)[mine.columns]
        # values alike, a missing one alike (a key of no value yet reads as object in one
        # file and as its type in the other, which has values of it)
        assert values(theirs) == values(wanted)
        assert values(ours) == values(mine)
        check_links(target)
    except Exception as exc:
        raise AssertionError(f"seed {seed} (SPILL_SEED={seed} reproduces it): {exc}") from exc


def test_copy_with_postgresql_carries_spilled_keys_or_refuses_first(example, pg_url, tmp_path, monkeypatch):
    from xetrack.copy import postgres as pg_copy
    from xetrack.store import open_engine

    with monkeypatch.context() as patched:  # a TARGET engine that keeps no keys past its columns
        patched.setattr(pg_copy, "_spills", lambda engine: False)
        with pytest.raises(NotImplementedError, match=r"Table 'default' .* holds .* keys past its columns"):
            copy_tables(example["db"], pg_url)
    with Reader(pg_url) as reader:
        assert "default" not in reader.store.tables()  # refused before anything was written
    engine = open_engine(pg_url, create=True)
    spills = pg_copy._spills(engine)
    engine.close()
    if not spills:  # PostgreSQL's engine keeps no spill yet: the refusal above is what a copy does
        with pytest.raises(NotImplementedError, match="'default'"):
            copy_tables(example["db"], pg_url)
        return
    assert copy_tables(example["db"], pg_url).rows == len(example["frame"])
    assert copy_tables(example["db"], pg_url).rows == 0  # rows TARGET has are skipped
    back = str(tmp_path / "back.db")
    copy_tables(pg_url, back)
    got, rows = frame(back), example["frame"]
    assert sorted(got.columns) == sorted(rows.columns)  # in PostgreSQL's order of the keys
    pd.testing.assert_frame_equal(got[rows.columns], rows, check_dtype=False)
    with Reader(back) as reader:
        assert reader.assets[boxed_hash(got)] == Fraction(1, 3)


# ============================================================================ dashboard
def client_for(db):
    pytest.importorskip("starlette", reason="the ui extra: pip install 'xetrack[ui]'")
    from starlette.testclient import TestClient

    from xetrack.ui.app import create_app

    return TestClient(create_app(lambda table: Reader(db, table=table, persist_summary=False)))


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def test_dashboard_reads_spilled_keys_like_columns(example):
    db, first, rows = example["db"], example["first"], example["frame"]
    steps = list(range(STEPS))
    with client_for(db) as client:
        curve = ok(client.get("/api/curve", params={"run": first, "metric": "class_2400_f1"}))
        assert (curve["x_name"], curve["x"], curve["n"]) == ("step", steps, STEPS)
        assert curve["y"] == [s / 100 for s in steps]
        loss = ok(client.get("/api/curve", params={"run": first, "metric": "LOSS", "x": "class_2400_f1"}))
        assert loss["x"] == [s / 100 for s in steps] and loss["y"] == [1 / (s + 1) for s in steps]
        span = {"run": first, "metric": "class_2400_f1", "xmin": 10, "xmax": 20}
        zoom = ok(client.get("/api/curve", params=span))
        assert zoom["x"] == list(range(10, 21)) and zoom["y"] == [s / 100 for s in range(10, 21)]
        live = ok(
            client.get("/api/curve", params={"run": first, "metric": "class_2400_f1", "after": curve["cursor"] - 5})
        )
        assert live["y"] == [s / 100 for s in steps[-5:]]  # past a cursor: the last rows only
        csv = client.get("/api/curve.csv", params={"run": [first, example["second"]], "metric": "class_2400_f1"})
        assert csv.status_code == 200
        lines = csv.text.strip().splitlines()
        assert lines[0] == "track_id,step,class_2400_f1" and len(lines) == 1 + STEPS
        assert lines[1 + 30] == f"{first},30,{30 / 100}"
        page = ok(client.get("/api/rows", params={"run": first, "size": 1000}))
        assert LINK not in page["columns"] and page["total"] == STEPS + 2
        assert page["columns"] == list(rows.columns)  # the spilled keys after the table's own
        mine = rows[rows["track_id"] == first].astype(object).where(rows.notna(), None)
        for got, want in zip(page["rows"], mine.itertuples(index=False)):
            assert got == [bool(v) if isinstance(v, bool) else v for v in want]
        more = ok(client.get("/api/rows", params={"run": first, "after": page["cursor"] - 1}))
        assert len(more["rows"]) == 1 and dict(zip(more["columns"], more["rows"][0]))["boxed"] == boxed_hash(rows)
        charts = ok(client.get("/api/charts"))
        assert {"class_2400_f1", "loss", "class_2499_f1"} <= set(charts["metrics"]) <= set(charts["numeric"]) | {"x"}
        curves = ok(client.get("/api/curves", params={"metric": "class_2400_f1", "run": first}))
        assert curves["runs"][0]["y"] == [s / 100 for s in steps]
        groups = ok(client.get("/api/group_curves", params={"metric": "loss", "group": "model"}))
        assert groups["groups"]


def test_a_long_curve_of_a_spilled_key_is_downsampled_inside_sqlite(example, monkeypatch):
    from xetrack.store.sqlite import runs

    monkeypatch.setattr(runs, "BUCKET_ABOVE", 8)  # the example's run counts as long
    calls = []
    real = runs._bucket_extremes
    monkeypatch.setattr(runs, "_bucket_extremes", lambda *a: calls.append(a) or real(*a))
    with client_for(example["db"]) as client:
        body = ok(client.get("/api/curve", params={"run": example["first"], "metric": "class_2400_f1", "points": 8}))
    assert calls and body["n"] == STEPS and len(body["x"]) < STEPS
    assert all(y == x / 100 for x, y in zip(body["x"], body["y"]))
    assert body["x"][0] == 0 and body["x"][-1] == STEPS - 1


# ============================================================================ xt and MLflow
def xt(*args):
    from typer.testing import CliRunner

    from xetrack.cli import app

    out = CliRunner().invoke(app, [str(a) for a in args])
    assert out.exit_code == 0, out.output
    return out.stdout


def test_xt_read_commands_show_spilled_keys(example):
    db, first = example["db"], example["first"]
    tail = json.loads(xt("tail", db, "--n", 3, "--json"))
    assert tail[-1]["boxed"] is None and tail[-1]["loss"] == 3.0 and tail[-1]["class_2401_f1"] == 0.25
    assert tail[-2]["boxed"] == boxed_hash(example["frame"]) and tail[-2]["flag_ok"] is True
    assert LINK not in tail[0]
    head = json.loads(xt("head", db, "--n", 1, "--json"))
    assert head[0]["class_2499_f1"] == 2499 / 3000 and head[0]["class_0_f1"] == 0
    columns = xt("columns", db, "--json")
    assert "class_2400_f1" in columns and "flag_ok" in columns and LINK not in columns
    history = json.loads(xt("history", db, "class_2400_f1", "--track-id", first, "--json"))
    assert [p["value"] for p in history if p["step"] is not None] == [s / 100 for s in range(STEPS)]
    described = json.loads(xt("describe", db, "--columns", "class_2400_f1,loss", "--json"))
    assert described["class_2400_f1"]["count"] == STEPS + 1 and described["loss"]["count"] == STEPS + 1
    top = json.loads(xt("stats", "top", db, "loss", "--json"))
    assert top["loss"] == 3.0 and top["class_2401_f1"] == 0.25
    runs = {r["track_id"]: r for r in json.loads(xt("runs", db, "--json"))}
    assert runs[first]["class_2400_f1"] == (STEPS - 1) / 100 and runs[first]["class_2499_f1"] == 2499 / 3000
    assert runs[example["second"]]["loss"] == 3.0
    compared = json.loads(xt("compare", db, first, "--json"))
    assert {"class_2400_f1", "loss", "class_2499_f1"} <= {row["field"] for row in compared}


def test_xt_copy_and_mlflow_export_import_round_trip(example, tmp_path):
    db, rows = example["db"], example["frame"]
    copied = str(tmp_path / "copied.db")
    xt("copy", db, copied)
    pd.testing.assert_frame_equal(frame(copied), rows)
    mlruns, back = tmp_path / "mlruns", str(tmp_path / "back.db")
    xt("export", "mlflow", db, mlruns)
    xt("import", "mlflow", mlruns, back)
    got = frame(back)
    assert set(rows.columns) - {"boxed"} <= set(got.columns)
    for track_id in (example["first"], example["second"]):
        want, have = rows[rows["track_id"] == track_id], got[got["track_id"] == track_id]
        assert set(have["model"]) == set(want["model"])
        # a bool of one value per run is a param, exported as SQLite keeps it (1), as a column's is
        assert set(have["flag_ok"].dropna().astype(str)) == {str(int(v)) for v in want["flag_ok"].dropna()}
        for key in rows.columns:
            if key in ("timestamp", "track_id", "step", "boxed", "model", "flag_ok"):
                continue
            values = sorted(float(v) for v in want[key].dropna())  # MLflow's metrics are floats
            assert sorted(have[key].dropna().astype(float)) == values, (track_id, key)
