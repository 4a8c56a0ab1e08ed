"""Two SQLite libraries in one process (Python's and DuckDB's) never lose a row.

The reproduction from issue 11, then seeded random mixes of both engines, dropped
objects, ``tracker.conn`` SQL, updates, forked writers, garbage-collector timing, and
since issue 20 the connections kept idle between owners (reaped or not, a file copied
alone, removed or moved right after its last close).
Replay one sequence with ``pytest tests/test_duckdb_guard.py -k 'seed_17'``; set
XETRACK_GUARD_SEQUENCES for more of them (``make stress`` runs 400).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import shutil
import sqlite3
import time
import traceback

import duckdb
import pytest

from filecheck import integrity
from xetrack import Reader, Tracker
from xetrack.store.sqlite import idle
from xetrack.store.sqlite.guard import guard_for


def stored_seqs(db: str, table: str = "default") -> list[int]:
    con = sqlite3.connect(db)
    try:
        columns = {name for (name,) in con.execute("SELECT name FROM pragma_table_info(?)", (table,))}
        if "seq" not in columns:
            return []
        return [s for (s,) in con.execute(f'SELECT seq FROM "{table}" WHERE seq IS NOT NULL')]
    finally:
        con.close()


def reproduction(db: str) -> None:
    tracker = Tracker(db, params={"model": "lightgbm"})
    tracker.log({"accuracy": 0.9})
    tracker.log({"accuracy": 0.7})
    gc.collect()
    del tracker  # no close()
    reader = Reader(db, engine="duckdb")
    reader.to_df()
    reader.set_value("accuracy", 0.8)
    reader.to_df()
    del reader
    gc.collect()


@pytest.mark.parametrize("gc_enabled", [True, False], ids=["gc", "gc-disabled"])
def test_the_reproduction_keeps_the_file_and_its_rows(tmp_path, gc_enabled):
    db = str(tmp_path / "exp.db")
    was = gc.isenabled()
    if not gc_enabled:
        gc.disable()
    try:
        reproduction(db)
    finally:
        if was:
            gc.enable()
    assert integrity(db) == "ok"
    frame = Reader(db).to_df()
    assert frame["accuracy"].tolist() == [0.8, 0.8]
    assert frame["model"].tolist() == ["lightgbm", "lightgbm"]


def test_a_dropped_trackers_connection_is_closed_before_duckdb_opens_the_file(tmp_path):
    db = str(tmp_path / "exp.db")
    gc.disable()
    try:
        tracker = Tracker(db)
        tracker.log({"x": 1})
        tracker.conn.execute('SELECT 1 FROM db."default"').fetchall()
        tracker.itself = tracker  # a cycle, as a notebook's closures and loggers make
        del tracker  # no close(): it waits for the collector, its connections open
        guard = guard_for(db)
        assert guard.open_count() >= 1
        reader = Reader(db, engine="duckdb")
        assert reader.to_df()["x"].tolist() == [1]
        # DuckDB's read ran with no sqlite3 connection of this process open; the
        # Reader's own reopened afterwards only.
        with guard.duckdb():
            assert guard.open_count() == 0
    finally:
        gc.enable()


def test_a_dropped_tracker_outside_a_cycle_closes_its_connections_at_once(tmp_path):
    db = str(tmp_path / "exp.db")
    tracker = Tracker(db)
    tracker.log({"x": 1})
    guard = guard_for(db)
    assert guard.open_count() == 1
    del tracker
    assert guard.open_count() == 0


def test_nothing_taken_from_tracker_conn_reaches_the_file_outside_the_guard(tmp_path):
    db = str(tmp_path / "exp.db")
    tracker = Tracker(db, engine="duckdb")
    tracker.log({"x": 1})
    conn = tracker.conn
    cursor = conn.cursor()
    cursor.execute('SELECT x FROM db."default"')  # DB-API style: execute, then fetch
    assert cursor.fetchall() == [(1,)]
    assert conn.execute('SELECT x FROM db."default"').fetchall() == [(1,)]
    relation = conn.execute('SELECT x FROM db."default"')
    # The relation holds fetched data; its connection has no file attached.
    with pytest.raises(duckdb.Error):
        relation.query("r", 'SELECT * FROM db."default"').fetchall()
    # DuckDB's own connection, reached through the wrapper, sees no attached SQLite file.
    names = [r[0] for r in tracker._engine.duck.execute("SELECT database_name FROM duckdb_databases()").fetchall()]
    assert "db" not in names
    # A view over the file made through the guard fails outside it instead of reading.
    conn.execute('CREATE VIEW v AS SELECT * FROM db."default"')
    with pytest.raises(duckdb.Error):
        tracker._engine.duck.execute("SELECT * FROM v").fetchall()
    assert conn.execute("SELECT x FROM v").fetchall() == [(1,)]
    # USE db persists across calls, as in a DuckDB shell.
    conn.execute("USE db")
    assert conn.execute('SELECT count(*) FROM "default"').fetchall() == [(1,)]
    tracker.log({"x": 2})
    assert integrity(db) == "ok"
    assert Reader(db).to_df()["x"].tolist() == [1, 2]


def test_duckdb_reads_leave_the_wal_of_a_connection_the_guard_cannot_see(tmp_path):
    # The user's own sqlite3 connection is out of the guard's reach; DuckDB attaches the
    # file read-only for reads, so its SQLite never checkpoints or deletes the WAL.
    db = str(tmp_path / "exp.db")
    Tracker(db).log({"x": 0})
    own = sqlite3.connect(db, isolation_level=None)
    own.execute('INSERT INTO "default" (x) VALUES (1)')
    reader = Reader(db, engine="duckdb")
    for i in range(2, 6):
        assert reader.to_df()["x"].tolist() == list(range(i))
        assert reader.conn.execute('SELECT count(*) FROM db."default"').fetchall() == [(i,)]
        own.execute('INSERT INTO "default" (x) VALUES (?)', (i,))
    assert os.path.exists(db + "-wal")
    other = sqlite3.connect(db)
    assert other.execute('SELECT count(*) FROM "default"').fetchone()[0] == 6
    own.close()
    other.close()
    assert integrity(db) == "ok"


def test_writes_through_duckdb_sql_land_in_the_file(tmp_path):
    db = str(tmp_path / "exp.db")
    tracker = Tracker(db, engine="duckdb")
    tracker.log({"x": 1})
    tracker.conn.execute('UPDATE db."default" SET x = 5')
    tracker.log({"x": 2})
    assert Reader(db).to_df()["x"].tolist() == [5, 2]
    assert integrity(db) == "ok"


def test_a_transaction_left_open_is_rolled_back_with_a_clear_error(tmp_path):
    from xetrack.errors import DatabaseError

    db = str(tmp_path / "exp.db")
    tracker = Tracker(db, engine="duckdb")
    tracker.log({"x": 1})
    with pytest.raises(DatabaseError, match=r"BEGIN \.\.\. COMMIT in one execute"):
        tracker.conn.execute('BEGIN; UPDATE db."default" SET x = 9')
    tracker.log({"x": 2})
    assert Reader(db).to_df()["x"].tolist() == [1, 2]


def test_in_memory_duckdb_tracker_leaves_nothing_on_disk(tmp_path):
    tracker = Tracker(Tracker.IN_MEMORY, engine="duckdb", params={"model": "m"})
    tracker.log({"acc": 0.5})
    tracker.log_batch([{"acc": 0.6}, {"acc": 0.7}])
    assert tracker.track(pow, args=[2, 5]) == 32

    @tracker.wrap()
    def double(x):
        return 2 * x

    assert double(4) == 8
    digest = tracker.log({"obj": {1, 2}})["obj"]
    assert tracker.get(digest) == {1, 2}
    frame = tracker.to_df()
    assert frame["acc"].dropna().tolist() == [0.5, 0.6, 0.7]
    assert tracker.conn.execute('SELECT count(*) FROM db."default"').fetchall() == [(6,)]
    folder = os.path.dirname(tracker._engine.path)
    assert os.path.isdir(folder)
    del tracker, double
    gc.collect()
    assert not os.path.exists(folder)


# ---------------------------------------------------------------- randomized mixes
class Mix:
    """One random sequence of operations on two files; ``expected`` is what returned."""

    def __init__(self, seed: int, folder: str) -> None:
        self.rng = random.Random(seed)
        self.files = [os.path.join(folder, "a.db"), os.path.join(folder, "b.db")]
        self.expected: dict[str, set[int]] = {f: set() for f in self.files}
        self.trackers: list[Tracker] = []
        self.readers: list[Reader] = []
        self.next_seq = 0
        self.ops: list[str] = []

    def seq(self) -> int:
        self.next_seq += 1
        return self.next_seq

    def engine(self) -> str:
        return self.rng.choice(["sqlite", "duckdb"])

    def pick(self, items: list) -> object | None:
        return self.rng.choice(items) if items else None

    def step(self) -> None:
        rng = self.rng
        op = rng.choice(
            [
                "tracker",
                "tracker",
                "log",
                "log",
                "log",
                "batch",
                "drop_tracker",
                "close_tracker",
                "reader",
                "read",
                "drop_reader",
                "set_value",
                "reader_set_value",
                "conn",
                "cursor",
                "gc",
                "gc_toggle",
                "fork",
                "runs",
                "idle_wait",
                "copy_alone",
                "remove_file",
                "move_file",
            ]
        )
        self.ops.append(op)
        getattr(self, "op_" + op)()

    def op_tracker(self) -> None:
        db = self.rng.choice(self.files)
        self.trackers.append(Tracker(db, engine=self.engine(), params={"p": self.rng.randint(0, 3)}))

    def op_log(self) -> None:
        tracker = self.pick(self.trackers)
        if tracker is not None:
            s = self.seq()
            tracker.log({"seq": s, "v": self.rng.random()})
            self.expected[tracker.db].add(s)

    def op_batch(self) -> None:
        tracker = self.pick(self.trackers)
        if tracker is not None:
            seqs = [self.seq() for _ in range(self.rng.randint(1, 20))]
            tracker.log_batch([{"seq": s, "w": s % 7} for s in seqs])
            self.expected[tracker.db].update(seqs)

    def op_drop_tracker(self) -> None:
        if self.trackers:
            self.trackers.pop(self.rng.randrange(len(self.trackers)))  # no close()

    def op_close_tracker(self) -> None:
        tracker = self.pick(self.trackers)
        if tracker is not None:
            tracker.close()  # and keep using it: it reopens

    def op_reader(self) -> None:
        db = self.rng.choice(self.files)
        if os.path.exists(db):
            self.readers.append(Reader(db, engine=self.engine()))

    def op_read(self) -> None:
        reader = self.pick(self.readers)
        if reader is not None:
            frame = reader.to_df()
            seqs = set(frame["seq"].dropna().astype(int)) if "seq" in frame else set()
            missing = self.expected[reader.db] - seqs
            assert not missing, f"a read lost rows {sorted(missing)[:10]}"

    def op_drop_reader(self) -> None:
        if self.readers:
            self.readers.pop(self.rng.randrange(len(self.readers)))

    def op_set_value(self) -> None:
        tracker = self.pick(self.trackers)
        if tracker is not None:
            tracker.set_value("v", self.rng.random())

    def op_reader_set_value(self) -> None:
        reader = self.pick(self.readers)
        if reader is not None:
            reader.set_value("p", self.rng.randint(0, 3))

    def op_conn(self) -> None:
        view = self.pick(self.trackers + self.readers)
        if view is not None:
            n = view.conn.execute('SELECT count(*) FROM db."default"').fetchall()[0][0]
            assert n >= len(self.expected[view.db])

    def op_cursor(self) -> None:
        view = self.pick(self.trackers + self.readers)
        if view is not None:
            cursor = view.conn.cursor()
            cursor.execute('SELECT count(*) FROM db."default"')
            assert cursor.fetchall()[0][0] >= len(self.expected[view.db])

    def op_gc(self) -> None:
        gc.collect()

    def op_gc_toggle(self) -> None:
        gc.disable() if gc.isenabled() else gc.enable()

    def op_fork(self) -> None:
        # The child writes with a Tracker it inherited (its connections crossed the fork)
        # or a new one, and may read with DuckDB before it exits.
        inherited = self.pick(self.trackers) if self.rng.random() < 0.5 else None
        db = inherited.db if inherited is not None else self.rng.choice(self.files)
        engine, read = self.engine(), self.rng.random() < 0.5
        first, n = self.next_seq + 1, self.rng.randint(1, 5)
        self.next_seq += n

        def child() -> None:
            try:
                tracker = inherited if inherited is not None else Tracker(db, engine=engine)
                tracker.log_batch([{"seq": first + i} for i in range(n)])
                if read:
                    Reader(db, engine="duckdb").to_df()
            except BaseException:  # noqa: BLE001 - a forked child reports any failure in its exit status
                traceback.print_exc()
                os._exit(1)
            os._exit(0)  # as multiprocessing's fork children do: no atexit, no finalizers

        process = multiprocessing.get_context("fork").Process(target=child)
        process.start()
        process.join(60)
        assert process.exitcode == 0, f"forked writer exited with {process.exitcode}"
        self.expected[db].update(range(first, first + n))

    # Idle connections (store/sqlite/idle.py): a file is handed on between owners, checkpointed
    # when it is let go, closed by the reaper, and must survive what users do with files.
    def _let_go(self, db: str) -> None:
        """Close every Tracker and Reader of ``db`` (and collect the dropped ones)."""
        for view in [v for v in self.trackers + self.readers if v.db == db]:
            view.close()
        self.trackers = [t for t in self.trackers if t.db != db]
        self.readers = [r for r in self.readers if r.db != db]
        gc.collect()

    def op_idle_wait(self) -> None:
        # The reaper closes what nobody took (when the mix reaps soon; else it waits on).
        time.sleep(min(idle.IDLE_SECONDS, 0.2) + 0.05)

    def op_copy_alone(self) -> None:
        # `cp exp.db` right after the last close: the file alone holds every row.
        db = self.rng.choice(self.files)
        if not os.path.exists(db):
            return
        self._let_go(db)
        # A forked child that ended with os._exit never closed: its rows wait in the WAL
        # for the next checkpoint, which is the next close here.
        Tracker(db).close()
        copy = db + f".copy{self.seq()}"
        shutil.copyfile(db, copy)
        assert set(stored_seqs(copy)) == self.expected[db], "the file alone misses rows after the last close"
        os.remove(copy)

    def op_remove_file(self) -> None:
        # `rm exp.db` (not its -wal and -shm), then start again under the same name.
        db = self.rng.choice(self.files)
        if not os.path.exists(db):
            return
        self._let_go(db)
        # A forked child that ended with os._exit left its rows in the WAL (a "hot" WAL):
        # removing the file then is SQLite's own hazard, whoever keeps connections. The
        # user's removal comes after a clean close, which a close here makes.
        Tracker(db).close()
        os.remove(db)
        self.expected[db] = set()

    def op_move_file(self) -> None:
        db = self.rng.choice(self.files)
        if not os.path.exists(db):
            return
        self._let_go(db)
        Tracker(db).close()  # as in op_copy_alone
        moved = db + f".moved{self.seq()}"
        os.rename(db, moved)
        assert set(stored_seqs(moved)) == self.expected[db], "a moved file misses rows"
        self.expected[db] = set()

    def op_runs(self) -> None:
        reader = self.pick(self.readers)
        if reader is not None:
            reader.runs()

    def check(self) -> None:
        self.trackers.clear()
        self.readers.clear()
        gc.enable()
        gc.collect()
        for db in self.files:
            if not os.path.exists(db):
                assert not self.expected[db]
                continue
            assert integrity(db) == "ok", f"{os.path.basename(db)} is damaged"
            stored = stored_seqs(db)
            missing = self.expected[db] - set(stored)
            assert not missing, f"{len(missing)} logged rows lost from {os.path.basename(db)}: {sorted(missing)[:10]}"
            assert len(stored) == len(set(stored)), "a row was stored twice"
            back = set(stored) - self.expected[db]
            assert not back, f"rows of a removed file came back: {sorted(back)[:10]}"


SEQUENCES = int(os.environ.get("XETRACK_GUARD_SEQUENCES", "40"))


def run_mix(seed: int, folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mix = Mix(seed, folder)
    # Idle connections: kept long or reaped soon, one for the process or a few.
    monkeypatch.setattr(idle, "IDLE_SECONDS", mix.rng.choice([0.05, 60.0]))
    monkeypatch.setattr(idle, "IDLE_MAX", mix.rng.choice([1, 4]))
    steps = mix.rng.randint(20, 60)
    try:
        for _ in range(steps):
            mix.step()
        mix.check()
    except Exception as exc:
        raise AssertionError(
            f"seed {seed} failed after operations {mix.ops}: {exc!r}\n"
            f"replay: pytest tests/test_duckdb_guard.py -m 'stress or not stress' -k 'seed_{seed}]'"
        ) from exc
    finally:
        gc.enable()


@pytest.mark.parametrize("seed", range(SEQUENCES), ids=lambda s: f"seed_{s}")
def test_random_mixes_of_both_engines_lose_nothing(tmp_path, seed, monkeypatch):
    run_mix(seed, str(tmp_path), monkeypatch)


@pytest.mark.stress
@pytest.mark.parametrize("seed", range(1000, 1400), ids=lambda s: f"seed_{s}")
def test_many_more_random_mixes(tmp_path, seed, monkeypatch):
    run_mix(seed, str(tmp_path), monkeypatch)
