"""Keys past the columns a table can hold (docs/runs.md, "Any number of keys"): stored, not
refused, and every read sees them as ordinary columns, on both Reader engines."""

import math
import random
import sqlite3

import pandas as pd
import pytest

from spill_reads import check_run_reads
from xetrack import Reader, Tracker


def same(a, b):
    """Equal as logged and as read back: None/NA/NaN are all 'no value'."""
    missing = lambda v: v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))  # noqa: E731
    if missing(a) or missing(b):
        return missing(a) and missing(b)
    if isinstance(a, float) or isinstance(b, float):
        return float(a) == float(b) and math.copysign(1, float(a)) == math.copysign(1, float(b))
    return a == b and type(bool(a)) is type(bool(b))


def link_columns(db, table="default"):
    conn = sqlite3.connect(db)
    try:
        return [r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]
    finally:
        conn.close()


def test_the_issues_2500_keys_log_and_read_back_everywhere(tmp_path):
    db = str(tmp_path / "wide.db")
    t = Tracker(db, params={"model": "m"})
    t.log({f"class_{i}_f1": i / 3000 for i in range(2500)})
    for step in range(3):
        t.log({"step": step, "loss": 1 / (step + 1), **{f"class_{i}_f1": i / 3000 + step for i in range(2500)}})
    assert len(link_columns(db)) < 2000  # the table stays under SQLite's limit
    for engine in ("sqlite", "duckdb"):
        frame = Reader(db, engine=engine).to_df()
        assert frame.shape == (4, 2 + 2500 + 3) and "xetrack$row" not in frame.columns
        assert frame["class_2499_f1"].tolist() == [2499 / 3000] + [2499 / 3000 + s for s in range(3)]
        assert frame["model"].tolist() == ["m"] * 4 and frame["step"].tolist()[1:] == [0, 1, 2]
    reader = Reader(db)
    assert reader.to_df(tail=1)["class_2400_f1"].tolist() == [2400 / 3000 + 2]
    assert reader.to_df(head=1)["class_2400_f1"].tolist() == [2400 / 3000]
    assert reader.latest()["class_2499_f1"].tolist()[-1] == 2499 / 3000 + 2
    assert t.latest["class_2499_f1"] == 2499 / 3000 + 2
    assert "class_2499_f1" in reader.columns and len(reader.columns) == 2 + 2500 + 3
    runs = reader.runs()
    assert runs.loc[0, "class_2499_f1"] == 2499 / 3000 + 2 and runs.loc[0, "model"] == "m"
    found = reader.search("metrics.class_2499_f1 > 2 and params.model = 'm'", order_by="-class_2498_f1")
    assert found["track_id"].tolist() == [t.track_id]
    assert reader.search("metrics.class_2499_f1 > 99").empty
    history = reader.history("class_2499_f1", track_id=t.track_id)
    assert history["value"].tolist() == [2499 / 3000] + [2499 / 3000 + s for s in range(3)]
    assert history["step"].tolist()[1:] == [0, 1, 2]
    compared = reader.compare([t.track_id]).set_index("field")
    assert compared.loc["class_2499_f1", t.track_id] == 2499 / 3000 + 2
    grouped = reader.aggregate("class_2499_f1", by=["model"], agg=["mean", "count"])
    assert grouped["count"].tolist() == [1] and grouped["mean"].tolist() == [2499 / 3000 + 2]


def test_set_value_and_delete_run_reach_spilled_keys(tmp_path):
    db = str(tmp_path / "edit.db")
    runs = []
    for k in range(3):
        t = Tracker(db, params={"model": "m", "seed": k})
        t.log({f"k{i}": i + k for i in range(2100)})
        runs.append(t.track_id)
    reader = Reader(db)
    assert reader.set_value("k2099", -1.0, track_id=runs[1]) == 1
    assert Reader(db).to_df()["k2099"].tolist() == [2099, -1.0, 2101]
    assert reader.set_value("k2099", None, track_id=runs[0]) == 1
    assert pd.isna(Reader(db).to_df()["k2099"].tolist()[0])
    assert reader.delete_run(runs[2]) == 1
    frame = Reader(db).to_df()
    assert frame["track_id"].tolist() == runs[:2] and frame["k2098"].tolist() == [2098, 2099]
    conn = sqlite3.connect(db)
    rows = conn.execute('SELECT count(*) FROM xetrack_spill WHERE "tbl" = ?', ("default",)).fetchone()[0]
    conn.close()
    spilled = len(Reader(db).store.spilled("default"))
    assert rows == 2 * spilled - 1  # run 0 lost one value to None; run 2 is gone with its spill rows


def test_an_object_under_a_spilled_key_keeps_its_asset_through_gc(tmp_path):
    db = str(tmp_path / "assets.db")
    t = Tracker(db)
    t.log({**{f"k{i}": i for i in range(2000)}, "model_obj": {1, 2, 3}})  # a set: pickled
    assert "model_obj" in Reader(db).store.spilled("default")
    digest = Reader(db).to_df()["model_obj"].tolist()[0]
    Reader(db).gc()
    assert Reader(db).assets.get(digest) == {1, 2, 3}


