"""The layers of docs/architecture.md, read from the code with :mod:`ast`.

``xetrack/store/`` holds one package per engine (``store/sqlite/``, ``store/postgres/``,
``store/duckdb/``) and, directly in ``store/``, the shared modules (``__init__``, ``base``,
``null``, ``run_mirror``...). Every import of every module is resolved to the module it
names, at any package depth and inside functions too (``if TYPE_CHECKING:`` blocks aside,
but for rule 4), and these rules hold:

1. above ``store/``, no module imports an engine package or a database driver
   (``sqlite3``, ``psycopg``, ``duckdb``): it reaches an engine through ``xetrack.store``'s
   shared modules; the exceptions are named in ``FOREIGN_IMPORTS`` and ``DRIVER_TYPES``;
2. no engine package imports another's, but the DuckDB package the SQLite and PostgreSQL
   ones (``ENGINE_USES``);
3. the engine packages import only the shared modules below them, those that import no
   engine package; and ``store/`` imports only the leaf modules from above it (``LEAVES``);
4. there is no import circle in ``xetrack/``, type-only imports included: a module typed
   by one above it names a ``typing.Protocol`` of what it uses instead;
5. no module is longer than 500 lines;
6. above ``store/``: no SQL text, no ``.execute()``, no engine internals (``._live()``,
   ``._guard``...), and outside ``reader.py`` no private attribute of a Reader.

The resolver and every rule are tried first on a small package written in a temporary
folder, so that a scan that sees nothing cannot pass.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import pathlib
import re
from collections import defaultdict, deque
from collections.abc import Container, Iterator
from itertools import pairwise

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "xetrack"
MAX_LINES = 500
ENGINES = ("sqlite", "postgres", "duckdb")
DRIVERS = ("sqlite3", "psycopg", "duckdb")

#: Above store/, the imports of a driver or an engine package whose database is another
#: program's, not a xetrack store: (file in xetrack/, module and what is under it) -> why.
FOREIGN_IMPORTS = {
    ("migrate/mlflow_store.py", "sqlite3"): "reads MLflow's own SQLite database (the import source), read-only",
    ("migrate/mlflow_pg.py", "xetrack.store.postgres.connect"): (
        "opens MLflow's own PostgreSQL database (the import source) with the PostgreSQL engine's "
        "connect(): psycopg loaded on demand, the password kept out of messages"
    ),
}
#: Not a database: the exception class that xetrack's own errors extend.
DRIVER_TYPES = {
    ("errors.py", "sqlite3"): (
        "DatabaseBusyError subclasses sqlite3.OperationalError, as 0.7.0 raised, so that code "
        "catching that keeps working; the class only, no connection"
    ),
}
#: The engine packages that may import another engine's: (importer, imported) -> why.
ENGINE_USES = {
    ("duckdb", "sqlite"): (
        "the DuckDB engine extends SQLite's on the same file: it writes through SQLite's "
        "machinery and reads through DuckDB's sqlite scanner"
    ),
    ("duckdb", "postgres"): "DuckDB's postgres scanner reads a PostgreSQL store (store/duckdb/postgres.py)",
}
#: What store/ may import from above it: leaf modules with no feature logic.
LEAVES = {"xetrack.assets", "xetrack.errors", "xetrack.frames", "xetrack.progress", "xetrack.schema"}
#: Above store/, the modules whose SQL is on another program's database: file -> what they may hold.
FOREIGN_SQL = {
    "migrate/mlflow_store.py": {"sql", "execute"},  # MLflow's own SQLite database, the import source
    "migrate/mlflow_pg.py": {"sql", "execute"},  # MLflow's own PostgreSQL database
    "cache.py": {"sql"},  # one tag read from diskcache's own index, without loading the value
}
#: Where a Reader's private attributes may be used: its own module.
READER_MODULE = "reader.py"


# -- the resolver -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Import:
    """One module an import statement names: ``source`` imports ``target``."""

    source: str  # xetrack.ui.data
    file: str  # xetrack/ui/data.py
    line: int
    text: str  # the statement as written, on one line
    target: str  # the module it names, resolved: xetrack.store.sqlite.runs

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def module_names(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """Module name -> file for every module of the package in ``root``; an ``__init__.py``
    is the module of its package (``xetrack/store/__init__.py`` is ``xetrack.store``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def resolve(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: Container[str]) -> list[str]:
    """The modules that ``node``, in ``module``, names, without repeats.

    ``import a.b`` names ``a.b``. ``from X import n`` names the submodule ``X.n`` when
    ``known`` has it, else the module ``X`` (``n`` is a name in it). A relative ``X`` is
    taken from the package of ``module``: itself for a package's ``__init__``, else its parent.
    """
    if isinstance(node, ast.Import):
        return list(dict.fromkeys(alias.name for alias in node.names))
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        parts = package.split(".") if package else []
        if node.level - 1 >= len(parts):
            raise ImportError(f"{module}: {'.' * node.level}{base} goes above the top package")
        anchor = ".".join(parts[: len(parts) - (node.level - 1)])
        base = f"{anchor}.{base}" if base else anchor
    return list(dict.fromkeys(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names))


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_nodes(node: ast.AST, typing_only: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under ``node``, in functions and classes too, each with
    whether it is only read by type checkers (in the body of an ``if TYPE_CHECKING:``;
    its ``else:`` runs)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, typing_only
        return
    if isinstance(node, ast.If) and _type_checking(node.test):
        for child in node.body:
            yield from import_nodes(child, True)
        for child in node.orelse:
            yield from import_nodes(child, typing_only)
        return
    for child in ast.iter_child_nodes(node):
        yield from import_nodes(child, typing_only)


@dataclasses.dataclass
class Package:
    root: pathlib.Path
    files: dict[str, pathlib.Path]  # module -> file
    trees: dict[str, ast.Module]
    imports: list[Import]  # those that run
    typing_imports: list[Import]  # those under if TYPE_CHECKING:

    def file(self, module: str) -> str:
        """``xetrack/ui/data.py``: the module's file from the package's parent folder."""
        return self.files[module].relative_to(self.root.parent).as_posix()

    def edges(self, typing: bool = False) -> dict[str, dict[str, Import]]:
        """module -> module it imports, within the package -> the first such import (with
        ``typing``, type-only imports too)."""
        out: dict[str, dict[str, Import]] = defaultdict(dict)
        for imp in [*self.imports, *self.typing_imports] if typing else self.imports:
            if imp in self.typing_imports and imp.target == imp.source:
                continue  # a module that checks itself against a protocol: no circle
            if imp.target in self.files:
                out[imp.source].setdefault(imp.target, imp)
        return out


def scan(root: pathlib.Path) -> Package:
    files = module_names(root)
    trees, imports, typing_imports = {}, [], []
    for module, path in files.items():
        source = path.read_text()
        tree = trees[module] = ast.parse(source, str(path))
        where = path.relative_to(root.parent).as_posix()
        for node, typing_only in import_nodes(tree):
            text = " ".join((ast.get_source_segment(source, node) or ast.unparse(node)).split())
            for target in resolve(module, path.name == "__init__.py", node, files):
                (typing_imports if typing_only else imports).append(Import(module, where, node.lineno, text, target))
    return Package(root, files, trees, imports, typing_imports)


@functools.cache
def xetrack() -> Package:
    return scan(PACKAGE)


# -- where a module stands ----------------------------------------------------------------


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def in_store(module: str) -> bool:
    return under(module, "xetrack.store")


def engine_of(module: str) -> str | None:
    """``'sqlite'`` for ``xetrack.store.sqlite`` and every module under it; None elsewhere."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["xetrack", "store"] and parts[2] in ENGINES else None


def is_driver(module: str) -> bool:
    return module.split(".")[0] in DRIVERS


def in_package(file: str) -> str:
    """``cache.py`` for ``xetrack/cache.py``: the file as the allowlists name it."""
    return file.split("/", 1)[1]


def _report(found: list[str], what: str) -> None:
    if found:
        pytest.fail(f"{len(found)} {what}:\n" + "\n".join(f"  {f}" for f in found), pytrace=False)


# -- the rules: each returns its findings, one line each ----------------------------------


def engines_above_store(pkg: Package) -> list[str]:
    """Rule 1: imports of an engine package or a driver by a module above store/."""
    allowed = {**FOREIGN_IMPORTS, **DRIVER_TYPES}
    return [
        f"{imp}  [{imp.target}]"
        for imp in pkg.imports
        if not in_store(imp.source)
        and (engine_of(imp.target) or is_driver(imp.target))
        and not any(file == in_package(imp.file) and under(imp.target, target) for file, target in allowed)
    ]


def engines_crossed(pkg: Package) -> list[str]:
    """Rule 2: an engine package's imports of another engine's package."""
    found = []
    for imp in pkg.imports:
        mine, theirs = engine_of(imp.source), engine_of(imp.target)
        if mine and theirs and theirs != mine and (mine, theirs) not in ENGINE_USES:
            found.append(f"{imp}  [{mine} -> {theirs}]")
    return found


def above_engines(pkg: Package) -> dict[str, str]:
    """The shared modules of store/ that stand above the engine packages, each with why:
    ``store/__init__.py``, and every one that imports an engine package or such a module."""
    shared = {m for m in pkg.files if in_store(m) and engine_of(m) is None}
    above = {"xetrack.store": "store/__init__.py opens the engines"}
    for imp in pkg.imports:
        if imp.source in shared and engine_of(imp.target):
            above.setdefault(imp.source, f"it imports an engine package: {imp}")
    grew = True
    while grew:
        grew = False
        for imp in pkg.imports:
            if imp.source in shared and imp.source not in above and imp.target in above:
                above[imp.source] = f"it imports {imp.target}, above them: {imp}"
                grew = True
    return above


def engines_importing_above(pkg: Package) -> list[str]:
    """Rule 3: an engine package's imports of a shared module that stands above them."""
    above = above_engines(pkg)
    return [
        f"{imp}  [{imp.target} is above the engines: {above[imp.target]}]"
        for imp in pkg.imports
        if engine_of(imp.source) and imp.target in above
    ]


def store_importing_features(pkg: Package) -> list[str]:
    """Rule 3, the other way: store/'s imports of a module above it that is not a leaf."""
    return [
        f"{imp}  [{imp.target}]"
        for imp in pkg.imports
        if in_store(imp.source)
        and under(imp.target, "xetrack")
        and not in_store(imp.target)
        and imp.target not in LEAVES
    ]


def strongly_connected(nodes: list[str], edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's strongly connected components of the graph, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return sorted(components)


def _shortest(start: str, goal: str, edges: dict[str, dict[str, Import]], within: set[str]) -> list[str]:
    """The shortest path start -> ... -> goal inside ``within``, both ends included."""
    before = {start: start}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        if v == goal:
            path = [v]
            while path[-1] != start:
                path.append(before[path[-1]])
            return path[::-1]
        for w in sorted(edges.get(v, ())):
            if w in within and w not in before:
                before[w] = v
                queue.append(w)
    raise AssertionError(f"{goal} is not reachable from {start}")  # not in one component


def circles(pkg: Package) -> list[str]:
    """Rule 4: every import circle, found by strongly connected components.

    For each import edge inside a component, the shortest circle through it, printed as
    a path ``a -> b -> ... -> a`` and the import that makes each step; a component's
    circles together take in every one of its edges, so that each edge to cut is shown.
    """
    edges = pkg.edges(typing=True)
    found = []
    for component in strongly_connected(list(pkg.files), edges):
        if len(component) == 1 and component[0] not in edges.get(component[0], {}):
            continue
        members = set(component)
        seen: set[tuple[str, ...]] = set()
        loops = []
        for u in component:
            for v in sorted(edges.get(u, ())):
                if v not in members:
                    continue
                loop = [u, *_shortest(v, u, edges, members)] if v != u else [u, u]
                ring = loop[:-1]
                first = ring.index(min(ring))
                key = tuple(ring[first:] + ring[:first])
                if key not in seen:
                    seen.add(key)
                    loops.append([*key, key[0]])
        head = f"{len(component)} modules in one circle: " if len(component) > 1 else "a module imports itself: "
        found.append(head + ", ".join(component))
        for loop in sorted(loops, key=lambda ring: (len(ring), ring)):
            found.append("    " + " -> ".join(loop))
            found += [f"        {edges[a][b]}" for a, b in pairwise(loop)]
    return found


def long_modules(pkg: Package) -> list[str]:
    """Rule 5: modules of more than MAX_LINES lines."""
    found = []
    for module, path in pkg.files.items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            found.append(f"{pkg.file(module)}: {lines} lines")
    return found


SQL = re.compile(
    r"\bSELECT\b[^\n]*\bFROM\b|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bDELETE\s+FROM\b|\bUPDATE\s+\S+\s+SET\b|"
    r"\b(CREATE|DROP|ALTER)\s+(TEMP\s+)?(TABLE|INDEX|TRIGGER|VIEW)\b|\bPRAGMA\b|sqlite_master|\bVACUUM\b|"
    r"\bATTACH\b|\bCOPY\s+\S+\s+(FROM|TO)\b|ORDER\s+BY\s+rowid"
)
CALLS = {"execute", "executemany", "executescript"}
#: The engines' own machinery (their connection, lock, transactions): used only in store/.
INTERNALS = {
    "_live",
    "_guard",
    "_run",
    "_transact",
    "_rows",
    "_cursor",
    "_load",
    "_write",
    "_writing",
    "_open",
    "_shared_cursor",
    "_grow",
    "_record",
    "_select",
}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (they may describe SQL)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def engine_use(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, kind, what) of the SQL text (``sql``), the ``.execute()`` calls (``execute``)
    and the engine internals (``internal``) in a module, in line order."""
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if SQL.search(node.value):
                found.append((line, "sql", f"SQL text {node.value[:60]!r}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CALLS:
            found.append((line, "execute", f"a call of .{node.func.attr}()"))
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in INTERNALS
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append((line, "internal", f"an engine internal, {ast.unparse(node)}"))
    return sorted(found, key=lambda f: f[0])


def _above_store_use(pkg: Package, kinds: set[str]) -> list[str]:
    found = []
    for module, tree in pkg.trees.items():
        if in_store(module):
            continue
        file = pkg.file(module)
        allowed = FOREIGN_SQL.get(in_package(file), set())
        found += [f"{file}:{line}: {what}" for line, kind, what in engine_use(tree) if kind in kinds - allowed]
    return found


def sql_above_store(pkg: Package) -> list[str]:
    """Rule 6: SQL text and ``.execute()`` calls above store/."""
    return _above_store_use(pkg, {"sql", "execute"})


def internals_above_store(pkg: Package) -> list[str]:
    """Rule 6: an engine's private machinery used above store/."""
    return _above_store_use(pkg, {"internal"})


SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
#: The calls that return a Reader.
READER_MAKERS = {"Reader", "open_reader"}


def _own(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of one scope: the nested functions are yielded, not entered (their own scope)."""
    for child in ast.iter_child_nodes(scope):
        yield child
        if not isinstance(child, SCOPES):
            yield from _own(child)


def _names_a_reader(annotation: ast.expr | None) -> bool:
    return annotation is not None and re.search(r"\bReader\b", ast.unparse(annotation)) is not None


def _is_reader(expr: ast.expr | None, names: set[str]) -> bool:
    """Whether ``expr`` is a Reader: a name bound to one, ``self.reader``, ``Reader(...)``,
    ``open_reader(...)``, or a conditional between such."""
    if isinstance(expr, ast.Name):
        return expr.id in names
    if isinstance(expr, ast.Attribute):
        return isinstance(expr.value, ast.Name) and expr.value.id == "self" and expr.attr in ("reader", "_reader")
    if isinstance(expr, ast.Call):
        func = expr.func
        return (isinstance(func, ast.Name) and func.id in READER_MAKERS) or (
            isinstance(func, ast.Attribute) and func.attr in READER_MAKERS
        )
    if isinstance(expr, ast.IfExp):
        return _is_reader(expr.body, names) or _is_reader(expr.orelse, names)
    return False


def _reader_privates(scope: ast.AST, outer: set[str], file: str) -> list[str]:
    names = outer | {"reader"}  # how the code names a Reader
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        args = scope.args
        names |= {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs] if _names_a_reader(a.annotation)}
    nodes = list(_own(scope))
    grew = True
    while grew:  # until no binding adds a name: one = first if ... else Reader(...)
        grew = False
        for node in nodes:
            bound: list[str] = []
            if isinstance(node, ast.Assign) and _is_reader(node.value, names):
                bound = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and (_names_a_reader(node.annotation) or _is_reader(node.value, names))
            ):
                bound = [node.target.id]
            elif (
                isinstance(node, ast.withitem)
                and isinstance(node.optional_vars, ast.Name)
                and _is_reader(node.context_expr, names)
            ):
                bound = [node.optional_vars.id]
            if set(bound) - names:
                names |= set(bound)
                grew = True
    found = []
    for node in nodes:
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.endswith("__")
            and _is_reader(node.value, names)
        ):
            found.append(f"{file}:{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, SCOPES):
            found += _reader_privates(node, names, file)
    return found


def reader_privates(pkg: Package) -> list[str]:
    """Rule 6: a Reader's private attributes (``reader._engine``...) read or set outside reader.py."""
    found = []
    for module, tree in pkg.trees.items():
        file = pkg.file(module)
        if in_package(file) != READER_MODULE:
            found += _reader_privates(tree, set(), file)
    return sorted(found, key=lambda f: (f.split(":")[0], int(f.split(":")[1])))


# -- the scan, tried on small packages first ----------------------------------------------


def _write(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_resolver_names_the_imported_module(tmp_path):
    root = _write(
        tmp_path / "pkg",
        {
            "__init__.py": "from . import a\nfrom .a import thing\nfrom .sub import deep\nCONST = 1\n",
            "a.py": "import os.path\nfrom . import b as bee, CONST\nfrom .b import *\nthing = 1\n",
            "b.py": "from __future__ import annotations\nimport pkg.sub.deep.m, json\n",
            "sub/__init__.py": "from .. import a\nfrom . import other\n",
            "sub/other.py": "from .deep.m import f\n",
            "sub/deep/__init__.py": "from . import m\n",
            "sub/deep/m.py": (
                "from typing import TYPE_CHECKING\n"  # 1
                "import typing\n"  # 2
                "from ...a import thing\n"  # 3
                "from ... import a, CONST\n"  # 4
                "if TYPE_CHECKING:\n"  # 5
                "    from ...b import B\n"  # 6
                "if typing.TYPE_CHECKING:\n"  # 7
                "    import pkg.b\n"  # 8
                "else:\n"  # 9
                "    from .. import other\n"  # 10
                "class C:\n"  # 11
                "    def f(self):\n"  # 12
                "        try:\n"  # 13
                "            from .m import f\n"  # 14
                "        except ImportError:\n"  # 15
                "            from ..deep import (\n"  # 16
                "                m as mine,\n"  # 17
                "            )\n"  # 18
            ),
        },
    )
    pkg = scan(root)
    assert set(pkg.files) == {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.other", "pkg.sub.deep", "pkg.sub.deep.m"}
    assert [(i.source, i.line, i.target) for i in pkg.imports] == [
        ("pkg", 1, "pkg.a"),  # a submodule of the package's own __init__
        ("pkg", 2, "pkg.a"),  # a name in a submodule
        ("pkg", 3, "pkg.sub.deep"),  # a subpackage
        ("pkg.a", 1, "os.path"),
        ("pkg.a", 2, "pkg.b"),  # a submodule and a name in the package, on one line
        ("pkg.a", 2, "pkg"),
        ("pkg.a", 3, "pkg.b"),
        ("pkg.b", 1, "__future__"),
        ("pkg.b", 2, "pkg.sub.deep.m"),
        ("pkg.b", 2, "json"),
        ("pkg.sub", 1, "pkg.a"),  # .. from a subpackage's __init__: the package above it
        ("pkg.sub", 2, "pkg.sub.other"),
        ("pkg.sub.deep", 1, "pkg.sub.deep.m"),
        ("pkg.sub.deep.m", 1, "typing"),
        ("pkg.sub.deep.m", 2, "typing"),
        ("pkg.sub.deep.m", 3, "pkg.a"),
        ("pkg.sub.deep.m", 4, "pkg.a"),
        ("pkg.sub.deep.m", 4, "pkg"),
        ("pkg.sub.deep.m", 10, "pkg.sub.other"),  # the else of TYPE_CHECKING runs
        ("pkg.sub.deep.m", 14, "pkg.sub.deep.m"),  # in a method, in try/except: counted
        ("pkg.sub.deep.m", 16, "pkg.sub.deep.m"),
        ("pkg.sub.other", 1, "pkg.sub.deep.m"),  # a submodule's submodule
    ]
    assert [(i.source, i.line, i.target) for i in pkg.typing_imports] == [
        ("pkg.sub.deep.m", 6, "pkg.b"),  # read by type checkers alone: rule 4 counts them
        ("pkg.sub.deep.m", 8, "pkg.b"),
    ]
    assert pkg.imports[-2].text == "from ..deep import ( m as mine, )"
    assert str(pkg.imports[-2]) == "pkg/sub/deep/m.py:16: from ..deep import ( m as mine, )"
    with pytest.raises(ImportError, match="above the top package"):
        resolve("pkg.a", False, ast.parse("from .. import x").body[0], set())  # type: ignore[arg-type]


#: A small xetrack with one breach of each rule, and one import of each kind that is fine.
FAKE = {
    "__init__.py": "from .tracker import Tracker\n",
    "errors.py": "import sqlite3\nclass BusyError(sqlite3.OperationalError): pass\n",
    "schema.py": "",
    "git.py": "import subprocess\nfrom . import git\n",
    "tracker.py": (
        "from . import store, schema\n"
        "from .store.sqlite.engine import SQLiteEngine\n"
        "class Tracker:\n"
        "    def log(self, reader: 'Reader | None', engine):\n"
        "        import psycopg\n"
        "        reader._engine.execute('SELECT a FROM t')\n"
        "        with Reader('x.db') as first:\n"
        "            one = first if engine else Reader('y.db')\n"
        "            one._persist = False\n"
        "            return engine._live(), self._live(), self.reader._source, first.table\n"
    ),
    "reader.py": "class Reader:\n    def close(self, reader):\n        reader._engine = None\n",
    "logs.py": "x = 1\n" * (MAX_LINES + 1),
    "frames.py": "x = 1\n" * MAX_LINES,
    "store/__init__.py": "from .base import Engine\ndef open_engine():\n    from .sqlite.engine import SQLiteEngine\n",
    "store/base.py": "from ..errors import BusyError\nfrom ..schema import quote\n",
    "store/mirror.py": "from .sqlite import meta\n",
    "store/tables.py": "from . import mirror\n",
    "store/sqlite/__init__.py": "",
    "store/sqlite/engine.py": (
        "import sqlite3\nfrom ..base import Engine\nfrom .. import tables\nfrom .meta import DDL\n"
    ),
    "store/sqlite/meta.py": "from ... import tracker\nfrom ..postgres.sql import placeholders\nDDL = ''\n",
    "store/postgres/__init__.py": "",
    "store/postgres/sql.py": "import psycopg\nfrom .. import base\n",
    "store/duckdb/__init__.py": "",
    "store/duckdb/engine.py": "import duckdb\nfrom ..sqlite.engine import SQLiteEngine\nfrom ..postgres import sql\n",
}


@pytest.fixture
def fake(tmp_path) -> Package:
    return scan(_write(tmp_path / "xetrack", FAKE))


def test_each_rule_finds_its_breach(fake):
    assert engines_above_store(fake) == [
        "xetrack/tracker.py:2: from .store.sqlite.engine import SQLiteEngine  [xetrack.store.sqlite.engine]",
        "xetrack/tracker.py:5: import psycopg  [psycopg]",
    ]  # errors.py's sqlite3 is allowed (DRIVER_TYPES)
    assert engines_crossed(fake) == [
        "xetrack/store/sqlite/meta.py:2: from ..postgres.sql import placeholders  [sqlite -> postgres]",
    ]  # duckdb -> sqlite and duckdb -> postgres are allowed (ENGINE_USES)
    assert set(above_engines(fake)) == {"xetrack.store", "xetrack.store.mirror", "xetrack.store.tables"}
    assert engines_importing_above(fake) == [
        "xetrack/store/sqlite/engine.py:3: from .. import tables  [xetrack.store.tables is above the engines: "
        "it imports xetrack.store.mirror, above them: xetrack/store/tables.py:1: from . import mirror]",
    ]  # store/base.py imports no engine: below them
    assert store_importing_features(fake) == [
        "xetrack/store/sqlite/meta.py:1: from ... import tracker  [xetrack.tracker]",
    ]  # errors and schema are leaves
    assert long_modules(fake) == [f"xetrack/logs.py: {MAX_LINES + 1} lines"]
    assert sql_above_store(fake) == [
        "xetrack/tracker.py:6: a call of .execute()",
        "xetrack/tracker.py:6: SQL text 'SELECT a FROM t'",
    ]
    assert internals_above_store(fake) == ["xetrack/tracker.py:10: an engine internal, engine._live"]
    assert reader_privates(fake) == [
        "xetrack/tracker.py:6: reader._engine",
        "xetrack/tracker.py:9: one._persist",
        "xetrack/tracker.py:10: self.reader._source",
    ]  # reader.py may; first.table is public; self._live is the Tracker's own


def test_circles_are_printed_as_paths(fake):
    """One circle per import edge of a component: each edge to cut is shown, with its line."""
    assert circles(fake) == [
        "a module imports itself: xetrack.git",
        "    xetrack.git -> xetrack.git",
        "        xetrack/git.py:2: from . import git",
        "6 modules in one circle: xetrack.store, xetrack.store.mirror, xetrack.store.sqlite.engine, "
        "xetrack.store.sqlite.meta, xetrack.store.tables, xetrack.tracker",
        "    xetrack.store.sqlite.engine -> xetrack.store.sqlite.meta -> xetrack.tracker"
        " -> xetrack.store.sqlite.engine",
        "        xetrack/store/sqlite/engine.py:4: from .meta import DDL",
        "        xetrack/store/sqlite/meta.py:1: from ... import tracker",
        "        xetrack/tracker.py:2: from .store.sqlite.engine import SQLiteEngine",
        "    xetrack.store -> xetrack.store.sqlite.engine -> xetrack.store.sqlite.meta -> xetrack.tracker"
        " -> xetrack.store",
        "        xetrack/store/__init__.py:3: from .sqlite.engine import SQLiteEngine",
        "        xetrack/store/sqlite/engine.py:4: from .meta import DDL",
        "        xetrack/store/sqlite/meta.py:1: from ... import tracker",
        "        xetrack/tracker.py:1: from . import store, schema",
        "    xetrack.store.mirror -> xetrack.store.sqlite.meta -> xetrack.tracker -> xetrack.store.sqlite.engine"
        " -> xetrack.store.tables -> xetrack.store.mirror",
        "        xetrack/store/mirror.py:1: from .sqlite import meta",
        "        xetrack/store/sqlite/meta.py:1: from ... import tracker",
        "        xetrack/tracker.py:2: from .store.sqlite.engine import SQLiteEngine",
        "        xetrack/store/sqlite/engine.py:3: from .. import tables",
        "        xetrack/store/tables.py:1: from . import mirror",
    ]  # store/__init__ -> store.base, and base's own imports, are no circle


def test_a_type_only_import_closes_a_circle_but_a_module_checking_itself_does_not(tmp_path):
    pkg = scan(
        _write(
            tmp_path / "xetrack",
            {
                "__init__.py": "",
                "guard.py": "from . import idle\n",
                "idle.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n"
                    "    from .guard import Guard\n"
                    "    from . import idle as _this\n"
                ),
            },
        )
    )
    assert circles(pkg) == [
        "2 modules in one circle: xetrack.guard, xetrack.idle",
        "    xetrack.guard -> xetrack.idle -> xetrack.guard",
        "        xetrack/guard.py:1: from . import idle",
        "        xetrack/idle.py:3: from .guard import Guard",
    ]


def test_the_scan_sees_the_real_tree():
    """The rules below pass on nothing if the scan finds nothing: a few edges that must be there."""
    pkg = xetrack()
    assert len(pkg.files) > 50 and len(pkg.imports) > 500
    edges = pkg.edges()
    assert "xetrack.store.base" in edges["xetrack.store"]
    assert "xetrack.store.sqlite.engine" in edges["xetrack.store"]  # inside a function
    assert "xetrack.store.sqlite.engine" in edges["xetrack.store.duckdb.engine"]


def test_every_allowance_is_still_needed():
    """An allowlist entry that matches nothing any more is removed, so that the list stays short."""
    pkg = xetrack()
    stale = [
        f"{file} -> {target}"
        for file, target in {**FOREIGN_IMPORTS, **DRIVER_TYPES}
        if not any(in_package(i.file) == file and under(i.target, target) for i in pkg.imports)
    ]
    stale += [
        f"{mine} -> {theirs}"
        for mine, theirs in ENGINE_USES
        if not any(engine_of(i.source) == mine and engine_of(i.target) == theirs for i in pkg.imports)
    ]
    for module, tree in pkg.trees.items():
        file = in_package(pkg.file(module))
        if file in FOREIGN_SQL:
            kinds = {kind for _, kind, _ in engine_use(tree)}
            stale += [f"{file}: {kind}" for kind in sorted(FOREIGN_SQL[file] - kinds)]
    assert stale == [], "allowances that match nothing any more"


# -- the rules on xetrack/ ----------------------------------------------------------------


def test_no_engine_package_or_driver_above_store():
    _report(
        engines_above_store(xetrack()),
        "imports of an engine package or a driver above store/ "
        "(reach the engine through xetrack.store's shared modules)",
    )


def test_no_engine_package_imports_another():
    _report(engines_crossed(xetrack()), "imports of another engine's package by an engine package")


def test_the_engines_import_only_the_shared_modules_below_them():
    _report(
        engines_importing_above(xetrack()),
        "imports, by an engine package, of a shared module of store/ that stands above the engines",
    )


def test_the_store_imports_only_leaf_modules_from_above():
    """The layers point one way: features call the store, the store never calls a feature."""
    _report(
        store_importing_features(xetrack()),
        f"imports, in store/, of modules above it other than the leaves ({', '.join(sorted(LEAVES))})",
    )


def test_no_import_circle():
    _report(circles(xetrack()), "lines on import circles in xetrack/ (imports in functions count)")


def test_no_long_module():
    _report(long_modules(xetrack()), f"modules longer than {MAX_LINES} lines")


def test_no_engine_sql_above_store():
    _report(sql_above_store(xetrack()), "SQL texts and .execute() calls above store/; move them into xetrack/store/")


def test_no_engine_internals_above_store():
    _report(internals_above_store(xetrack()), "uses of an engine's private machinery above store/")


def test_no_reader_private_outside_reader():
    _report(reader_privates(xetrack()), "uses of a Reader's private attributes outside xetrack/reader.py")
