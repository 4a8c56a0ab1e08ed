"""The layering rule of docs/architecture.md: engine-specific SQL lives in ``xetrack/store/``,
and so does every use of an engine's internals.

Above ``store/``, modules validate, decide and build frames; they reach the database
through engine methods and the ``store/<dialect>_<feature>`` modules. This test reads
every module above ``store/`` and fails on SQL text, on a call of a connection's
``execute``, on an engine's private machinery (``engine._live()``, ``._guard``,
``._transact``...) or on an import of a database driver.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "xetrack"

#: SQL on other programs' databases, not on a xetrack store: MLflow's own database (the
#: import source) and diskcache's index (one tag read without loading the value).
FOREIGN = {"migrate/mlflow_store.py", "migrate/mlflow_pg.py", "cache.py"}

SQL = re.compile(
    r"\bSELECT\b[^\n]*\bFROM\b|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bDELETE\s+FROM\b|\bUPDATE\s+\S+\s+SET\b|"
    r"\b(CREATE|DROP|ALTER)\s+(TEMP\s+)?(TABLE|INDEX|TRIGGER|VIEW)\b|\bPRAGMA\b|sqlite_master|\bVACUUM\b|"
    r"\bATTACH\b|\bCOPY\s+\S+\s+(FROM|TO)\b|ORDER\s+BY\s+rowid"
)
CALLS = {"execute", "executemany", "executescript"}
#: The engines' own machinery (their connection, lock, transactions): used only in store/.
INTERNALS = {"_live", "_guard", "_run", "_transact", "_rows", "_cursor", "_load", "_write", "_writing",
             "_open", "_shared_cursor", "_grow", "_record", "_select"}
DRIVERS = {"sqlite3", "psycopg", "duckdb"}
#: errors.py subclasses sqlite3.OperationalError (DatabaseBusyError stays what 0.7.0 raised).
DRIVER_IMPORTS = {"errors.py": {"sqlite3"}}


def _modules() -> list[pathlib.Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if p.relative_to(PACKAGE).parts[0] != "store" and str(p.relative_to(PACKAGE)) not in FOREIGN)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (they may describe SQL)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _findings(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    allowed = DRIVER_IMPORTS.get(str(path.relative_to(PACKAGE)) if path.is_relative_to(PACKAGE) else "", set())
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if SQL.search(node.value):
                found.append(f"{line}: SQL text {node.value[:60]!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CALLS:
            found.append(f"{line}: a call of .{node.func.attr}()")
        elif (isinstance(node, ast.Attribute) and node.attr in INTERNALS
              and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(f"{line}: an engine internal, .{node.attr}")
        elif isinstance(node, ast.Import):
            found += [f"{line}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in DRIVERS and a.name not in allowed]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in DRIVERS:
            found.append(f"{line}: from {node.module} import ...")
    return sorted(found, key=lambda f: int(f.split(":")[0]))


def test_the_scan_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text(
        '"""SELECT x FROM y in a docstring is fine."""\n'
        "import sqlite3\n"
        "def f(conn, t):\n"
        '    """PRAGMA in a docstring is fine."""\n'
        "    conn.execute(f'SELECT a FROM {t} ORDER BY rowid')\n"
        "    return 'INSERT OR IGNORE INTO x VALUES (1)'\n"
        "def g(engine, self):\n"
        "    with engine._guard.lock:\n"
        "        return self._live()\n"
    )
    # the import; the call, SELECT...FROM and ORDER BY rowid; the INSERT; engine._guard (not self._live)
    assert [f.split(":")[0] for f in _findings(sample)] == ["2", "5", "5", "5", "6", "8"]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_engine_sql_above_store(path):
    name = str(path.relative_to(PACKAGE))
    assert _findings(path) == [], f"{name} holds engine-specific SQL; move it into xetrack/store/"


#: What store/ may import from above it: leaf modules with no feature logic.
LEAVES = {"assets", "errors", "frames", "progress", "schema"}


@pytest.mark.parametrize("path", sorted((PACKAGE / "store").glob("*.py")), ids=lambda p: p.name)
def test_the_store_imports_only_leaf_modules_from_above(path):
    """The layers point one way: features call the store, the store never calls a feature."""
    tree = ast.parse(path.read_text(), str(path))
    upward = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 2:
            target = (node.module or "").split(".")[0]
            names = [target] if target else [a.name for a in node.names]
            upward += [f"{node.lineno}: {n}" for n in names if n not in LEAVES]
    assert upward == [], f"store/{path.name} imports feature modules"
