"""Both engines on one file: tracker.conn, the DuckDB scanner from the pip wheel, the DuckDB CLI."""

import os
import sqlite3
import subprocess
import sys

import duckdb
import pytest

from xetrack import Reader, Tracker
from xetrack.store.duckdb.engine import _bundled_extension, load_sqlite_scanner


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "exp.db")
    Tracker(path, params={"model": "resnet18"}).log_batch(
        [{"accuracy": 0.9, "epoch": 1}, {"accuracy": 0.95, "epoch": 2}]
    )
    return path


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_conn_answers_select_from_db_default(db, engine):
    tracker = Tracker(db, engine=engine)
    tracker.log({"accuracy": 0.99, "epoch": 3})
    rows = tracker.conn.execute('SELECT epoch, accuracy FROM db."default" ORDER BY epoch').fetchall()
    assert rows == [(1, 0.9), (2, 0.95), (3, 0.99)]


def test_duckdb_conn_result_is_fully_fetched(db):
    tracker = Tracker(db, engine="duckdb")
    relation = tracker.conn.execute('SELECT * FROM db."default" WHERE accuracy > 0.92')
    tracker.log({"accuracy": 0.5})  # a write between the query and the fetch
    assert len(relation.fetchall()) == 1
    frame = tracker.conn.sql('SELECT count(*) AS n FROM db."default"').df()
    assert frame["n"].tolist() == [3]
    tracker.conn.execute("CREATE TABLE scratch AS SELECT 42 AS x")  # DuckDB's own catalog
    assert tracker.conn.execute("SELECT x FROM scratch").fetchall() == [(42,)]


def test_duckdb_writes_through_conn_are_seen_by_sqlite(db):
    tracker = Tracker(db, engine="duckdb")
    tracker.conn.execute('UPDATE db."default" SET accuracy = 0.0 WHERE epoch = 1')
    assert Reader(db).to_df()["accuracy"].tolist() == [0.0, 0.95]


def test_scanner_is_loaded_from_the_wheel_without_network(tmp_path, monkeypatch):
    path = _bundled_extension()
    assert path is not None and path.endswith("sqlite_scanner.duckdb_extension")
    assert f"v{duckdb.__version__}" in path
    # An empty extension directory: nothing installed there, and INSTALL would need the network.
    conn = duckdb.connect(config={"extension_directory": str(tmp_path / "ext"), "autoinstall_known_extensions": False})
    load_sqlite_scanner(conn)
    loaded = conn.execute("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'sqlite_scanner'").fetchone()
    assert loaded == (True,)


def test_duckdb_tracker_and_reader(db):
    tracker = Tracker(db, engine="duckdb", params={"model": "vit"})
    tracker.log({"accuracy": 0.7, "new_key": "x"})
    frame = Reader(db, engine="duckdb").to_df()
    assert frame["new_key"].tolist()[-1] == "x" and frame["model"].tolist()[-1] == "vit"
    assert tracker.to_df()["accuracy"].tolist() == [0.7]
    assert len(tracker) == 1


def test_sqlite_file_opens_with_duckdb_attach(db):
    con = duckdb.connect()
    load_sqlite_scanner(con)
    con.execute(f"ATTACH '{db}' AS db (TYPE sqlite)")
    assert con.execute('SELECT count(*) FROM db."default"').fetchone() == (2,)


def test_duckdb_cli_reads_the_file(db):
    """The DuckDB CLI (dev dependency duckdb-cli) attaches the file as it is."""
    cli = os.path.join(os.path.dirname(sys.executable), "duckdb")
    assert os.path.exists(cli), "duckdb-cli is a dev dependency: pip install -e '.[dev]'"
    script = (
        f"LOAD '{_bundled_extension()}'; ATTACH '{db}' AS db (TYPE sqlite); "
        'SELECT model, count(*) AS n FROM db."default" GROUP BY model;'
    )
    out = subprocess.run([cli, "-csv", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["model,n", "resnet18,2"]


def test_closed_duckdb_tracker_reopens_on_use(db):
    tracker = Tracker(db, engine="duckdb")
    tracker.close()
    tracker.log({"accuracy": 0.5})
    assert tracker.to_df()["accuracy"].tolist() == [0.5]
    assert tracker.conn.execute('SELECT count(*) FROM db."default"').fetchall() == [(3,)]


def test_connections_get_the_settings_of_PRAGMAS(tmp_path):
    from xetrack.store.sqlite.engine import PRAGMAS

    tracker = Tracker(str(tmp_path / "exp.db"))
    tracker.log({"x": 1})
    conn = sqlite3.connect(tmp_path / "exp.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # stored in the file
    assert PRAGMAS == {"synchronous": "NORMAL", "journal_size_limit": 64 * 2**20}
    for name, value in PRAGMAS.items():  # the engine's own connection
        got = tracker._engine._live().execute(f"PRAGMA {name}").fetchone()[0]
        assert got == {"NORMAL": 1}.get(value, value), name


def test_a_file_locked_by_another_writer_is_a_busy_error_naming_it(tmp_path):
    """Past its timeout, every kind of write says which file stayed busy, is still a
    sqlite3.OperationalError (as 0.7.0 raised), writes nothing and works once freed."""
    from xetrack import DatabaseBusyError
    from xetrack.store.base import AssetWrites
    from xetrack.store.sqlite.engine import SQLiteEngine

    path = str(tmp_path / "exp.db")
    engine = SQLiteEngine(path, timeout=0.3)
    engine.ensure_table("t")
    engine.insert("t", {"timestamp": "a", "track_id": "r", "x": 1})
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write lock, held
    writes = {
        "known keys": lambda: engine.insert("t", {"timestamp": "b", "track_id": "r", "x": 2}),
        "a new column": lambda: engine.insert("t", {"timestamp": "c", "track_id": "r", "y": 3}),
        "a batch": lambda: engine.insert_many("t", ("timestamp", "x"), [("d", 4)], lambda i: 4, AssetWrites()),
        "an update": lambda: engine.update("t", {"x": 9}, None),
        "a side table": lambda: engine.write(lambda conn: conn.execute("CREATE TABLE side (a)")),
    }
    for what, write in writes.items():
        with pytest.raises(DatabaseBusyError) as caught:
            write()
        error = caught.value
        assert isinstance(error, sqlite3.OperationalError) and isinstance(error, TimeoutError), what
        assert error.path == path and error.waited == 0.3, what
        assert repr(path) in str(error) and "Nothing of this call was written" in str(error), what
    other.execute("ROLLBACK")
    assert engine.read("t")["x"].tolist() == [1]
    writes["known keys"]()
    assert engine.read("t")["x"].tolist() == [1, 2]