def test_a_copy_of_a_spilled_table_is_refused_or_complete(tmp_path):
    """Until the copy carries spilled keys it refuses the table and writes nothing."""
    import xetrack

    db, target = str(tmp_path / "src.db"), str(tmp_path / "dst.db")
    Tracker(db).log({f"k{i}": i for i in range(2100)})
    try:
        xetrack.copy(db, target)
    except NotImplementedError as exc:
        assert "default" in str(exc)
        return
    assert Reader(target).to_df()["k2099"].tolist() == [2099]


TYPES = ["int", "float", "str", "bool"]


def value(rnd, kind):
    if rnd.random() < 0.1:
        return None
    if kind == "int":
        return rnd.choice([0, -7, 2**53 + 1, -(2**62), rnd.randint(-1000, 1000)])
    if kind == "float":
        return rnd.choice([0.5, 1e-300, -2.5e300, math.inf, -math.inf, rnd.random()])
    if kind == "str":
        return rnd.choice(["", "é☃", "x" * 50, "'; drop table t; --", str(rnd.random())])
    return rnd.random() < 0.5


@pytest.mark.parametrize("seed", range(3))
def test_random_narrow_and_wide_logs_read_back_exactly(tmp_path, seed):
    """Seeded mixes: 0 to 3,000 keys per row from a pool of 5,000, new keys at any point,
    every type, over runs of a new Tracker each; both Reader engines read back every value
    as logged, and the run reads (runs, history, search, compare) see the spilled keys."""
    rnd = random.Random(seed)
    print(f"seed {seed}")
    db = str(tmp_path / f"mix{seed}.db")
    kinds = {f"key_{j}": rnd.choice(TYPES) for j in range(5000)}
    pool = list(kinds)
    logged = []
    runs: dict[str, list[dict]] = {}
    t = Tracker(db, params={"model": "m"})
    for step in range(10):
        if step and rnd.random() < 0.4:  # the sweep's next run
            t = Tracker(db, params={"model": "m"})
        n = rnd.choice([0, 1, 5, 300, 1500, 3000])
        keys = rnd.sample(pool, n)
        row = {k: value(rnd, kinds[k]) for k in keys}
        if rnd.random() < 0.5:
            batch = [row]
            t.log(row)
        else:
            batch = [row, {k: value(rnd, kinds[k]) for k in rnd.sample(keys, min(len(keys), 50))}]
            t.log_batch(batch)
        logged.extend(batch)
        runs.setdefault(t.track_id, []).extend(batch)
    numbers = sorted({k for row in logged for k in row if kinds[k] in ("int", "float")})
    check_run_reads(db, runs, numbers, rnd, f"seed {seed}")
    for engine in ("sqlite", "duckdb"):
        frame = Reader(db, engine=engine).to_df()
        assert len(frame) == len(logged), f"seed {seed}"
        for i, row in enumerate(logged):
            for key, expected in row.items():
                got = frame[key].iloc[i]
                assert same(expected, got), f"seed {seed}, {engine}, row {i}, {key}: logged {expected!r}, read {got!r}"
        unlogged = set(pool) - {k for row in logged for k in row}
        assert not unlogged & set(frame.columns), f"seed {seed}"
    assert len(link_columns(db)) <= 2000


def test_the_duckdb_shell_view_shows_every_spilled_value(tmp_path):
    """`xt duckdb` creates "<table>_all": the table with its spilled keys as typed columns."""
    duckdb = pytest.importorskip("duckdb", reason="duckdb: pip install 'xetrack[duckdb]'")
    from xetrack.store.duckdb.extension import bundled_extension, shell_setup_sql

    if bundled_extension() is None:
        pytest.skip("no sqlite scanner wheel: pip install duckdb-extension-sqlite-scanner")
    db = str(tmp_path / "shell.db")
    t = Tracker(db, params={"model": "m"})
    t.log({**{f"k{i}": i for i in range(1990)}, "ratio": 0.25, "name": "é'x", "ok": True, "n": 2**60})
    t.log({**{f"k{i}": i + 1 for i in range(1990)}, "ratio": 1.5, "ok": False})
    spilled = Reader(db).store.spilled("default")
    assert {"ratio", "name", "ok", "n"} <= set(spilled)
    con = duckdb.connect()
    for statement in shell_setup_sql(db, False, bundled_extension()).split(";"):
        if statement.strip():
            con.execute(statement)
    frame = con.execute('SELECT * FROM "default_all"').df()
    assert "xetrack$row" not in frame.columns and len(frame.columns) == 2 + 1990 + 5
    assert frame["ratio"].tolist() == [0.25, 1.5] and frame["ok"].tolist() == [True, False]
    assert frame["name"].tolist()[0] == "é'x" and frame["n"].tolist()[0] == 2**60
    assert frame["k1989"].tolist() == [1989, 1990]
