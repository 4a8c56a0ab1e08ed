"""What only the PostgreSQL engine has to prove: passwords stay hidden, many processes
grow one table at once, a dropped connection is reopened, PostgreSQL's own limits.

Every test runs against a real server (the session's ``pg_server``, tests/pg_server.py).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import traceback

import pytest

from xetrack import Reader, Tracker
from xetrack.errors import DatabaseError

SPAWN = mp.get_context("spawn")
PROCESSES, ROWS = 8, 150


def secret_url(pg_server, database):
    from pg_server import PASSWORD, PASSWORD_ROLE

    return pg_server.url(database, user=PASSWORD_ROLE, password=PASSWORD), PASSWORD


@pytest.fixture
def owned_db(pg_server):
    """A database owned by the password role, and its URL with the password in it."""
    from pg_server import PASSWORD_ROLE

    name = pg_server.create_database(owner=PASSWORD_ROLE).rsplit("/", 1)[1]
    return secret_url(pg_server, name)


def test_the_password_never_shows(owned_db, capsys, tmp_path):
    url, password = owned_db
    tracker = Tracker(
        url, params={"model": "rf"}, logs_path=tmp_path / "logs", logs_stdout=True, jsonl=tmp_path / "events.jsonl"
    )
    tracker.log({"acc": 0.9})
    tracker.logger.info(f"logging to {tracker.db}")
    tracker.close()
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert "acc" in written and password not in written
    reader = Reader(url)
    shown = [repr(tracker), repr(reader), str(tracker.db), str(reader.db), repr(reader.assets), repr(tracker._engine)]
    assert all(password not in text for text in shown)
    assert "xt_secret:***@" in repr(reader)
    assert reader["acc"].tolist() == [0.9]  # and the connection did use it
    with pytest.raises(KeyError) as missing:
        reader["nope"]
    assert password not in str(missing.value)
    assert password not in capsys.readouterr().out


@pytest.mark.parametrize("wrong", ["wrong-password", "db-that-does-not-exist"])
def test_a_failed_connection_names_the_server_not_the_password(pg_server, wrong):
    from pg_server import PASSWORD, PASSWORD_ROLE

    if wrong == "wrong-password":
        url = pg_server.url("postgres", user=PASSWORD_ROLE, password="Hunter2-wrong")
        secret = "Hunter2-wrong"
    else:
        url, secret = pg_server.url("missing_db", user=PASSWORD_ROLE, password=PASSWORD), PASSWORD
    with pytest.raises(DatabaseError) as failed:
        Tracker(url)
    message = str(failed.value)
    assert secret not in message and "Could not connect to PostgreSQL" in message
    assert f"127.0.0.1:{pg_server.port}" in message
    text = "".join(traceback.format_exception(failed.value))
    assert secret not in text


def test_the_password_may_come_from_pgpassword(owned_db, monkeypatch):
    url, password = owned_db
    bare = url.replace(f":{password}@", "@")
    monkeypatch.setenv("PGPASSWORD", password)
    Tracker(bare).log({"x": 1})
    assert Reader(bare)["x"].tolist() == [1]
    monkeypatch.setenv("PGPASSWORD", "not-it-either")
    with pytest.raises(DatabaseError) as failed:
        Reader(bare)
    assert "not-it-either" not in str(failed.value)


def test_without_psycopg_the_error_names_the_pip_command(pg_url):
    code = f"import sys; sys.modules['psycopg'] = None\nfrom xetrack import Tracker\nTracker({pg_url!r})\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "pip install 'xetrack[postgres]'" in out.stderr.strip().splitlines()[-1]


def _grow(url: str, worker: int, result) -> None:
    try:
        tracker = Tracker(url, params={"worker": worker})
        for i in range(ROWS):
            row = {"i": i, f"own_{worker}": i * 0.5, "shared": i}
            if i % 10 == 0:
                row[f"key_{worker}_{i}"] = str(i)  # a new column every ten rows
            tracker.log(row)
        tracker.log_batch([{f"batch_{worker}": j, "shared": j} for j in range(5)])
        result.put((worker, None))
    except BaseException:  # noqa: BLE001 - any failure goes to the test as the worker's traceback
        result.put((worker, traceback.format_exc()))


def run_workers(target, arguments):
    """One spawned process per tuple of ``arguments``, each calling ``target(*args,
    queue)`` that puts (worker, its traceback or None) on the queue; every one must end
    without an error."""
    result = SPAWN.Queue()
    workers = [SPAWN.Process(target=target, args=(*args, result)) for args in arguments]
    for p in workers:
        p.start()
    reports = dict(result.get(timeout=240) for _ in workers)
    for p in workers:
        p.join(timeout=60)
    assert all(error is None for error in reports.values()), [e for e in reports.values() if e]


def test_processes_adding_their_own_keys_lose_no_row(pg_url):
    run_workers(_grow, [(pg_url, w) for w in range(PROCESSES)])
    frame = Reader(pg_url).to_df()
    assert len(frame) == PROCESSES * (ROWS + 5)
    for w in range(PROCESSES):
        mine = frame[frame["worker"] == w]
        assert mine["i"].dropna().tolist() == list(range(ROWS))
        assert mine[f"own_{w}"].dropna().tolist() == [i * 0.5 for i in range(ROWS)]
        assert mine[f"key_{w}_{ROWS - 10}"].dropna().tolist() == [str(ROWS - 10)]
        assert mine[f"batch_{w}"].dropna().tolist() == list(range(5))


def test_a_dropped_connection_is_reopened_without_losing_or_doubling_a_row(pg_server, pg_url):
    from xetrack.store.postgres.sql import QUEUED_ABOVE

    tracker = Tracker(pg_url)
    tracker.log({"x": 0})
    name = pg_url.rsplit("/", 1)[1]

    def drop() -> int:
        rows = pg_server.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        return len(rows)

    assert drop() >= 1
    tracker.log({"x": 1})  # the fast path meets the dead connection
    drop()
    tracker.log({"x": 2, "y": "new column"})  # the slow path
    drop()
    tracker.log_batch([{"x": 3}, {"x": 4}])
    drop()
    assert tracker.set_value("z", True) == 5
    drop()
    tracker.log_batch([{"x": 5 + k} for k in range(QUEUED_ABOVE)])  # COPY through the writer thread
    drop()
    assert Reader(pg_url)["x"].tolist() == list(range(5 + QUEUED_ABOVE))
    z = Reader(pg_url)["z"]
    assert z[:5].tolist() == [True] * 5 and z[5:].isna().all()
    assert tracker.latest.get("z") is None


def test_keys_past_the_columns_a_row_can_hold_are_kept_not_refused(pg_url):
    tracker = Tracker(pg_url)
    tracker.log({f"c{i}": None for i in range(1000)})
    tracker.log({f"d{i}": i for i in range(700)})  # past what a row holds: spilled (tests/test_spill_postgres.py)
    assert len(tracker) == 2 and len(tracker.columns) == 1702
    tracker.log({"c1": 5})
    assert len(tracker) == 3
    tracker.log({f"c{i}": i for i in range(1000)})  # 1,000 values in one row: it still fits one 8 kB page
    assert len(tracker) == 4 and Reader(pg_url).to_df()["c999"].tolist()[-1] == 999


def test_names_postgresql_would_cut_are_refused(pg_url):
    tracker = Tracker(pg_url)
    with pytest.raises(ValueError, match="at most 63 bytes"):
        tracker.log({"k" * 64: 1})
    with pytest.raises(ValueError, match="at most 63 bytes"):
        Tracker(pg_url, table="t" * 64)
    assert len(tracker) == 0


def test_awkward_names_are_quoted_identifiers(pg_url):
    keys = ['a"b', "select", "drop table x; --", "1st", "ü"]
    tracker = Tracker(pg_url, table="select")
    row = tracker.log({k: i for i, k in enumerate(keys)})
    assert Reader(pg_url, table="select").to_df().iloc[0][
        [c for c in row if c not in ("timestamp", "track_id")]
    ].tolist() == [0, 1, 2, 3, 4]


def test_a_reader_needs_only_select(pg_server, pg_url):
    Tracker(pg_url).log({"acc": 0.5})
    name = pg_url.rsplit("/", 1)[1]
    pg_server.sql("DO $$ BEGIN CREATE ROLE xt_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    pg_server.sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO xt_reader", database=name)
    url = pg_server.url(name, user="xt_reader")
    reader = Reader(url)
    assert reader["acc"].tolist() == [0.5] and reader.latest()["acc"].tolist() == [0.5]
    with pytest.raises(Exception, match="permission denied"):
        reader.set_value("acc", 1.0)
    assert Reader(pg_url)["acc"].tolist() == [0.5]


def xt(*args):
    script = os.path.join(os.path.dirname(sys.executable), "xt")
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    env.pop("XT_TRACEBACK", None)
    return subprocess.run([script, *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def test_xt_reads_and_writes_a_url_and_never_prints_its_password(owned_db):
    url, password = owned_db
    with Tracker(url, params={"lr": 0.1}) as run:
        for epoch in range(3):
            run.log({"epoch": epoch, "loss": 1 / (epoch + 1)})
    outputs = {}
    for args in (
        ["head", url, "--json"],
        ["runs", url, "--json"],
        ["columns", url],
        ["tables", url],
        ["set", url, "note", "hi"],
        ["history", url, "loss", "--json"],
        ["stats", url],
    ):
        out = xt(*args)
        assert password not in out.stdout + out.stderr, args
        outputs[args[0]] = out
    import json

    assert [r["loss"] for r in json.loads(outputs["head"].stdout)] == [1.0, 0.5, 1 / 3]
    (run_row,) = json.loads(outputs["runs"].stdout)
    assert run_row["status"] == "finished" and run_row["events"] == 3
    assert "| epoch     | INTEGER |" in outputs["columns"].stdout
    assert outputs["set"].returncode == 0 and Reader(url)["note"].tolist() == ["hi"] * 3
    assert outputs["stats"].returncode == 2 and "xt_secret:***@" in outputs["stats"].stderr  # a usage error


def test_xt_names_a_server_it_cannot_reach_without_the_password(pg_server):
    from pg_server import PASSWORD_ROLE

    out = xt("head", pg_server.url("postgres", user=PASSWORD_ROLE, password="Wrong-Secret-9"))
    assert out.returncode == 1 and out.stdout == ""
    assert "Could not connect to PostgreSQL" in out.stderr and "Wrong-Secret-9" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_the_quickstart_runs_against_postgresql(pg_url, tmp_path):
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "quickstart.py")
    out = subprocess.run(
        [sys.executable, script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XETRACK_DB": pg_url},
    )
    assert out.returncode == 0, out.stderr
    assert "per model, through DuckDB" in out.stdout and not list(tmp_path.iterdir())
    frame = Reader(pg_url).to_df()
    assert len(frame) == 10 and set(frame["model"]) == {"resnet18", "vit-tiny"}


def test_least_privilege_roles_in_their_own_schema(pg_server, pg_url):
    """The roles docs/postgres.md shows: the writer owns its schema, the reader may SELECT."""
    name = pg_url.rsplit("/", 1)[1]
    for role in ("xt_writer", "xt_reader"):
        pg_server.sql(f"DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    for statement in (
        "CREATE SCHEMA experiments AUTHORIZATION xt_writer",
        "GRANT USAGE ON SCHEMA experiments TO xt_reader",
        "ALTER DEFAULT PRIVILEGES FOR ROLE xt_writer IN SCHEMA experiments GRANT SELECT ON TABLES TO xt_reader",
    ):
        pg_server.sql(statement, database=name)
    option = "?options=-csearch_path%3Dexperiments"
    writer = pg_server.url(name, user="xt_writer") + option
    reader_url = pg_server.url(name, user="xt_reader") + option
    with Tracker(writer, params={"lr": 0.1}) as run:
        run.log({"loss": 0.5})
        run.log({"loss": 0.25, "new_key": "x"})
    assert pg_server.sql('SELECT count(*) FROM experiments."default"', database=name) == [(2,)]
    reader = Reader(reader_url)
    assert reader["loss"].tolist() == [0.5, 0.25] and reader.runs()["status"].tolist() == ["finished"]
    assert Reader(reader_url, engine="duckdb")["loss"].tolist() == [0.5, 0.25]
    with pytest.raises(Exception, match="permission denied"):
        reader.set_value("loss", 1.0)
    with pytest.raises(Exception, match="permission denied"):
        Tracker(reader_url).log({"loss": 1})


def test_artifacts_models_and_gc_work_and_backup_points_to_pg_dump(owned_db, tmp_path):
    url, password = owned_db
    tracker = Tracker(url)
    tracker.log({"x": 1})
    digest = tracker.log_artifact(b"a,b\n", name="data.csv")
    assert tracker.register_model("iris", {"w": 1}) == 1
    assert Reader(url).artifact("data.csv") == b"a,b\n" and Reader(url).artifact(digest) == b"a,b\n"
    assert Reader(url).gc().bytes == 0  # everything is pointed at
    with pytest.raises(NotImplementedError, match="pg_dump") as info:
        Reader(url).backup(tmp_path / "backup.db")
    assert password not in str(info.value) and "xt_secret:***@" in str(info.value)
    out = xt("backup", url, tmp_path / "backup.db")
    assert out.returncode != 0 and "pg_dump" in out.stderr and password not in out.stdout + out.stderr
    assert not (tmp_path / "backup.db").exists() and len(tracker) == 1


def test_an_int_beyond_64_bits_is_the_same_clear_error(engine_db):
    tracker = Tracker(engine_db)
    tracker.log({"n": 1, "free": None})
    tracker.log({"n": 2, "free": None})  # the fast path now
    with pytest.raises(ValueError, match="64-bit integer range"):
        tracker.log({"n": 2**70, "free": None})
    with pytest.raises(ValueError, match="64-bit integer range"):
        tracker.log_batch([{"n": 3, "free": 2**64}])  # into an untyped (JSONB) column
    with pytest.raises(ValueError, match="64-bit integer range"):
        tracker.log_batch([{"n": 2**70}])
    assert tracker["n"].tolist() == [1, 2]


def test_a_writer_killed_with_sigkill_loses_at_most_its_row_in_flight(pg_url):
    import signal
    import time

    code = (
        "import sys\n"
        "from xetrack import Tracker\n"
        f"t = Tracker({pg_url!r}, track_id='victim')\n"
        "i = 0\n"
        "while True:\n"
        "    t.log({'i': i, f'k{i % 50}': i})  # new columns now and then\n"
        "    print(i, flush=True)\n"
        "    i += 1\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    last = -1
    deadline = time.monotonic() + 60
    while last < 300 and time.monotonic() < deadline:
        last = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    rest = proc.stdout.read().split()  # lines still in the pipe
    logged = int(rest[-1]) if rest else last  # log() returned for 0..logged: committed
    values = Reader(pg_url)["i"].tolist()
    assert values == list(range(len(values)))  # no hole, no duplicate
    assert logged + 1 <= len(values) <= logged + 2  # at most the row in flight is lost


def test_the_password_may_come_from_a_pgpass_file(owned_db, pg_server, tmp_path, monkeypatch):
    url, password = owned_db
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{pg_server.port}:*:xt_secret:{password}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    bare = url.replace(f":{password}@", "@")
    Tracker(bare).log({"x": 1})
    assert Reader(bare)["x"].tolist() == [1]


def test_a_unix_socket_url(pg_server, pg_url):
    name = pg_url.rsplit("/", 1)[1]
    socket_url = f"postgresql://postgres@/{name}?host={pg_server.folder}&port={pg_server.port}"
    Tracker(socket_url).log({"x": 1})
    assert Reader(pg_url)["x"].tolist() == [1]


def test_xt_artifacts_models_and_gc_on_a_url(owned_db, tmp_path):
    url, password = owned_db
    tracker = Tracker(url)
    tracker.log({"x": 1})
    tracker.log_artifact(b"epoch,loss\n1,0.5\n", name="metrics.csv")
    tracker.register_model("iris", {"w": [1, 2]}, alias="production")
    listed = xt("artifacts", "ls", url)
    assert listed.returncode == 0 and "metrics.csv" in listed.stdout
    got = xt("artifacts", "get", url, "metrics.csv", tmp_path / "m.csv")
    assert got.returncode == 0 and (tmp_path / "m.csv").read_bytes() == b"epoch,loss\n1,0.5\n"
    models = xt("models", "ls", url)
    assert models.returncode == 0 and "iris" in models.stdout and "production" in models.stdout
    Reader(url).delete_run(tracker.track_id)
    gc = xt("assets", "gc", url)
    assert gc.returncode == 0 and "1 artifact" in gc.stdout, gc.stdout
    for out in (listed, got, models, gc):
        assert password not in out.stdout + out.stderr
    assert Reader(url).load_model("iris@production") == {"w": [1, 2]}  # the registry kept its bytes


def test_a_column_of_a_type_made_by_hand_keeps_every_value(pg_url):
    """A column a user added with a SQL client (TIMESTAMP): nothing xetrack logs fits it
    for sure, so each value goes where it is stored as given, by log() and by log_batch()."""
    from pg_server import raw_sql

    tracker = Tracker(pg_url)
    tracker.log({"x": 1})
    raw_sql(pg_url, 'ALTER TABLE "default" ADD COLUMN "seen" TIMESTAMP')
    tracker = Tracker(pg_url)  # a new process's view of the table
    tracker.log_batch([{"x": 2, "seen": "2026-01-01 10:00:00"}, {"x": 3, "seen": 7}])
    tracker.log({"x": 4, "seen": None})
    frame = Reader(pg_url).to_df()
    assert frame["x"].tolist() == [1, 2, 3, 4]
    assert frame["seen"].tolist()[1:3] == ["2026-01-01 10:00:00", 7]
    assert frame["seen"].isna().tolist() == [True, False, False, True]
