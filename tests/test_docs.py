"""Every Python snippet in README.md and docs/*.md runs, in order, as a user would paste it."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


DOCS = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if blocks(p, "python")]


def test_the_main_docs_have_runnable_snippets():
    assert {"README.md", "quickstart.md", "concepts.md"} <= {p.name for p in DOCS}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_python_snippets_run(path, tmp_path, monkeypatch):
    snippets = blocks(path, "python")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    for number, code in enumerate(snippets, 1):
        try:
            exec(compile(code, f"{path.name}[{number}]", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 # pragma: no cover - any error of a snippet fails with the snippet shown
            pytest.fail(f"{path.name} snippet {number} failed: {exc!r}\n{code}")
    import xetrack

    xetrack.set_backend("pandas")


def test_readme_duckdb_cli_snippet_runs(tmp_path):
    from xetrack import Tracker

    Tracker(str(tmp_path / "database.db")).log({"accuracy": 0.9})
    (snippet,) = [b for b in blocks(ROOT / "README.md", "bash") if "duckdb -c" in b]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    out = subprocess.run(["bash", "-ec", snippet], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "0.9" in out.stdout


def test_runs_doc_duckdb_shell_reaches_a_spilled_key(tmp_path):
    from xetrack import Tracker

    t = Tracker(str(tmp_path / "wide_docs.db"), params={"model": "m"})
    for step in range(3):
        t.log({"step": step, **{f"class_{i}_f1": (i + step) / 3000 for i in range(2500)}})
    (snippet,) = [b for b in blocks(ROOT / "docs" / "runs.md", "bash") if "xetrack_spill" in b]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    out = subprocess.run(["bash", "-ec", snippet], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert t.track_id in out.stdout and "0.833" in out.stdout and "0.8336" in out.stdout
