"""The `xt` command line, run as a user runs it: the installed script, in a subprocess.

Each test makes its database through the public API, runs `xt`, and checks the output,
the exit code, and the file afterwards: unchanged after a read, changed as asked after
a write. Errors must be one line on stderr, with no traceback.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from xetrack import Reader, Tracker
from xetrack.store.sqlite import idle

XT = os.path.join(os.path.dirname(sys.executable), "xt")
ROOT = Path(__file__).resolve().parent.parent
ENGINES = ["sqlite", "duckdb"]


def xt(*args, cwd=None):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    env.pop("XT_TRACEBACK", None)
    return subprocess.run([XT, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def ok(*args, cwd=None):
    out = xt(*args, cwd=cwd)
    assert out.returncode == 0, f"xt {' '.join(map(str, args))}: {out.stderr}"
    return out.stdout


def fails(*args, match, code=None):
    """The command fails with one line on stderr that matches, and prints nothing on stdout."""
    out = xt(*args)
    assert out.returncode != 0 and (code is None or out.returncode == code), (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert re.search(match, lines[0]), lines[0]
    return lines[0]


def fingerprint(path):
    """Everything a read must leave alone: the file's bytes and mtime, and its folder.

    The connections this process keeps idle are closed first (as at exit): their -wal and
    -shm files would otherwise go away on their own, whatever the read did."""
    idle.close_all()
    data = Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest(), os.stat(path).st_mtime_ns, sorted(os.listdir(Path(path).parent))


class Model:
    def __init__(self, w):
        self.w = w


def make_db(path):
    first = Tracker(path, params={"model": "xgboost"})
    first.track_id = "crouching-groundhog-5046"
    for epoch in range(3):
        first.log({"epoch": epoch, "accuracy": 0.8 + epoch / 100, "loss": 1 / (epoch + 1), "flag": epoch == 1})
    second = Tracker(path, params={"model": "lightgbm"})
    second.track_id = "ebony-loon-6720"
    second.log({"epoch": 0, "accuracy": 0.91, "weights": Model(np.ones(3)), "note": "1b5b2294fc521d12"})
    serving = Tracker(path, table="serving")
    serving.log({"latency_ms": 12.5})
    for tracker in (first, second, serving):
        tracker.close()
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_db(str(tmp_path_factory.mktemp("template") / "results.db"))


@pytest.fixture
def db(template, tmp_path):
    """A fresh copy for a test that writes."""
    path = tmp_path / "results.db"
    shutil.copy(template, path)
    return str(path)


@pytest.fixture(scope="module")
def readonly(template, tmp_path_factory):
    """One file for every read test; each checks that it is left exactly as it was."""
    path = tmp_path_factory.mktemp("readonly") / "results.db"
    shutil.copy(template, path)
    return str(path)


# -- help and docs ------------------------------------------------------------------
def all_commands():
    """Every command path of the app, from the app itself: ['head', ..., 'assets ls', ...]."""
    import typer

    from xetrack.cli import app

    group = typer.main.get_command(app)
    paths = []
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        if subcommands:
            paths += [f"{name} {sub}" for sub in subcommands]
        else:
            paths.append(name)
    return paths


COMMANDS = all_commands()


def test_the_issue_commands_all_exist():
    expected = {
        "head",
        "tail",
        "columns",
        "tables",
        "set",
        "delete",
        "sql",
        "copy",
        "version",
        "assets ls",
        "assets export",
        "assets delete",
        "assets gc",
        "cache ls",
        "cache delete",
        "artifacts ls",
        "artifacts get",
        "models ls",
        "models alias",
        "models unalias",
        "models export",
        "stats describe",
        "stats top",
        "stats bottom",
        "plot hist",
        "plot scatter",
        "runs",
        "compare",
        "history",
        "backup",
        "duckdb",  # issue 11: a safe copy of a live file; the DuckDB shell, offline
        "tag",
        "import mlflow",
        "export mlflow",  # issue 15: run tags; MLflow in and out
        "ui",  # issue 13: the dashboard
        "describe",  # issue 20: as xetrack 0.7.0's README calls it
        "import tensorboard",
        "import csv",  # issue 22: history from TensorBoard event files and CSV files
        "prune",
        "du",  # issue 24: prune runs, see where the bytes are
    }
    assert set(COMMANDS) == expected


def test_xt_help_lists_every_command():
    out = ok("--help")
    for name in {c.split()[0] for c in COMMANDS}:
        assert re.search(rf"│ {name} ", out), name
    assert "Example: xt" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_says_what_it_does_with_an_example(command):
    out = ok(*command.split(), "--help")
    assert f"Usage: xt {command}" in out
    assert f"Example: xt {command}" in out


def test_every_command_is_documented_with_a_real_session():
    text = (ROOT / "docs" / "cli.md").read_text()
    sessions = re.findall(r"^```console\n(.*?)^```", text, re.S | re.M)
    prompts = [line[2:] for block in sessions for line in block.splitlines() if line.startswith("$ xt ")]
    for command in COMMANDS:
        assert any(p == f"xt {command}" or p.startswith(f"xt {command} ") for p in prompts), command
        assert f"## `xt {command.split()[0]}" in text or f"`xt {command}" in text, command


# -- reading rows ---------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_head_and_tail(readonly, engine):
    before = fingerprint(readonly)
    table = ok("head", readonly, "--n", 2, "--engine", engine)
    lines = table.splitlines()
    assert lines[0].startswith("| timestamp ") and "| accuracy |" in lines[0].replace("   ", " ")
    assert len(lines) == 4 and "crouching-groundhog-5046" in lines[2] and "xgboost" in lines[3]

    rows = json.loads(ok("head", readonly, "--json", "--engine", engine))
    assert [r["track_id"] for r in rows] == ["crouching-groundhog-5046"] * 3 + ["ebony-loon-6720"]
    assert rows[0]["epoch"] == 0 and rows[1]["flag"] is True and rows[0]["weights"] is None

    last = json.loads(ok("tail", readonly, "-n", 1, "--json", "--table", "serving", "-e", engine))
    assert len(last) == 1 and last[0]["latency_ms"] == 12.5
    assert fingerprint(readonly) == before


def test_columns_and_tables(readonly):
    before = fingerprint(readonly)
    columns = ok("columns", readonly)
    assert re.search(r"\| epoch\s+\| INTEGER", columns) and re.search(r"\| flag\s+\| BOOLEAN", columns)
    duck = json.loads(ok("columns", readonly, "--engine", "duckdb", "--json"))
    assert {"column": "accuracy", "type": "REAL", "duckdb_type": "DOUBLE"} in duck

    listing = ok("tables", readonly)
    assert re.search(r"\| default\s+\|\s+4 \|\s+2 \|", listing), listing
    assert "assets" not in listing and "xetrack_" not in listing
    assert json.loads(ok("tables", readonly, "--json", "--engine", "duckdb")) == [
        {"table": "default", "rows": 4, "runs": 2},
        {"table": "serving", "rows": 1, "runs": 1},
    ]
    assert fingerprint(readonly) == before


def test_json_output_pipes_into_json_tool(readonly):
    out = subprocess.run(
        f"{XT} head {readonly} --json | {sys.executable} -m json.tool", shell=True, capture_output=True, text=True
    )
    assert out.returncode == 0 and '"track_id": "ebony-loon-6720"' in out.stdout


# -- changing rows --------------------------------------------------------------------
def test_set_parses_values_and_filters(db):
    run = "crouching-groundhog-5046"
    assert (
        ok("set", db, "accuracy", "0.8", "--where-key", "epoch", "--where-value", "1", "--track-id", run)
        == "Updated 1\n"
    )
    assert ok("set", db, "reviewed", "true", "--track-id", "ebony-loon-6720", "--engine", "duckdb") == "Updated 1\n"
    assert ok("set", db, "stage", "baseline") == "Updated 4\n"  # no filter: every row
    assert ok("set", db, "note", "12", "--where-key", "note", "--where-value", "1b5b2294fc521d12") == "Updated 1\n"
    assert ok("set", db, "loss", "null", "--where-key", "epoch", "--where-value", "0") == "Updated 2\n"
    assert ok("set", db, "epochs", "3") == "Updated 4\n"

    frame = Reader(db).to_df()
    assert frame["accuracy"].tolist() == pytest.approx([0.8, 0.8, 0.82, 0.91])
    assert frame["reviewed"].tolist()[3] is True and str(frame["reviewed"].dtype) == "boolean"
    assert frame["stage"].tolist() == ["baseline"] * 4
    assert frame["note"].tolist()[3] == "12"  # a TEXT column keeps the text typed
    assert frame["loss"].isna().tolist() == [True, False, False, True]
    assert frame["epochs"].tolist() == [3] * 4 and str(frame["epochs"].dtype) == "Int64"

    fails("set", db, "x", "1", "--where-key", "epoch", match="--where-key and --where-value together", code=2)
    fails("set", db, "x", "1", "--where-key", "epok", "--where-value", "1", match=r"'epok' not found.*epoch")


@pytest.mark.parametrize("engine", ENGINES)
def test_delete_a_run(db, engine):
    assert ok("delete", db, "crouching-groundhog-5046", "--engine", engine) == "Deleted 3\n"
    assert Reader(db).to_df()["track_id"].tolist() == ["ebony-loon-6720"]
    assert ok("delete", db, "no-such-run") == "Deleted 0\n"
    assert len(Reader(db, table="serving")) == 1


# -- SQL ------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_sql_with_the_file_attached_as_db(readonly, engine):
    before = fingerprint(readonly)
    query = 'SELECT model, max(accuracy) AS best FROM db."default" GROUP BY model ORDER BY model'
    assert json.loads(ok("sql", readonly, query, "--json", "--engine", engine)) == [
        {"model": "lightgbm", "best": 0.91},
        {"model": "xgboost", "best": 0.8200000000000001},
    ]
    table = ok("sql", readonly, 'SELECT count(*) AS n FROM "serving"', "-e", engine)
    assert re.search(r"\|\s+1 \|", table)
    message = fails("sql", readonly, "SELECT * FROM db.nope", "-e", engine, match="^Error: SQL error: ")
    assert "nope" in message
    assert fingerprint(readonly) == before


def test_sql_can_write(db):
    out = xt("sql", db, 'UPDATE db."default" SET loss = 0 WHERE epoch = 0')
    assert out.returncode == 0 and out.stdout == "" and "2 rows changed" in out.stderr
    assert Reader(db).to_df()["loss"].tolist()[0] == 0


# -- assets ---------------------------------------------------------------------------
def test_assets_ls_export_delete(db, tmp_path):
    (digest,) = list(Reader(db).assets)
    before = fingerprint(db)
    listing = ok("assets", "ls", db)
    assert re.search(rf"\| {digest} \|\s+\d+ \|\s+1 \|", listing), listing
    (entry,) = json.loads(ok("assets", "ls", db, "--json"))
    assert entry["hash"] == digest and entry["references"] == 1 and entry["bytes"] > 0

    output = tmp_path / "model.cloudpickle"
    assert ok("assets", "export", db, digest, output) == f"Wrote {entry['bytes']} bytes to {output}\n"
    assert cloudpickle.loads(output.read_bytes()).w.tolist() == [1.0, 1.0, 1.0]
    fails("assets", "export", db, "0" * 16, tmp_path / "none.pkl", match="No asset '0000000000000000'")
    assert not (tmp_path / "none.pkl").exists()
    assert fingerprint(db)[:2] == before[:2]  # listing and exporting leave the file alone

    assert ok("assets", "delete", db, digest) == "Deleted 1\n"
    assert len(Reader(db).assets) == 0
    assert Reader(db).to_df()["weights"].tolist()[3] == digest  # the row keeps the hash
    assert "No assets in" in ok("assets", "ls", db)


# -- cache ----------------------------------------------------------------------------
def power(x, y):
    return x**y


def test_cache_ls_and_delete(tmp_path):
    cache = str(tmp_path / "cache_dir")
    first = Tracker(str(tmp_path / "track.db"), cache=cache)
    first.track(power, args=[2, 10])
    first.track(power, args=[3, 3])
    second = Tracker(str(tmp_path / "track.db"), cache=cache)
    second.track(power, args=[5, 2])

    listing = ok("cache", "ls", cache)
    assert listing.count(first.track_id) == 2 and listing.count(second.track_id) == 1
    assert re.search(r"\|\s+1024 \|", listing)
    entries = json.loads(ok("cache", "ls", cache, "--json"))
    assert sorted((e["track_id"], e["result"]) for e in entries) == sorted(
        [(first.track_id, 1024), (first.track_id, 27), (second.track_id, 25)]
    )
    assert all(e["key"].startswith("power:") for e in entries)

    assert ok("cache", "delete", cache, first.track_id) == "Deleted 2\n"
    assert ok("cache", "delete", cache, second.track_id) == "Deleted 1\n"
    assert "empty" in ok("cache", "ls", cache)
    fails("cache", "ls", tmp_path / "nowhere", match="No xetrack cache")


# -- stats and plots ------------------------------------------------------------------
def test_stats(readonly):
    before = fingerprint(readonly)
    described = ok("stats", "describe", readonly)
    assert "| mean " in described and "| accuracy " in described.replace("   ", " ")
    summary = json.loads(ok("stats", "describe", readonly, "--columns", "accuracy,epoch", "--json"))
    assert set(summary) == {"accuracy", "epoch"} and summary["accuracy"]["count"] == 4
    assert summary["accuracy"]["max"] == 0.91

    top = json.loads(ok("stats", "top", readonly, "accuracy", "--json"))
    assert top["track_id"] == "ebony-loon-6720" and top["accuracy"] == 0.91 and "loss" not in top
    bottom = ok("stats", "bottom", readonly, "loss", "--engine", "duckdb")
    assert re.search(r"\| epoch\s+\| 2 ", bottom) and "crouching-groundhog-5046" in bottom

    fails("stats", "top", readonly, "acuracy", match=r"Column 'acuracy' not found.*Did you mean: accuracy")
    fails("stats", "bottom", readonly, "model", match="holds no numbers")
    fails(
        "stats",
        "describe",
        readonly,
        "--table",
        "defualt",
        match=r"Table 'defualt' not found.*Tables: default, serving",
    )
    assert fingerprint(readonly) == before


def test_plots(tmp_path):
    path = str(tmp_path / "plot.db")
    rng = np.random.default_rng(0)
    with Tracker(path) as tracker:
        tracker.log_batch([{"x": float(v), "y": float(v) * 2 + 1} for v in rng.normal(0, 1, 500)])
        tracker.log({"x": "not a number"})
    before = fingerprint(path)

    out = xt("plot", "hist", path, "x", "--bins", 10)
    assert out.returncode == 0, out.stderr
    assert "x histogram" in out.stdout and "█" in out.stdout and "\x1b[" not in out.stdout
    assert re.search(r"\| x\s+\|\s+500 \|", out.stdout)  # count, then min, mean, max
    assert "1 row without a number in 'x' left out" in out.stderr

    scatter = ok("plot", "scatter", path, "x", "y")
    assert "y against x" in scatter and re.search(r"\| y\s+\|\s+500 \|", scatter)
    assert {"count", "min", "mean", "max"} <= set(re.findall(r"[a-z]+", scatter.splitlines()[-4]))
    fails("plot", "hist", path, "x", "--bins", 0, match="--bins", code=2)
    assert fingerprint(path) == before


# -- errors every command shares ------------------------------------------------------
def test_errors_are_one_line(tmp_path, readonly):
    fails("head", tmp_path / "missing.db", match="Database '.*missing.db' does not exist")
    assert not (tmp_path / "missing.db").exists()
    fails("head", readonly, "--engine", "postgres", match="'postgres' is not one of 'sqlite', 'duckdb'", code=2)
    fails("tail", readonly, "--n", "many", match="Invalid value for '--n'", code=2)
    (tmp_path / "notes.txt").write_text("not a database")
    fails("tables", tmp_path / "notes.txt", match="not a SQLite database")


# -- the --json contract (docs/cli.md: a table is a list of row objects, a record one object)
JSON_ROWS = {
    "head": [],
    "tail": [],
    "columns": [],
    "tables": [],
    "runs": [],
    "history": ["accuracy"],
    "compare": ["crouching-groundhog-5046", "ebony-loon-6720"],
    "sql": ['SELECT "epoch" FROM "default"'],
    "assets ls": [],
    "artifacts ls": [],
    "models ls": [],
    "prune": ["--status", "finished", "--dry-run"],  # one object per table
}
JSON_OBJECTS = {
    "stats describe": [],
    "describe": [],
    "stats top": ["accuracy"],
    "stats bottom": ["loss"],
    "assets gc": ["--dry-run"],
    "du": [],
}


def test_every_json_command_is_in_the_contract():
    import typer

    from xetrack.cli import app

    def walk(command, prefix=()):
        for name, sub in (getattr(command, "commands", None) or {}).items():
            yield from walk(sub, prefix + (name,))
        if not getattr(command, "commands", None) and any("--json" in getattr(p, "opts", []) for p in command.params):
            yield " ".join(prefix)

    with_json = set(walk(typer.main.get_command(app)))
    assert with_json == set(JSON_ROWS) | set(JSON_OBJECTS) | {"cache ls"}  # cache ls: its own test above


@pytest.mark.parametrize("command", sorted(JSON_ROWS) + sorted(JSON_OBJECTS))
def test_json_output_has_the_documented_shape(command, readonly):
    from typer.testing import CliRunner

    from xetrack.cli import app

    args = JSON_ROWS.get(command, JSON_OBJECTS.get(command))
    out = CliRunner().invoke(app, [*command.split(), readonly, *args, "--json"])
    assert out.exit_code == 0, out.output
    value = json.loads(out.stdout)
    if command in JSON_ROWS:
        assert isinstance(value, list) and all(isinstance(row, dict) for row in value), value
        if command not in ("artifacts ls", "models ls"):  # the file has none of those
            assert value and all(set(row) == set(value[0]) for row in value)
    else:
        assert isinstance(value, dict) and value, value
