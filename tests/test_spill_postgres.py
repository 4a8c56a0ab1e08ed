"""Keys past the columns a PostgreSQL table can hold (store/postgres/spill.py), on the real
server: stored, never refused, and every read gives each value back as logged."""

import json
import math
import multiprocessing as mp
import random
import traceback

import pandas as pd
import psycopg
import pytest

import xetrack
from spill_reads import check_run_reads
from test_cli import ok
from test_postgres import run_workers
from xetrack import Reader, Tracker
from xetrack.errors import ColumnNotFoundError
from xetrack.store.postgres.spill import RESERVE, UNITS_SQL, budget

SPAWN = mp.get_context("spawn")


class Thing:
    """Not a plain value: logged into the asset store, the row holds its hash."""

    def __init__(self, n):
        self.n = n

    def __eq__(self, other):
        return isinstance(other, Thing) and other.n == self.n


def missing(v):
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def same(logged, read):
    """``read`` is ``logged`` as the key's logical type reads it back: no value as None,
    NaN or NA; a bool in a numeric key as 0/1; an int in a REAL key as a float; a -0.0
    keeps its sign. Anything else: the same type and value."""
    if missing(logged) or missing(read):
        return missing(logged) and missing(read)
    if hasattr(read, "item") and not isinstance(read, (bytes, str)):
        read = read.item()  # numpy scalars of typed frame columns
    if isinstance(read, float) and type(logged) in (int, float):
        return float(logged) == read and math.copysign(1, float(logged)) == math.copysign(1, read)
    if type(logged) is bool and type(read) is int:
        return int(logged) == read
    if type(logged) is int and type(read) is bool:
        return logged in (0, 1) and bool(logged) == read
    return type(logged) is type(read) and logged == read


def raw(url, query, params=()):
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else cursor.rowcount


def live_columns(url, table="default"):
    query = (
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(quote_ident(%s)) AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum"
    )
    return [name for (name,) in raw(url, query, (table,))]


def room(url, table="default"):
    """(units of 8 bytes the table's columns take, the most a row can hold: store/postgres/spill.py)."""
    used, _, block_size = raw(url, UNITS_SQL, (table,))[0]
    return used, budget(block_size)


def spill_rows(url, track_id=None):
    if track_id is None:
        return raw(url, "SELECT count(*) FROM xetrack_spill")[0][0]
    query = (
        'SELECT count(*) FROM xetrack_spill s JOIN "default" t ON t."xetrack$row" = s."row" '
        'WHERE s."tbl" = \'default\' AND t."track_id" = %s'
    )
    return raw(url, query, (track_id,))[0][0]


def check_frame(frame, rows, context=""):
    """Every row of ``rows`` (dicts as logged, in order) in ``frame``: each key's value,
    and no value where the row had none."""
    assert len(frame) == len(rows), context
    columns = list(frame.columns)
    for i, row in enumerate(rows):
        lower = {k.lower(): v for k, v in row.items()}
        for j, name in enumerate(columns):
            if name == "timestamp" and name not in row:
                continue  # a batch row: its stamp was given by log_batch
            logged, read = lower.get(name.lower()), frame.iat[i, j]
            assert same(logged, read), f"{context} row {i} key {name}: {logged!r} != {read!r}"


