"""Scripts written the way xetrack 0.7.0 users write them (tests/compat/*.py), each run as
its own program in an empty folder; then what it left on disk is checked from here."""

import datetime
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import cloudpickle
import pytest

SCRIPTS = sorted(Path(__file__).parent.joinpath("compat").glob("*.py"))


def rows(path, table="default"):
    """Every row of a table of a SQLite file, as dicts, oldest first."""
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid')]


def tables(path):
    with sqlite3.connect(path) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def years():
    return {datetime.datetime.now().year, (datetime.datetime.now() - datetime.timedelta(minutes=5)).year}


def days():
    now = datetime.datetime.now()
    return {f"{day:%Y-%m-%d}.log" for day in (now, now - datetime.timedelta(minutes=5))}


# -- what each script leaves behind -------------------------------------------------------
def after_quickstart(cwd, out):
    assert (cwd / "results").is_dir() and (cwd / "results/exp.db").is_file()
    events = rows(cwd / "results/exp.db")
    assert len(events) == 3
    assert sorted(r["model"] for r in events) == ["resnet18", "resnet18", "resnet50"]
    assert [r["test_accuracy"] for r in events if r["model"] == "resnet18"] == [0.88, 0.88]
    assert {"model_experiments", "data_experiments"} <= tables(cwd / "results/experiments.db")
    assert [r["rows"] for r in rows(cwd / "results/experiments.db", "data_experiments")] == [1000]


def after_sweep(cwd, out):
    events = rows(cwd / "sweeps/sweep.db")
    assert len(events) == 18 and len({r["track_id"] for r in events}) == 6
    assert {(r["lr"], r["depth"]) for r in events} == {(lr, d) for lr in (0.01, 0.1, 0.5) for d in (2, 4)}
    assert not (cwd / "missing").exists()


def after_track_functions(cwd, out):
    events = rows(cwd / "bench/functions.db")
    assert len(events) == 4
    tracked = events[0]
    assert tracked["function_name"] == "read_image" and tracked["function_result"] == 14 * 32
    for key in ("cpu", "memory_percent", "p_memory_percent", "disk_percent", "bytes_sent", "bytes_recv"):
        assert tracked[key] is not None, key
    logged = next(r for r in events if r["stage"] == "eval")
    for key in ("cpu_percent", "ram_percent", "p_memory_percent", "disk_percent"):
        assert 0 <= logged[key] <= 100, (key, logged[key])
    for key in ("bytes_sent", "bytes_recv"):
        assert logged[key] >= 0, (key, logged[key])
    assert [r["name"] for r in events if r["function_name"] == "foo"] == ["foofoo"]


def after_assets(cwd, out):
    events = rows(cwd / "models/database.db")
    hashes = [r["lr"] for r in events if r["lr"]]
    assert len(events) == 4 and len(hashes) == 3 and len(set(hashes)) == 2
    with open(cwd / "model.cloudpickle", "rb") as f:
        model = cloudpickle.loads(f.read())
    assert model.predict([[0, 0], [6, 6]]) == ["a", "b"]


def after_caching(cwd, out):
    assert (cwd / "cache_dir").is_dir()
    events = rows(cwd / "track.db")
    assert len(events) == 11
    computed = [r for r in events if r["function_name"] == "expensive_computation" and r["cache"] == ""]
    assert [r["function_result"] for r in computed] == [1024, 59049, 1024]
    hits = [r for r in events if r["function_name"] == "expensive_computation" and r["cache"]]
    assert len(hits) == 4 and {r["cache"] for r in hits} == {events[0]["track_id"]}


def after_logs_loguru(cwd, out):
    assert sorted(os.listdir(cwd / "logs")) in ([f"{y}_exp.log"] for y in years())
    text = next((cwd / "logs").iterdir()).read_text(encoding="utf-8")
    assert '"b": 2' in text and '"b": 3' in text
    assert set(os.listdir(cwd / "daily")) <= days()
    assert '"b": 2' in out  # logs_stdout=True
    assert len(rows(cwd / "runs/exp.db")) == 2


def after_jsonl_dataset(cwd, out):
    lines = (cwd / "logs/data.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["subject"] for e in events] == ["taxes", "dance", "cooking", "chess"]
    assert {e["level"] for e in events} == {"TRACKING"}
    assert [r["subject"] for r in rows(cwd / "genai/database.db")] == ["taxes", "dance", "cooking", "chess"]


def after_monitoring(cwd, out):
    assert sorted(os.listdir(cwd)) == ["logs", "monitoring.py"]  # no database file
    names = os.listdir(cwd / "logs")
    assert names and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}\.log", n) for n in names), names
    assert "latency_ms" in out and "fraud-api" in out  # logs_stdout=True


def after_duckdb_engine(cwd, out):
    events = rows(cwd / "warehouse/experiments.db")
    assert sorted(r["accuracy"] for r in events) == [0.71, 0.79, 0.84, 0.91]
    assert [r["test_accuracy"] for r in events if r["model"] == "resnet50"] == [0.9, 0.9]


def after_readme_sql_events(cwd, out):
    assert [r["accuracy"] for r in rows(cwd / "database.db")] == [0.9, 0.7]


def after_cli_tour(cwd, out):
    events = rows(cwd / "database.db")
    assert len(events) == 150 and {r["model"] for r in events} == {"lightgbm"}
    assert {r["accuracy"] for r in events} == {0.8}
    assert sorted(r["site"] for r in rows(cwd / "target.db")) == ["a", "b"]
    assert sorted(r["site"] for r in rows(cwd / "bare.db")) == ["a", "c"]


AFTER = {name[len("after_") :]: check for name, check in globals().items() if name.startswith("after_")}


def test_every_script_has_its_checks():
    assert sorted(AFTER) == sorted(script.stem for script in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_script(script, tmp_path):
    shutil.copy(script, tmp_path / script.name)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, script.name], cwd=tmp_path, capture_output=True, text=True,
        encoding="utf-8", errors="replace", timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, (
        f"{script.name} exited {done.returncode}:\n{done.stderr[-4000:]}\n{done.stdout[-2000:]}"
    )
    assert done.stdout.strip(), f"{script.name} printed nothing"
    AFTER[script.stem](tmp_path, done.stdout)
