"""Faults a tracker must survive: a full disk, a read-only file or folder, a file that is
no database, and a process killed in the middle of a write.

In each case the user gets one clear error that names the file, nothing already written
is lost, and the file passes ``PRAGMA integrity_check`` afterwards. Faults that would
disturb the test process (a file size limit, dropped privileges, SIGKILL) happen in a
child process.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import xetrack
from as_user import as_a_user
from filecheck import integrity
from xetrack import DatabaseError, DiskFullError, Reader, Tracker
from xetrack.store.sqlite import idle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSIX = os.name == "posix"


def child(script, *args, timeout=60, **kwargs):
    """Run ``script`` in a fresh interpreter; its last stdout line is JSON."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        **kwargs,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- a full disk ------------------------------------------------------------------------
DISK_FULL = r"""
import json, os, resource, signal, sqlite3, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), no kill
from xetrack import DiskFullError, Reader, Tracker

db = sys.argv[1]
tracker = Tracker(db, track_id="run")
tracker.log_batch([{"i": i, "pad": "before"} for i in range(300)])
with sqlite3.connect(db) as conn:  # everything in the main file, the WAL empty
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
errors, logged = {}, 0

def squeezed(name, call):
    resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, hard))  # a few pages of WAL
    try:
        call()
        errors[name] = None
    except Exception as exc:
        errors[name] = [type(exc).__name__, isinstance(exc, DiskFullError), isinstance(exc, OSError),
                        getattr(exc, "errno", None), str(exc)]
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))

def log_until_full():
    global logged
    for i in range(10_000):
        tracker.log({"i": 1000 + i, "pad": "x" * 1000})
        logged += 1

squeezed("log", log_until_full)
squeezed("log_batch", lambda: tracker.log_batch([{"i": -1, "pad": "y" * 100} for _ in range(3000)]))
squeezed("log_artifact", lambda: tracker.log_artifact(os.urandom(300_000), name="big.bin"))
squeezed("set_value", lambda: tracker.set_value("pad", "z" * 600))
squeezed("reader_set_value", lambda: Reader(db).set_value("pad", "z" * 600))
# Room again: the same tracker goes on.
tracker.log({"i": 99_999, "pad": "after"})
tracker.log_artifact(b"small", name="small.bin")
tracker.close()
print(json.dumps({"errors": errors, "logged": logged}))
"""


@pytest.mark.skipif(not POSIX, reason="RLIMIT_FSIZE is POSIX")
def test_a_full_disk_is_one_clear_error_and_the_tracker_goes_on(tmp_path):
    db = str(tmp_path / "full.db")
    out = child(DISK_FULL, db)
    for name, error in out["errors"].items():
        assert error is not None, f"{name} wrote past the file size limit"
        kind, disk_full, os_error, code, message = error
        assert (kind, disk_full, os_error, code) == ("DiskFullError", True, True, 28), (name, error)
        assert db in message and "disk is full" in message and "nothing of this call" in message, message
    assert 0 < out["logged"] < 10_000
    frame = Reader(db).to_df()
    pads = list(frame["pad"])
    # Everything before the failures is there, nothing of the failed calls, and what came after.
    assert pads == ["before"] * 300 + ["x" * 1000] * out["logged"] + ["after"]
    assert list(Reader(db).artifacts()["name"]) == ["small.bin"]
    assert integrity(db) == "ok"


def _mount_tmpfs(path, size):
    os.makedirs(path)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True)
    return done.returncode == 0