def test_the_issues_2500_keys_log_and_read_back_everywhere(pg_url):
    t = Tracker(pg_url, params={"model": "m"})
    rows = [t.log({f"class_{i}_f1": i / 3000 for i in range(2500)})]
    for step in range(2):
        rows.append(t.log({"step": step, **{f"class_{i}_f1": i / 3000 + step for i in range(2500)}}))
    columns = live_columns(pg_url)
    used, most = room(pg_url)
    # any row fits a page: the columns take at most the budget, params and steps among them
    assert most - RESERVE - 10 < used <= most and "model" in columns and "step" in columns
    assert "class_2499_f1" not in columns
    reader = Reader(pg_url)
    frame = reader.to_df()
    assert frame.shape == (3, 2 + 2500 + 2) and "xetrack$row" not in frame.columns
    assert "class_2499_f1" in reader.columns and len(reader.columns) == 2504
    assert reader.store.spilled("default")[0] == f"class_{len(columns) - 6}_f1"  # in the order they came
    check_frame(frame, rows, "to_df")
    check_frame(reader.to_df(head=2), rows[:2], "head")
    check_frame(reader.to_df(tail=2), rows[1:], "tail")
    check_frame(reader.to_df(track_id=t.track_id), rows, "run")
    check_frame(reader.latest(), rows, "latest")
    check_frame(t.to_df(), rows, "Tracker.to_df")
    assert t.latest == rows[-1] and Tracker(pg_url, track_id=t.track_id).latest == rows[-1]
    assert t[1]["class_2400_f1"] == 2400 / 3000 and t[-1]["class_2499_f1"] == 2499 / 3000 + 1
    assert frame["class_2499_f1"].dtype == "float64" and reader.store.column_types("default")["class_2499_f1"] == "REAL"
    duck = Reader(pg_url, engine="duckdb").to_df()  # DuckDB's scanner: the psycopg read for spilled keys
    pd.testing.assert_frame_equal(duck, frame)


def test_set_value_set_where_and_delete_run_on_spilled_keys(pg_url):
    a, b = Tracker(pg_url, track_id="a"), Tracker(pg_url, track_id="b")
    wide = {f"k{i}": i for i in range(1200)}
    for step in range(2):
        a.log({**wide, "step": step})
    b.log(wide)
    key = Reader(pg_url).store.spilled("default")[-1]
    assert key == "k1199"
    assert a.set_value(key, "text") == 2
    assert a.set_value("K1198", 2.5) == 2  # any case: the spilled key
    assert a.set_where("k1197", None, "step", 1) == 1
    assert Reader(pg_url).set_value("k1196", b"\x00bytes", track_id="b") == 1
    assert a.set_value("brand_new", 7) == 2  # a new key still gets a column
    frame = Reader(pg_url).to_df()
    assert frame["k1199"].tolist() == ["text", "text", 1199]
    assert frame["k1198"].tolist() == [2.5, 2.5, 1198.0] and frame["k1198"].dtype == "float64"
    assert frame["k1197"].iloc[0] == frame["k1197"].iloc[2] == 1197 and pd.isna(frame["k1197"].iloc[1])
    assert frame["k1196"].tolist() == [1196, 1196, b"\x00bytes"]
    with pytest.raises(ColumnNotFoundError, match="kept past the table's columns"):
        a.set_where("k0", 1, "k1199", "text")  # a spilled key cannot pick rows
    assert Reader(pg_url).to_df()["k1199"].tolist() == ["text", "text", 1199]
    before = spill_rows(pg_url, "b")
    assert spill_rows(pg_url, "a") > 0 and before > 0
    assert Reader(pg_url).delete_run("a") == 2
    assert spill_rows(pg_url, "a") == 0 and spill_rows(pg_url, "b") == before
    assert spill_rows(pg_url) == before  # none left behind for the deleted rows
    check_frame(Reader(pg_url).to_df(), [{**wide, "k1196": b"\x00bytes", "track_id": "b"}], "after delete_run")
    assert Reader(pg_url).store.delete("default", {"track_id": "b"}) == 1  # the engine's own delete
    assert spill_rows(pg_url) == 0 and len(Reader(pg_url).to_df()) == 0


def value_of(family, rng):
    if family == "int":
        return rng.choice([0, -1, 7, 2**53 + 1, -(2**62) - 3, 2**63 - 1, rng.randrange(-(10**6), 10**6)])
    if family == "float":
        return rng.choice([0.1, -0.0, math.inf, -math.inf, math.nan, 1e300, 5e-324, rng.random(), 1 / 3])
    if family == "bool":
        return rng.random() < 0.5
    if family == "str":
        return rng.choice(["", "héllo ✓ 日本", "x'y\"z;--", str(rng.random()), "a" * 40])
    if family == "bytes":
        return rng.choice([b"", b"\x00\xff", bytes(rng.randrange(256) for _ in range(12))])
    if family == "object":
        return Thing(rng.randrange(5))
    if family == "mixed":
        return value_of(rng.choice(["int", "str", "bool", "bytes"]), rng) if rng.random() < 0.9 else None
    return None


