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