@pytest.mark.skipif(not POSIX or os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_really_full_disk_sqlite_full(tmp_path):
    """ENOSPC from a real (tiny) file system: SQLite says SQLITE_FULL."""
    disk = str(tmp_path / "disk")
    if not _mount_tmpfs(disk, "1m"):
        pytest.skip("cannot mount a tmpfs here (no CAP_SYS_ADMIN?)")
    try:
        db, filler = os.path.join(disk, "exp.db"), os.path.join(disk, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * 300_000)
        tracker = Tracker(db)
        n = 0
        with pytest.raises(DiskFullError, match="disk is full") as caught:
            for n in range(10_000):
                tracker.log({"i": n, "pad": "x" * 2000})
        assert caught.value.errno == 28 and db in str(caught.value)
        os.remove(filler)  # room again
        tracker.log({"i": -1, "pad": "after"})
        assert list(Reader(db).to_df()["i"]) == [*range(n), -1]
        tracker.close()
        assert integrity(db) == "ok"
    finally:
        subprocess.run(["umount", "-l", disk], capture_output=True)


# -- read-only files and folders --------------------------------------------------------
READ_ONLY = r"""
import json, os, sys
from xetrack import Reader, Tracker

ro_file, ro_folder_new, ro_folder_db = sys.argv[1:4]
out = {}
try:  # the check must really meet the permission bits (root would not)
    open(ro_file, "r+b").close()
    out["bits_apply"] = False
except PermissionError:
    out["bits_apply"] = True

def attempt(name, call):
    try:
        out[name] = ["ok", call()]
    except Exception as exc:
        out[name] = [type(exc).__name__, str(exc)]

attempt("tracker_ro_file", lambda: Tracker(ro_file) and None)
attempt("reader_ro_file", lambda: len(Reader(ro_file).to_df()))
attempt("reader_ro_file_set", lambda: Reader(ro_file).set_value("x", 1))
attempt("tracker_ro_folder_new", lambda: Tracker(ro_folder_new) and None)
out["created"] = os.path.exists(ro_folder_new)
attempt("tracker_ro_folder_db", lambda: Tracker(ro_folder_db) and None)
attempt("reader_ro_folder_db", lambda: len(Reader(ro_folder_db).to_df()))
attempt("reader_ro_folder_db_set", lambda: Reader(ro_folder_db).set_value("x", 1))
attempt("copy_into_ro_file", lambda: __import__("xetrack").copy(ro_folder_db, ro_file))
out["sides"] = sorted(os.listdir(os.path.dirname(ro_folder_db)))
print(json.dumps(out))
"""


@pytest.mark.skipif(not POSIX, reason="POSIX permission bits")
def test_read_only_file_or_folder(tmp_path):
    files = tmp_path / "files"
    ro, ro_folder = files / "writable", files / "read_only"
    ro.mkdir(parents=True)
    ro_folder.mkdir()
    ro_file, ro_folder_db = str(ro / "ro.db"), str(ro_folder / "exp.db")
    for path in (ro_file, ro_folder_db):
        with Tracker(path) as tracker:
            tracker.log_batch([{"x": i} for i in range(5)])
        idle.close_all()  # the connection kept for the next Tracker, closed as at exit
        assert not os.path.exists(path + "-wal")  # closed cleanly: no -wal, no -shm
    os.chmod(ro_file, 0o444)
    os.chmod(ro_folder, 0o555)
    try:
        out = child(READ_ONLY, ro_file, str(ro_folder / "new.db"), ro_folder_db, **as_a_user())
    except subprocess.SubprocessError as exc:  # preexec_fn failed: no CAP_SETPCAP, say
        pytest.skip(f"running as root and cannot drop CAP_DAC_OVERRIDE for the child ({exc})")
    finally:
        os.chmod(ro_folder, 0o755)
        os.chmod(ro_file, 0o644)
    assert out["bits_apply"], "the child could write a 0o444 file: the test would prove nothing"

    def refused(name, path):
        kind, message = out[name]
        assert kind == "PermissionError" and path in message, (name, out[name])

    refused("tracker_ro_file", ro_file)
    assert out["reader_ro_file"] == ["ok", 5]
    refused("reader_ro_file_set", ro_file)
    refused("tracker_ro_folder_new", str(ro_folder / "new.db"))
    assert out["created"] is False
    refused("tracker_ro_folder_db", ro_folder_db)
    assert out["reader_ro_folder_db"] == ["ok", 5]  # no -shm, none can be made: still reads
    refused("reader_ro_folder_db_set", ro_folder_db)
    refused("copy_into_ro_file", ro_file)
    assert out["sides"] == ["exp.db"]
    for path in (ro_file, ro_folder_db):
        assert list(Reader(path).to_df()["x"]) == list(range(5)) and integrity(path) == "ok"


# -- files that are no database ---------------------------------------------------------
@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    good = str(folder / "good.db")
    with Tracker(good, params={"model": "rf"}) as tracker:
        tracker.log_batch([{"i": i, "text": "t" * 50} for i in range(2000)])
    data = (folder / "good.db").read_bytes()
    made = {
        "text": b"epoch,loss\n1,0.5\n" * 50,
        "half": data[: len(data) // 2],
        "100_bytes": data[:100],
        "first_page": data[:4096],
    }
    paths = {}
    for name, content in made.items():
        path = folder / f"{name}.db"
        path.write_bytes(content)
        paths[name] = str(path)
    return paths


@pytest.mark.parametrize("kind", ["text", "half", "100_bytes", "first_page"])
def test_not_a_database_or_truncated(bad_files, kind, tmp_path):
    path = bad_files[kind]
    with open(path, "rb") as file:
        before = file.read()
    good = str(tmp_path / "good.db")
    with Tracker(good) as tracker:
        tracker.log({"a": 1})
    for make in (
        Tracker,
        Reader,
        lambda p: xetrack.copy(p, str(tmp_path / "target.db")),  # as SOURCE
        lambda p: xetrack.copy(good, p),  # as TARGET
    ):
        with pytest.raises(DatabaseError, match="is not a SQLite database or is damaged") as caught:
            make(path)
        assert repr(path) in str(caught.value)
    with open(path, "rb") as file:
        assert file.read() == before  # nothing was written into it


def test_a_zero_length_file_is_an_empty_database(tmp_path):
    """SQLite's own view (``touch exp.db``): a Reader finds no tables, a Tracker writes."""
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(xetrack.TableNotFoundError, match="Tables: none"):
        Reader(str(path))["x"]
    with Tracker(str(path)) as tracker:
        tracker.log({"x": 1})
    assert integrity(str(path)) == "ok"


CLI_ON_BAD_FILES = r"""
import contextlib, io, json, sys
import typer
from xetrack.cli import app, main

bad, good, scratch = sys.argv[1:4]
PLACEHOLDER = {"value": "1", "version": "1", "query": "SELECT 1", "hash": "0123456789abcdef"}
DB_ARGS, OUT_ARGS = {"db", "source", "target"}, {"output", "dest"}

def commands(cmd, path):
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from commands(sub, path + [name])
    else:
        yield path, cmd

results = []
for path, cmd in commands(typer.main.get_command(app), []):
    args = [p for p in cmd.params if p.param_type_name == "argument"]
    dbs = [p.name for p in args if p.name in DB_ARGS]
    if not dbs:
        continue
    for which in dbs:  # the bad file in each database position (copy: SOURCE, then TARGET)
        argv = list(path)
        for p in args:
            if p.name in DB_ARGS:
                argv.append(bad if p.name == which else (good if p.name == "source" else scratch))
            elif p.name in OUT_ARGS:
                argv.append(scratch + ".out")
            elif p.required:
                argv.append(PLACEHOLDER.get(p.name, "x"))
        for p in cmd.params:  # required options (xt import csv --run-column)
            if p.param_type_name == "option" and p.required:
                argv += [p.opts[0], PLACEHOLDER.get(p.name, "x")]
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code
        results.append([argv, code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


@pytest.mark.parametrize("kind", ["text", "half"])
def test_every_xt_command_names_a_bad_file_in_one_line(bad_files, tmp_path, kind):
    bad = bad_files[kind]
    good = str(tmp_path / "good.db")
    with Tracker(good) as tracker:
        tracker.log({"a": 1})
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    env.pop("XT_TRACEBACK", None)
    results = child(CLI_ON_BAD_FILES, bad, good, str(tmp_path / "scratch.db"), env=env, stdin=subprocess.DEVNULL)
    tried = {" ".join(argv[: argv.index(bad)]) for argv, *_ in results}
    assert {
        "head",
        "tables",
        "set",
        "copy",
        "assets ls",
        "models ls",
        "artifacts get",
        "stats describe",
        "import tensorboard x",
        "import csv x",
    } <= tried
    for argv, code, out, err in results:
        lines = err.strip().splitlines()
        assert code not in (0, None) and out == "", (argv, code, out, err)
        assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in err, (argv, err)
        assert bad in lines[0] and "not a SQLite database or is damaged" in lines[0], (argv, err)


# -- a process killed in the middle of a write ------------------------------------------
KILLED = r"""
import sys
op, db, other = sys.argv[1:4]
import xetrack
from xetrack import Reader, Tracker
if op == "log_batch":
    rows = [{"i": i, "v": 1, "new_key": "n"} for i in range(200_000)]
    tracker = Tracker(db, track_id="killed")
    print("go", flush=True)
    tracker.log_batch(rows)
elif op == "set_value":
    reader = Reader(db)
    print("go", flush=True)
    reader.set_value("v", "changed" * 20)
else:
    print("go", flush=True)
    xetrack.copy(other, db)
print("done", flush=True)
"""

TRIALS = 3


def _kill_at_random(op, dbs, other, seed, longest):
    """Start one child per db, each killed ``uniform(0, longest)`` s after it began."""
    rng = random.Random(seed)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", KILLED, op, db, other],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for db in dbs
    ]
    delays = [rng.uniform(0, longest) for _ in dbs]
    finished = []
    for proc in children:
        assert proc.stdout.readline().strip() == "go", proc.stderr.read()
    start = time.monotonic()
    for proc, delay in sorted(zip(children, delays), key=lambda pair: pair[1]):
        time.sleep(max(0.0, start + delay - time.monotonic()))
        proc.send_signal(signal.SIGKILL)
    for proc in children:
        out, _ = proc.communicate(timeout=60)
        finished.append("done" in out)
    return delays, finished


def _base(tmp_path, name, rows):
    db = str(tmp_path / f"{name}.db")
    with Tracker(db, track_id="before") as tracker:
        tracker.log_batch([{"i": i, "v": 0} for i in range(rows)])
    return db


def _trials(tmp_path, base):
    dbs = []
    for n in range(TRIALS):
        db = str(tmp_path / f"trial{n}.db")
        shutil.copy(base, db)
        dbs.append(db)
    return dbs


def _seed():
    return int(os.environ.get("XETRACK_FAULT_SEED", random.randrange(2**32)))


@pytest.mark.skipif(not POSIX, reason="SIGKILL")
@pytest.mark.parametrize("op", ["log_batch", "set_value", "copy"])
def test_killed_in_the_middle_is_all_or_nothing(tmp_path, op):
    seed = _seed()
    before_rows = 100_000 if op == "set_value" else 100
    base = _base(tmp_path, "base", before_rows)
    other = str(tmp_path / "source.db")
    if op == "copy":
        with Tracker(other, track_id="copied") as tracker:
            tracker.log_batch([{"i": i, "w": float(i), "s": "s" * 20} for i in range(100_000)])
    dbs = _trials(tmp_path, base)
    delays, finished = _kill_at_random(op, dbs, other, seed, longest=1.0)
    for db, delay, done in zip(dbs, delays, finished):
        note = f"seed {seed} (XETRACK_FAULT_SEED={seed} to repeat), {op} killed after {delay:.3f} s"
        assert integrity(db) == "ok", note
        frame = Reader(db).to_df()
        mine = frame[frame["track_id"] == "before"]
        assert list(mine["i"]) == list(range(before_rows)), note  # rows written before: intact
        if op == "set_value":
            values = set(frame["v"].astype(str))
            assert values in ({"0"}, {"changed" * 20}), (note, values)
            assert not done or values == {"changed" * 20}, note
        else:
            track = "killed" if op == "log_batch" else "copied"
            n = int((frame["track_id"] == track).sum())
            assert n in (0, 200_000 if op == "log_batch" else 100_000), (note, n)
            assert not done or n > 0, note