FAMILIES = ["int", "float", "bool", "str", "bytes", "object", "mixed", "none"]
DTYPES = {"int": "Int64", "float": "float64", "bool": "boolean"}


@pytest.mark.parametrize("seed", [11, 23])
def test_random_mixes_of_narrow_and_wide_rows_read_back_as_logged(pg_url, seed):
    rng = random.Random(seed)
    print(f"seed {seed}")
    families: dict[str, str] = {}
    tracker = Tracker(pg_url, params={"lr": 0.5})
    rows: list[dict] = []  # as stored: what log() returned, or a batch row with the params

    def keys(width):
        known = list(families)
        fresh = rng.random() < 0.6
        chosen = set(rng.sample(known, min(len(known), width)))
        while fresh and len(chosen) < width:
            name = f"k{len(families)}" if rng.random() < 0.8 else f"MiXed_{len(families)}"
            families[name] = rng.choice(FAMILIES)
            chosen.add(name)
        out = list(chosen)
        rng.shuffle(out)
        return out

    for n in range(16):
        if n and rng.random() < 0.3:  # the sweep's next run, with a new Tracker
            tracker = Tracker(pg_url, params={"lr": 0.5})
        width = rng.choice([0, 1, 3, 40, rng.randrange(0, 3001), 3000, rng.randrange(800, 1100)])
        names = keys(width)
        if rng.random() < 0.25:  # a batch: plain values only (objects go through log())
            plain = [k for k in names if families[k] != "object"]
            batch = [{k: value_of(families[k], rng) for k in plain} for _ in range(rng.randrange(1, 4))]
            tracker.log_batch(batch)
            ends = {"lr": 0.5, "track_id": tracker.track_id}
            rows += [{**{k: None if missing(v) else v for k, v in r.items()}, **ends} for r in batch]
        else:
            data = {k: value_of(families[k], rng) for k in names}
            stored = tracker.log(data)
            for k, v in data.items():
                if isinstance(v, Thing):
                    assert Reader(pg_url).assets[stored[k]] == v
            rows.append(stored)
        if n % 5 == 4:
            check_frame(Reader(pg_url).to_df(tail=3), rows[-3:], f"seed {seed} tail after {n}")
    frame = Reader(pg_url).to_df()
    check_frame(frame, rows, f"seed {seed}")
    for name, family in families.items():
        if family in DTYPES and name in frame.columns and frame[name].notna().any():
            assert str(frame[name].dtype) == DTYPES[family], (seed, name, family)
    latest = tracker.latest
    for k, v in rows[-1].items():
        if k != "timestamp" or k in latest:
            assert same(v, latest.get(k)), (seed, k)
    used, most = room(pg_url)
    assert used <= most
    runs: dict[str, list[dict]] = {}
    for row in rows:
        runs.setdefault(row["track_id"], []).append(row)
    numbers = sorted(k for k, family in families.items() if family in ("int", "float"))
    check_run_reads(pg_url, runs, numbers, rng, f"seed {seed}")


