"""Code written against xetrack 0.7.0 runs unchanged: the calls its README shows, driven
through the public API and the `xt` command line the way a 0.7.0 user writes them."""

import inspect
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time

import cloudpickle
import pandas as pd
import pytest

import xetrack
from xetrack import Reader, Tracker
from xetrack.assets import COMPRESSED_HEADER
from xetrack.store.sqlite import idle

XT = os.path.join(os.path.dirname(sys.executable), "xt")

# Tracker's arguments in xetrack 0.7.0, in order.
ARGS_070 = [
    "db", "params", "reset", "log_system_params", "log_network_params", "raise_on_error",
    "measurement_interval", "track_id", "logs_path", "logs_file_format", "logs_stdout", "jsonl",
    "cache", "compress", "warnings", "git_root", "engine", "table",
]  # fmt: skip


def xt(*args, input=None):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    env.pop("XT_TRACEBACK", None)
    return subprocess.run([XT, *map(str, args)], capture_output=True, text=True, env=env, timeout=120, input=input)


# -- Tracker's constructor --------------------------------------------------------------
def test_tracker_takes_070s_arguments_in_070s_order():
    parameters = inspect.signature(Tracker).parameters
    positional = [name for name, p in parameters.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == ARGS_070
    defaults = {name: p.default for name, p in parameters.items()}
    assert defaults["reset"] is False and defaults["compress"] is False
    assert defaults["logs_file_format"] is None and defaults["table"] == "default"
    assert defaults["engine"] == "sqlite" and defaults["raise_on_error"] is True


def test_reset_is_the_third_positional_argument(db):
    first = Tracker(db, {"model": "a"})
    first.log({"x": 1})
    first.close()
    again = Tracker(db, {"model": "b"}, True)  # 0.7.0: reset=True
    assert again.table_name == "default"
    assert len(Reader(db)) == 0
    again.log({"x": 2})
    assert Reader(db).to_df()["model"].tolist() == ["b"]
    kept = Tracker(db, {"model": "c"}, False, False, False, True, 1.0, "run-c")  # ...track_id
    kept.log({"x": 3})
    assert Reader(db).to_df()["track_id"].tolist() == [again.track_id, "run-c"]


def test_every_070_argument_by_keyword(tmp_path):
    db = str(tmp_path / "all.db")
    tracker = Tracker(
        db=db, params={"p": 1}, reset=True, log_system_params=False, log_network_params=False,
        raise_on_error=False, measurement_interval=0.5, track_id="run-1", logs_path=str(tmp_path / "logs"),
        logs_file_format="{time:YYYY-MM-DD}_run.log", logs_stdout=False, jsonl=str(tmp_path / "data.jsonl"),
        cache=str(tmp_path / "cache"), compress=True, warnings=False, git_root=None, engine="sqlite",
        table="model_experiments",
    )  # fmt: skip
    assert tracker.track(lambda: 1 / 0) is None  # raise_on_error=False
    assert tracker.latest["track_id"] == "run-1" and tracker.latest["p"] == 1
    assert tracker.compress is True and tracker.table_name == "model_experiments"


# -- logs_file_format --------------------------------------------------------------------
def test_logs_file_format_names_the_log_file(tmp_path, monkeypatch):
    """0.7.0: a loguru file-name pattern inside logs_path; the lines are xetrack's own."""
    monkeypatch.chdir(tmp_path)
    t = Tracker('exp.db', logs_path='logs', logs_file_format='{time:YYYY}_exp.log')  # fmt: skip
    t.log({'b': 2})  # fmt: skip
    year = time.localtime().tm_year
    assert os.listdir("logs") == [f"{year}_exp.log"] or os.listdir("logs") == [f"{year - 1}_exp.log"]
    with open(os.path.join("logs", os.listdir("logs")[0]), encoding="utf-8") as file:
        (line,) = file.read().splitlines()
    assert " | TRACKING | " in line and line.endswith(f'!📁!{{"b": 2, "timestamp": "{t.latest["timestamp"]}", '
                                                     f'"track_id": "{t.track_id}"}}')  # fmt: skip
    df = Reader.read_logs(path='logs')  # fmt: skip
    assert df[df["b"] == 2]["track_id"].tolist() == [t.track_id]


def test_the_default_file_name_is_the_date_and_the_line_xetracks_own(tmp_path, capsys):
    before = time.strftime("%Y-%m-%d")
    tracker = Tracker(Tracker.IN_MEMORY, logs_path=str(tmp_path / "logs"), logs_stdout=True)
    tracker.log({"accuracy": 0.9})
    tracker.logger.info("hello {name}")
    (name,) = os.listdir(tmp_path / "logs")
    assert name in {f"{before}.log", time.strftime("%Y-%m-%d") + ".log"}
    lines = (tmp_path / "logs" / name).read_text().splitlines()
    assert " | TRACKING | " in lines[0] and " | INFO     | " in lines[1] and lines[1].endswith(" - hello {name}")
    assert capsys.readouterr().out.splitlines() == lines  # stdout: the same lines
    assert Reader.read_logs(str(tmp_path / "logs"))["accuracy"].tolist() == [0.9]


@pytest.mark.parametrize(
    "bad, why",
    [
        ("{level} {message}", r"names \{level\}"),  # a line format is not a file name
        ("{time}-{nope}.log", r"names \{nope\}"),
        ("{}.log", r"names \{\}"),
        ("{time", "is not a format string"),
        ("log}", "is not a format string"),
        ("", "empty file name"),
        ("sub/{time}.log", "path separator"),
        ("{time:YYYY/MM}.log", "path separator"),
        ("..", "'..'"),
        ("../{time}.log", "path separator|'..'"),
        (".{time}.log", "hidden name"),
        ("{time!r}.log", "converts"),
        ("{time:SSSSSSSSS}.log", "time format loguru refuses"),
    ],
)
def test_a_bad_logs_file_format_fails_at_construction(tmp_path, bad, why):
    db = tmp_path / "never.db"
    with pytest.raises(ValueError, match=f"logs_file_format .*({why})"):
        Tracker(str(db), logs_path=str(tmp_path / "logs"), logs_file_format=bad)
    with pytest.raises(TypeError, match="logs_file_format must be a str"):
        Tracker(str(db), logs_path=str(tmp_path / "logs"), logs_file_format=b"{time}.log")
    assert os.listdir(tmp_path) == []  # nothing created: no database, no folder, no file


# -- compress ----------------------------------------------------------------------------
class Model:
    def __init__(self, weights):
        self.weights = weights

    def __eq__(self, other):
        return isinstance(other, Model) and self.weights == other.weights


def stored_value(db, key):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT value FROM assets WHERE key = ?", (key,)).fetchone()[0]


def test_compress_round_trip(db, tmp_path):
    model = Model([0.5] * 5000)
    tracker = Tracker(db, compress=True)
    key = tracker.log({"model": model})["model"]
    raw = stored_value(db, key)
    pickled = cloudpickle.dumps(model)
    assert raw.startswith(COMPRESSED_HEADER) and len(raw) < len(pickled) / 10
    assert tracker.get(key) == model
    assert Reader(db).assets[key] == model
    assert Reader(db, engine="duckdb").assets[key] == model
    assert Tracker(db).get(key) == model  # a Tracker without compress reads it too
    assert Reader(db).assets.bytes(key) == pickled  # the pickle, decompressed and verified
    out = tmp_path / "model.cloudpickle"
    result = xt("assets", "export", db, key, out)
    assert result.returncode == 0, result.stderr
    assert cloudpickle.loads(out.read_bytes()) == model


def test_a_model_registered_with_compress_loads_anywhere(db, tmp_path):
    model = Model([0.25] * 2000)
    Tracker(db, compress=True).register_model("m", model, alias="production")
    (key,) = Reader(db).models()["hash"].tolist()
    assert stored_value(db, key).startswith(COMPRESSED_HEADER)
    assert Reader(db).load_model("m@production") == model
    out = xt("models", "export", db, "m", tmp_path / "m.cloudpickle")
    assert out.returncode == 0, out.stderr
    assert cloudpickle.loads((tmp_path / "m.cloudpickle").read_bytes()) == model


def test_compressed_and_plain_assets_share_one_copy(db):
    model = Model([1.0, 2.0, 3.0])
    plain = Tracker(db).log({"m": model})["m"]
    compressed = Tracker(db, compress=True).log({"m": model})["m"]
    assert plain == compressed  # the hash is the pickle's, whatever the setting
    assert len(Reader(db).assets) == 1 and Reader(db).assets.references(plain) == 2
    assert not stored_value(db, plain).startswith(COMPRESSED_HEADER)  # stored once, as first written

    other = Model([4.0])
    key = Tracker(db, compress=True).log({"m": other})["m"]
    assert Tracker(db).log({"m": other})["m"] == key
    assert len(Reader(db).assets) == 2 and stored_value(db, key).startswith(COMPRESSED_HEADER)
    assert Reader(db).assets[key] == other and Reader(db).assets[plain] == model


def test_a_damaged_compressed_asset_is_an_integrity_error(db):
    key = Tracker(db, compress=True).log({"m": Model([1.0] * 100)})["m"]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE assets SET value = ? WHERE key = ?", (COMPRESSED_HEADER + b"junk", key))
    with pytest.raises(xetrack.IntegrityError, match=key):
        Reader(db).assets[key]


# -- keys ----------------------------------------------------------------------------------
def test_a_key_of_symbols_only_maps_like_any_other(db):
    tracker = Tracker(db)
    row = tracker.log({"@@": 1, "a b": 2})
    assert row["__"] == 1 and row["a_b"] == 2
    assert Reader(db).to_df()["__"].tolist() == [1]
    with pytest.raises(ValueError, match="Empty key"):
        tracker.log({"": 1})
    with pytest.raises(TypeError, match="str or int"):
        tracker.log({1.5: 1})


# -- Reader.latest -------------------------------------------------------------------------
def test_reader_latest_is_the_frame_of_the_run_that_logged_last(db):
    last = Tracker(db, track_id="aaa-first-by-name")
    later = Tracker(db, track_id="zzz-last-by-name")
    later.log({"epoch": 1, "acc": 0.5})
    last.log({"epoch": 1, "acc": 0.7})
    later.log({"epoch": 2, "acc": 0.6})
    last.log({"epoch": 2, "acc": 0.8})  # the last row: "aaa..." is the most recent run
    frame = Reader(db).latest()
    assert isinstance(frame, pd.DataFrame)
    assert frame["track_id"].tolist() == ["aaa-first-by-name"] * 2
    assert frame["acc"].tolist() == [0.7, 0.8]
    record = Reader(db).latest().to_dict("records")[0]  # 0.7.0's idiom
    assert record["epoch"] == 1 and record["track_id"] == "aaa-first-by-name"
    assert Reader(db, engine="duckdb").latest()["acc"].tolist() == [0.7, 0.8]
    assert last.latest["acc"] == 0.8 and isinstance(last.latest, dict)  # Tracker.latest: a dict


def test_reader_latest_of_an_empty_table_is_an_empty_frame(db):
    Tracker(db)
    assert Reader(db).latest().empty


def test_reader_latest_follows_the_backend(db):
    polars = pytest.importorskip("polars")
    Tracker(db).log({"x": 1})
    try:
        xetrack.set_backend("polars")
        frame = Reader(db).latest()
        assert isinstance(frame, polars.DataFrame) and frame["x"].to_list() == [1]
    finally:
        xetrack.set_backend("pandas")


def test_set_backend_auto_prefers_pandas(db, monkeypatch):
    Tracker(db).log({"x": 1})
    try:
        xetrack.set_backend("auto")
        assert xetrack.get_backend() == "pandas"
        assert isinstance(Reader(db).to_df(), pd.DataFrame)
        import importlib.util

        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pandas" else real(name, *a))
        assert xetrack.get_backend() == "polars"  # polars only when pandas is absent
    finally:
        xetrack.set_backend("pandas")


# -- backup --------------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import sys
    from xetrack import Tracker

    tracker = Tracker(sys.argv[1], params={"writer": "background"})
    i = 0
    while True:
        row = {"i": i, "text": "x" * 100}
        if i % 100 == 0:
            row["obj"] = {"set", i}  # an asset now and then: side tables move too
        tracker.log(row)
        i += 1
    """
)


def committed_max(db):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute('SELECT max(i) FROM "default"').fetchone()[0]


def check_standalone(path):
    assert not os.path.exists(str(path) + "-wal")
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        conn.close()


def test_backup_while_another_process_logs_holds_every_earlier_row(tmp_path):
    db = str(tmp_path / "live.db")
    Tracker(db).log({"i": -1, "text": "", "obj": {"first"}})
    writer = subprocess.Popen([sys.executable, "-c", WRITER, db])
    try:
        deadline = time.time() + 60
        while (committed_max(db) or 0) < 300:
            assert time.time() < deadline and writer.poll() is None, "the writer did not start"
            time.sleep(0.05)
        for n in range(3):
            before = committed_max(db)  # committed before the call
            dest = tmp_path / f"backup{n}.db"
            assert Reader(db).backup(str(dest)) == str(dest)
            check_standalone(dest)
            with sqlite3.connect(dest) as conn:
                ids = [i for (i,) in conn.execute('SELECT i FROM "default" WHERE i <= ? ORDER BY i', (before,))]
                assert ids == list(range(-1, before + 1))
                assets = conn.execute("SELECT count(*) FROM assets").fetchone()[0]
            assert assets >= 1 + before // 100 + 1  # and the ones logged since
            copy = Reader(str(dest))
            assert len(copy.assets) == assets and copy.to_df()["writer"].iloc[-1] == "background"
        assert writer.poll() is None  # still logging: the backups never stopped it
    finally:
        writer.terminate()
        writer.wait(timeout=30)


def test_cp_of_an_open_database_misses_the_wal_and_backup_does_not(tmp_path):
    db = str(tmp_path / "open.db")
    tracker = Tracker(db)
    tracker.log_batch([{"i": i} for i in range(50)])  # small: still in open.db-wal
    assert os.path.getsize(db + "-wal") > 0
    shutil.copyfile(db, tmp_path / "cp.db")
    with sqlite3.connect(tmp_path / "cp.db") as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master")]
    assert "default" not in tables  # the trap: the rows (and even the table) were in the WAL
    Reader(db).backup(str(tmp_path / "backup.db"))
    assert len(Reader(str(tmp_path / "backup.db"))) == 50
    check_standalone(tmp_path / "backup.db")
    tracker.log({"i": 50})  # the source is untouched and still in use


def test_backup_refuses_to_overwrite_and_leaves_no_partial_file(tmp_path):
    db = str(tmp_path / "src.db")
    Tracker(db).log({"x": 1})
    dest = tmp_path / "dest.db"
    dest.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        Reader(db).backup(str(dest))
    assert dest.read_bytes() == b"precious"
    with pytest.raises(ValueError, match="the database itself"):
        Reader(db).backup(db, overwrite=True)
    Reader(db).backup(str(dest), overwrite=True)
    assert Reader(str(dest)).to_df()["x"].tolist() == [1]
    assert {name for name in os.listdir(tmp_path) if not name.startswith("src.db")} == {"dest.db"}


def test_xt_backup(tmp_path):
    db = str(tmp_path / "src.db")
    tracker = Tracker(db)
    tracker.log({"accuracy": 0.93, "model": Model([1.0])})
    tracker.log_artifact(b"bytes", name="notes.txt")
    dest = tmp_path / "copy.db"
    out = xt("backup", db, dest)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"Backed up {db} to {dest} (")
    check_standalone(dest)
    copy = Reader(str(dest))
    assert copy.to_df()["accuracy"].tolist() == [0.93] and copy.artifact("notes.txt") == b"bytes"
    again = xt("backup", db, dest)
    assert again.returncode == 1 and "exists" in again.stderr and "--force" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert xt("backup", db, dest, "--force").returncode == 0
    missing = xt("backup", tmp_path / "missing.db", tmp_path / "x.db")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert not (tmp_path / "x.db").exists()


# -- xt sql: a keyword as a table name --------------------------------------------------
def test_xt_sql_says_to_quote_a_keyword_table(db):
    Tracker(db).log({"accuracy": 0.9})
    Tracker(db, table="order").log({"accuracy": 0.8})
    out = xt("sql", db, "SELECT * FROM db.default")
    assert out.returncode == 1
    assert 'write the table as db."default"' in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = xt("sql", db, "SELECT * FROM db.order")
    assert 'db."order"' in out.stderr
    quoted = xt("sql", db, 'SELECT accuracy FROM db."default"')
    assert quoted.returncode == 0 and "0.9" in quoted.stdout
    other = xt("sql", db, "SELEC 1")  # other errors are as they were
    assert other.returncode == 1 and "keyword" not in other.stderr and "syntax error" in other.stderr
    missing = xt("sql", db, "SELECT * FROM db.nope")
    assert "no such table" in missing.stderr and "keyword" not in missing.stderr


# -- DuckDB, offline -------------------------------------------------------------------------
def test_duckdb_extension_path_is_public():
    path = xetrack.duckdb_extension_path()
    assert "duckdb_extension_path" in xetrack.__all__
    assert os.path.isfile(path) and path.endswith("sqlite_scanner.duckdb_extension")
    import duckdb

    conn = duckdb.connect()
    conn.load_extension(path)
    conn.close()


def test_duckdb_extension_path_says_what_to_install(monkeypatch):
    from xetrack.store.duckdb import extension

    monkeypatch.setattr(extension, "bundled_extension", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install duckdb-extension-sqlite-scanner"):
        extension.duckdb_extension_path()


def test_xt_duckdb_runs_the_shell_on_the_file(db):
    Tracker(db, params={"model": "resnet18"}).log({"accuracy": 0.9125})
    out = xt("duckdb", db, "--", "-c", 'SELECT model, accuracy FROM db."default"')
    assert out.returncode == 0, out.stderr
    assert "resnet18" in out.stdout and "0.9125" in out.stdout
    piped = xt("duckdb", db, input='SELECT count(*) AS n, max(accuracy) FROM "default";\n')
    assert piped.returncode == 0, piped.stderr
    assert "0.9125" in piped.stdout


def test_xt_duckdb_is_read_only_unless_write(db):
    Tracker(db).log({"accuracy": 0.5})
    insert = 'INSERT INTO db."default" (accuracy) VALUES (0.75)'
    refused = xt("duckdb", db, "--", "-c", insert)
    assert refused.returncode != 0 and "read-only" in (refused.stdout + refused.stderr)
    assert len(Reader(db)) == 1
    written = xt("duckdb", db, "--write", "--", "-c", insert)
    assert written.returncode == 0, written.stderr
    assert sorted(Reader(db).to_df()["accuracy"].tolist()) == [0.5, 0.75]


def test_xt_duckdb_on_a_missing_file_is_one_line(tmp_path):
    out = xt("duckdb", tmp_path / "missing.db")
    assert out.returncode == 1 and "does not exist" in out.stderr
    assert not (tmp_path / "missing.db").exists()


def test_a_failed_backup_leaves_nothing_under_dest(tmp_path, monkeypatch):
    from xetrack.store.sqlite import backup as backup_module

    db = str(tmp_path / "src.db")
    Tracker(db).log({"x": 1})

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backup_module, "_publish", fail)
    with pytest.raises(OSError, match="No space"):
        Reader(db).backup(str(tmp_path / "dest.db"))
    assert {name for name in os.listdir(tmp_path) if not name.startswith("src.db")} == set()


def test_backup_and_a_read_only_duckdb_shell_leave_the_source_alone(tmp_path):
    import hashlib

    db = str(tmp_path / "src.db")
    with Tracker(db) as tracker:
        tracker.log_batch([{"i": i} for i in range(20)])

    def fingerprint():
        return hashlib.sha256(open(db, "rb").read()).hexdigest(), os.stat(db).st_mtime_ns

    idle.close_all()  # the connection kept for a next Tracker, closed as at exit
    before = fingerprint()
    assert xt("backup", db, tmp_path / "copy.db").returncode == 0
    assert xt("duckdb", db, "--", "-c", 'SELECT count(*) FROM "default"').returncode == 0
    assert fingerprint() == before
    assert sorted(os.listdir(tmp_path)) == ["copy.db", "src.db"]


# -- folders, version, the README's names -------------------------------------------------
def test_a_tracker_creates_the_missing_folders_of_its_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Tracker("results/2026/exp.db", params={"model": "rf"}).log({"acc": 0.9})
    assert Reader("results/2026/exp.db").to_df()["acc"].tolist() == [0.9]
    Tracker(tmp_path / "as_path" / "exp.db").log({"acc": 1})  # a pathlib.Path too
    assert len(Reader(str(tmp_path / "as_path" / "exp.db"))) == 1


def test_a_reader_of_a_missing_file_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Reader(str(tmp_path / "results" / "exp.db"))
    assert os.listdir(tmp_path) == []


def test_a_folder_that_cannot_be_made_is_one_clear_error(tmp_path):
    (tmp_path / "results").write_text("a file, not a folder")
    with pytest.raises(NotADirectoryError, match=r"Cannot create the database's folder .*results.*a file stands"):
        Tracker(str(tmp_path / "results" / "exp.db"))
    locked = tmp_path / "locked"
    locked.mkdir()
    script = f"from xetrack import Tracker; Tracker({str(locked / 'sub' / 'exp.db')!r})"
    os.chmod(locked, 0o555)
    try:
        from as_user import as_a_user

        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, **as_a_user())
    finally:
        os.chmod(locked, 0o755)
    assert out.returncode == 1
    assert "PermissionError" in out.stderr and "Cannot create the database's folder" in out.stderr
    assert os.listdir(locked) == []


def test_the_version_comes_from_pyproject():
    import tomllib

    with open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml"), "rb") as fh:
        declared = tomllib.load(fh)["project"]["version"]
    assert declared == "0.8.0"
    assert xetrack.__version__ == declared
    assert xt("version").stdout.strip() == declared


def test_the_readme_events_table_is_the_default_table(db):
    tracker = Tracker(db, params={"model": "resnet18"}, engine="duckdb")
    tracker.log({"accuracy": 0.9})
    tracker.log({"accuracy": 0.7, "loss": 0.3})  # a column added later shows too
    assert len(tracker.conn.execute("SELECT * FROM db.events WHERE accuracy > 0.8").fetchall()) == 1
    out = xt("sql", db, "SELECT loss FROM db.events WHERE loss IS NOT NULL")
    assert out.returncode == 0 and "0.3" in out.stdout
    assert Reader(db).tables()["table"].tolist() == ["default"]  # a view, not a table


def test_a_table_named_events_takes_the_name_from_the_view(db):
    Tracker(db).log({"x": 1})
    Tracker(db, table="events").log({"y": 2})
    assert Reader(db, table="events").to_df()["y"].tolist() == [2]
    assert sorted(Reader(db).tables()["table"]) == ["default", "events"]
    Tracker(db, reset=True).log({"x": 3})  # the default table again: the name stays the user's
    assert Reader(db, table="events").to_df()["y"].tolist() == [2]


def test_xt_describe_as_070_calls_it(db):
    Tracker(db).log_batch([{"x": i, "y": 2 * i} for i in range(10)])
    out = xt("describe", db, "--columns=x,y")
    assert out.returncode == 0, out.stderr
    assert "mean" in out.stdout and "4.5" in out.stdout and "9" in out.stdout