def _adder(url, worker, keys, result):
    try:
        rng = random.Random(worker)
        tracker = Tracker(url, params={"worker": worker})
        for r in range(6):
            chosen = keys[: (r + 1) * len(keys) // 6]
            rng.shuffle(chosen)
            data = {(k if worker == 0 else k.upper()): worker * 1_000_000 + r * 10_000 + int(k[1:]) for k in chosen}
            tracker.log(data)
        tracker.log_batch([{k: -int(k[1:]) - worker for k in keys[:1500]} for _ in range(2)])
        result.put((worker, None))
    except BaseException:  # noqa: BLE001 - any failure goes to the test as the worker's traceback
        result.put((worker, traceback.format_exc()))


def test_two_processes_adding_keys_at_once_spill_the_same_way_and_lose_no_row(pg_url):
    keys = [f"c{i}" for i in range(2200)]
    run_workers(_adder, [(pg_url, w, list(keys)) for w in range(2)])
    reader = Reader(pg_url)
    spilled = reader.store.spilled("default")
    columns = live_columns(pg_url)
    assert room(pg_url)[0] <= room(pg_url)[1] and len(spilled) == len({k.lower() for k in spilled})
    assert not {k.lower() for k in spilled} & {c.lower() for c in columns}  # a key is one or the other
    assert {c.lower() for c in columns if c.startswith(("c", "C"))} | {k.lower() for k in spilled} == set(keys)
    frame = reader.to_df()
    assert len(frame) == 2 * (6 + 2)
    frame.columns = [c.lower() for c in frame.columns]  # each key as the first process spelled it
    for worker in (0, 1):
        mine = frame[frame["worker"] == worker].reset_index(drop=True)
        for r in range(6):
            for k in keys[: (r + 1) * len(keys) // 6]:
                assert mine.at[r, k] == worker * 1_000_000 + r * 10_000 + int(k[1:]), (worker, r, k)
        assert all(mine.at[6 + b, k] == -int(k[1:]) - worker for b in range(2) for k in keys[:1500])


def test_runs_and_search_work_on_a_spilled_table(pg_url):
    for i in range(3):
        t = Tracker(pg_url, params={"model": f"m{i}"}, track_id=f"r{i}")
        for step in range(2):
            t.log({"step": step, "loss": 1 / (i + step + 1), **{f"f{j}": j + i + step for j in range(1500)}})
    reader = Reader(pg_url)
    runs = reader.runs()
    assert runs["track_id"].tolist() == ["r0", "r1", "r2"] and runs["model"].tolist() == ["m0", "m1", "m2"]
    assert runs["loss"].tolist() == [1 / 2, 1 / 3, 1 / 4] and runs["f0"].tolist() == [1, 2, 3]
    assert reader.search("params.model = 'm1'")["track_id"].tolist() == ["r1"]
    assert reader.search("metrics.loss < 0.3", order_by="-loss")["track_id"].tolist() == ["r2"]


def test_objects_under_spilled_keys_keep_their_assets_until_their_run_goes(pg_url):
    t = Tracker(pg_url, track_id="a")
    row = t.log({**{f"p{i}": float(i) for i in range(1000)}, "thing": Thing(42)})
    assert "thing" in Reader(pg_url).store.spilled("default")
    digest = row["thing"]
    assert Reader(pg_url).gc().assets == 0 and Reader(pg_url).assets[digest] == Thing(42)
    Tracker(pg_url, track_id="b").log({"p0": 1.0})
    with Tracker(pg_url, track_id="a") as again:  # a lifecycle row, ended, for prune to find
        again.log({"p1": 2.0})
    raw(pg_url, "UPDATE xetrack_runs SET \"status\" = 'failed' WHERE \"track_id\" = 'a'")
    assert Reader(pg_url).prune(status="failed").track_ids == ["a"]
    assert spill_rows(pg_url) == 0 and digest not in Reader(pg_url).assets
    assert Reader(pg_url).to_df()["track_id"].tolist() == ["b"]


def test_a_spilled_key_stays_spilled_in_any_case_and_any_process(pg_url):
    first = Tracker(pg_url)
    first.log({f"w{i}": i for i in range(1000)})
    spilled = Reader(pg_url).store.spilled("default")
    assert spilled[-1] == "w999"
    other = Tracker(pg_url)  # another Tracker: a narrow row of only spilled keys, in another case
    other.log({"W999": "narrow", "w998": True})
    assert "w999" not in live_columns(pg_url) and Reader(pg_url).store.spilled("default") == spilled
    frame = Reader(pg_url).to_df()
    assert frame["w999"].tolist() == [999, "narrow"] and frame["w998"].tolist() == [998, 1]
    assert list(Reader(pg_url).to_df().columns[-2:]) == ["w998", "w999"]


@pytest.mark.parametrize("first", ["numbers", "none", "strings"])
def test_any_row_fits_a_page_whatever_its_values(pg_url, first):
    """The worst rows for a page: every column filled with 8-byte numbers, or with strings
    and JSON values just short of what TOAST moves out of the row (24 bytes)."""
    t = Tracker(pg_url, track_id="t" * 63, params={"a_long_param_name": "v" * 200})
    ints = {f"i{j}": 2**62 + j for j in range(1500)}
    floats = {f"f{j}": -1e300 * j for j in range(1500)}
    rows = []
    if first == "none":  # JSONB columns (a key first logged as None), then numbers in them
        rows.append(t.log(dict.fromkeys([*ints, *floats])))
    if first == "strings":  # TEXT columns of values TOAST keeps in the row
        rows.append(t.log({k: f"{k:>8}-0123456789abc" for k in [*ints, *floats]}))
        rows.append(t.log(dict.fromkeys([*ints, *floats], "é" * 11)))
    rows += [t.log({**ints, **floats}), t.log({**floats, "flag": True, **ints})]
    used, most = room(pg_url)
    assert used <= most
    check_frame(Reader(pg_url).to_df(), rows, first)


def test_batches_and_a_big_batch_with_spilled_keys(pg_url):
    t = Tracker(pg_url)
    t.log({f"x{i}": i for i in range(950)})
    assert Reader(pg_url).store.spilled("default")
    big = [{"x949": i, "x0": -i, "fresh": i * 0.5} for i in range(20_000)]  # past the stream's threshold
    assert t.log_batch(big) == 20_000
    frame = Reader(pg_url).to_df()
    assert len(frame) == 20_001 and frame["x949"].tolist()[1:] == list(range(20_000))
    assert frame["fresh"].tolist()[-1] == 19_999 * 0.5


def test_a_copy_carries_spilled_keys(pg_server, pg_url):
    t = Tracker(pg_url, params={"model": "m"})
    rows = [t.log({f"c{i}": (i if i % 2 else str(i)) for i in range(1200)}) for _ in range(2)]
    target = pg_server.create_database()
    xetrack.copy(pg_url, target)
    check_frame(Reader(target).to_df(), rows, "copy")
    assert room(target)[0] <= room(target)[1] and Reader(target).store.spilled("default")


def test_a_copy_from_a_file_keeps_a_late_param_a_column(pg_server, tmp_path):
    """A param that came after a thousand metrics (a second run's new param) takes a
    column from the reserve in the file; the copy's rows carry its role, so it does in
    PostgreSQL too, where a metric in its place would be spilled."""
    path = str(tmp_path / "wide.db")
    wide = {f"c{i}": float(i) for i in range(1200)}
    first = Tracker(path, params={"model": "m"}).log(wide)
    second = Tracker(path, params={"model": "m", "seed": 3}).log({**wide, "late_metric": 1.0})
    target = pg_server.create_database()
    xetrack.copy(path, target)
    columns = live_columns(target)
    assert "seed" in columns and "model" in columns
    assert "late_metric" not in columns and "late_metric" in Reader(target).store.spilled("default")
    check_frame(Reader(target).to_df(), [first, second], "copy")


def _log_wide_rows(url):
    tracker = Tracker(url, track_id="killed")
    for r in range(10_000):
        tracker.log({"r": r, **{f"k{i}": r * 10_000 + i for i in range(1500)}})


@pytest.mark.parametrize("seed", [5])
def test_a_kill_leaves_each_row_whole_with_its_spilled_values(pg_url, seed):
    """SIGKILL at a random point of a process logging rows with spilled keys: each row
    that made it has every value, none of a row that did not make it is left behind."""
    import os
    import signal
    import time

    rng = random.Random(seed)
    print(f"seed {seed}")
    child = SPAWN.Process(target=_log_wide_rows, args=(pg_url,))
    child.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a few rows in, then a random moment
        found = raw(pg_url, "SELECT to_regclass('\"default\"') IS NOT NULL")[0][0]
        if found and raw(pg_url, 'SELECT count(*) FROM "default"')[0][0] >= 2:
            break
        time.sleep(0.05)
    time.sleep(rng.uniform(0, 0.5))
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    frame = Reader(pg_url).to_df()
    assert len(frame) >= 2 and frame["r"].tolist() == list(range(len(frame))), seed
    for r in range(len(frame)):
        assert [frame.at[r, f"k{i}"] for i in range(1500)] == [r * 10_000 + i for i in range(1500)], (seed, r)
    known = raw(pg_url, 'SELECT "xetrack$row" FROM "default"')
    orphans = 'SELECT count(*) FROM xetrack_spill WHERE "row" <> ALL(%s)'
    assert raw(pg_url, orphans, ([k for (k,) in known],))[0][0] == 0, seed


def test_a_reset_or_a_table_dropped_by_hand_starts_without_the_old_spill(pg_url):
    old = Tracker(pg_url)
    old.log({f"o{i}": i for i in range(1200)})
    assert Reader(pg_url).store.spilled("default")
    fresh = Tracker(pg_url, reset=True)  # row numbers start again at 1: old spill rows must be gone
    row = fresh.log({f"n{i}": -i for i in range(1000)})
    check_frame(Reader(pg_url).to_df(), [row], "after reset")
    assert all(not k.startswith("o") for k in Reader(pg_url).store.spilled("default"))
    raw(pg_url, 'DROP TABLE "default"')  # behind xetrack's back
    again = Tracker(pg_url).log({"x": 1})
    check_frame(Reader(pg_url).to_df(), [again], "after a drop by hand")
    assert Reader(pg_url).store.spilled("default") == [] and spill_rows(pg_url) == 0


def test_run_reads_over_spilled_keys_agree_with_a_sqlite_file(pg_url, tmp_path):
    """runs/search/history/compare/aggregate see keys past the columns on PostgreSQL as
    on a SQLite file holding the same rows; a set_value of a spilled key is seen at once."""
    path = str(tmp_path / "same.db")
    for i in range(4):
        for url in (pg_url, path):
            t = Tracker(url, params={"model": f"m{i % 2}", "seed": i}, track_id=f"r{i}")
            for step in range(3):
                t.log({"step": step, **{f"class_{j}_f1": (i * 7 + j + step) % 11 / 10 for j in range(1700)}})
    pg, lite = Reader(pg_url), Reader(path)
    assert "class_1699_f1" in pg.store.spilled("default")
    late = "class_1699_f1"

    def agree(read):
        clock = ["start", "end", "duration", "timestamp"]  # when each store got its rows
        ours, theirs = (read(r).drop(columns=clock, errors="ignore").reset_index(drop=True) for r in (pg, lite))
        pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)
        return ours

    runs = agree(lambda r: r.runs())
    assert runs[late].tolist() == [(i * 7 + 1699 + 2) % 11 / 10 for i in range(4)]
    agree(lambda r: r.runs(agg="max")[["track_id", late]])
    found = agree(lambda r: r.search(f"{late} > 0.3", order_by=f"-{late}"))
    assert found["track_id"].tolist() and all(found[late] > 0.3)
    assert found[late].is_monotonic_decreasing
    history = agree(lambda r: r.history(late, track_id="r2"))
    assert history["value"].tolist() == [(14 + 1699 + s) % 11 / 10 for s in range(3)]
    agree(lambda r: r.history(late))
    agree(lambda r: (lambda c: c[~c.iloc[:, 0].isin(["start", "end", "duration"])])(r.compare(["r0", "r3"])))
    agree(lambda r: r.aggregate(late, by=["model"]))
    for reader in (Reader(pg_url), Reader(path)):
        assert reader.set_value(late, 9.5, track_id="r1") == 3
    runs = agree(lambda r: r.runs())  # the copy of the PostgreSQL table saw the change
    assert runs.set_index("track_id").loc["r1", late] == 9.5
    more = Tracker(pg_url, params={"model": "m0", "seed": 9}, track_id="r9")
    more.log({"step": 0, late: 0.25})
    assert Reader(pg_url).runs().set_index("track_id").loc["r9", late] == 0.25  # new rows read since


def test_xt_du_counts_spilled_values_in_their_runs(pg_url):
    wide = Tracker(pg_url, track_id="wide")
    for step in range(10):
        wide.log({"step": step, **{f"class_{i}_f1": step + i / 3000 for i in range(2500)}})
    Tracker(pg_url, track_id="narrow").log({"step": 0, "class_0_f1": 0.5})
    du = json.loads(ok("du", pg_url, "--json"))
    runs = {r["track_id"]: r for r in du["runs"]}
    spill_bytes = raw(pg_url, "SELECT pg_total_relation_size('xetrack_spill')")[0][0]
    assert runs["wide"]["row_bytes"] > 0.5 * spill_bytes > 100 * runs["narrow"]["row_bytes"] > 0
    assert "xetrack_spill" not in {t["table"] for t in du["internal"]}
