"""The search grammar: a SQL-like condition parsed into safe SQL, never pasted in.

``accuracy > 0.9 AND model = 'rf'`` and MLflow's ``metrics.accuracy > 0.9 and
params.model = 'rf'`` become SQL over the runs summary (``tags.team`` names the
``tags.team`` column of a run's tags; a key with dots is written ``tags.`mlflow.runName```). Names
are checked against its columns (a typo gets the close matches), and every literal
is a bound parameter:

    expr := and (OR and)*      and := not (AND not)*
    not  := NOT not | '(' expr ')' | name op literal | name [NOT] LIKE str
          | name [NOT] IN '(' literal, ... ')' | name IS [NOT] NULL
    op   := = == != <> < <= > >=

A condition is at most MAX_LENGTH characters, MAX_COMPARISONS comparisons and
MAX_NESTING levels of parentheses and NOT deep (what SQLite's parser takes); past them
it is a :class:`FilterError` saying which.

>>> parse_condition("metrics.accuracy > 0.9 and params.model = 'rf'", ["accuracy", "model"])
('("accuracy" > ? AND "model" = ?)', [0.9, 'rf'])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .errors import ColumnNotFoundError
from .schema import quote
from .store.base import close_matches


def resolve_column(name: Any, columns: Sequence[str], where: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"Column names are str, got {name!r}")
    lowered = {c.lower(): c for c in columns}
    if name.lower() in lowered:
        return lowered[name.lower()]
    raise ColumnNotFoundError(
        f"Column {name!r} not found in {where}.{close_matches(name, list(columns))} Columns: {', '.join(columns)}"
    )


def resolve_tag(key: str, columns: Sequence[str]) -> str:
    """``tags.<key>``: the run's tag column; a file without that tag: the plain column
    ``key`` (0.7.0 read every prefix as a plain column)."""
    lowered = {c.lower(): c for c in columns}
    if ("tags." + key).lower() in lowered:
        return lowered[("tags." + key).lower()]
    if key.lower() in lowered:
        return lowered[key.lower()]
    return resolve_column("tags." + key, columns, "the runs summary")


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z_]))
  | (?P<str>'(?:[^']|'')*')
  | (?P<qid>"(?:[^"]|"")+"|`[^`]+`)
  | (?P<op><=|>=|!=|<>|==|=|<|>|\(|\)|,)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`|"(?:[^"]|"")+"))?)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "NOT", "LIKE", "IN", "IS", "NULL", "TRUE", "FALSE"}
_PREFIXES = {"metrics", "metric", "params", "param", "tags", "tag", "attributes", "attribute", "attr", "run"}
_TAG_PREFIXES = {"tags", "tag"}
_COMPARE = {"=", "==", "!=", "<>", "<", "<=", ">", ">="}


#: Limits that keep a condition within what the engines parse (SQLite's parser stack
#: and expression depth) and the parser within Python's recursion limit.
MAX_LENGTH = 10_000
MAX_NESTING = 15
MAX_COMPARISONS = 500
_OR, _AND, _NOT, _ATOM = range(4)  # how tightly a part of the SQL binds


class FilterError(ValueError):
    """A search condition outside the grammar."""


def _wrap(part: tuple[str, int], binding: int) -> str:
    """``part``'s SQL inside an operator that binds as tightly as ``binding``."""
    sql, own = part
    return sql if own >= binding else f"({sql})"


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FilterError(f"Cannot read the condition at {text[pos : pos + 20]!r} (position {pos})")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None  # every alternative of _TOKEN is a named group
        value = m.group(kind)
        if kind == "num":
            out.append(("lit", float(value) if re.search(r"[.eE]", value) else int(value)))
        elif kind == "str":
            out.append(("lit", value[1:-1].replace("''", "'")))
        elif kind == "qid":
            out.append(("col", _unquote(value)))
        elif kind == "op":
            out.append(("op", value))
        else:
            if value.upper() in _KEYWORDS:
                out.append(("kw", value.upper()))
            elif "." in value:
                prefix, rest = value.split(".", 1)
                if prefix.lower() not in _PREFIXES:
                    raise FilterError(
                        f"Unknown prefix {prefix!r} in {value!r}: use metrics., params., tags. or a plain column name"
                    )
                # a tag is a column of its own (``tags.<key>``); the other prefixes name plain columns
                out.append(("tag" if prefix.lower() in _TAG_PREFIXES else "col", _unquote(rest)))
            else:
                out.append(("col", value))
    return out


def _unquote(text: str) -> str:
    if text[:1] == "`":
        return text[1:-1]
    if text[:1] == '"':
        return text[1:-1].replace('""', '"')
    return text


class _Parser:
    """expr := and (OR and)*; and := not (AND not)*; not := NOT not | '(' expr ')' | cmp;
    cmp := operand (op operand | [NOT] LIKE operand | [NOT] IN '(' lit, ... ')' | IS [NOT] NULL).

    Each rule returns (SQL, how tightly it binds: _OR < _AND < _NOT < _ATOM); SQL's
    precedence is the grammar's, so parentheses go only where a looser part sits inside
    a tighter one: SQLite's parser has a small stack, and every parenthesis takes from it.
    ``depth`` counts the groups and NOTs being read, refused past MAX_NESTING as it descends."""

    def __init__(self, tokens: list[tuple[str, Any]], columns: Sequence[str]) -> None:
        self.toks = tokens
        self.i = 0
        self.columns = columns
        self.binds: list[Any] = []
        self.depth = 0
        self.comparisons = 0

    def peek(self, offset: int = 0) -> tuple[str, Any] | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self, kind: str, value: Any = None) -> bool:
        tok = self.peek()
        if tok is not None and tok[0] == kind and (value is None or tok[1] == value):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, value: Any, what: str) -> None:
        if not self.take(kind, value):
            tok = self.peek()
            raise FilterError(f"Expected {what}, got {tok[1] if tok else 'the end'!r}")

    def parse(self) -> str:
        if not self.toks:
            raise FilterError("Empty condition")
        sql, binding = self.expr()
        if self.peek() is not None:
            raise FilterError(f"Unexpected {self.peek()[1]!r} after a complete condition")  # type: ignore[index]
        return sql if binding == _ATOM else f"({sql})"

    def expr(self) -> tuple[str, int]:
        parts = [self.conj()]
        while self.take("kw", "OR"):
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else (" OR ".join(sql for sql, _ in parts), _OR)

    def conj(self) -> tuple[str, int]:
        parts = [self.neg()]
        while self.take("kw", "AND"):
            parts.append(self.neg())
        if len(parts) == 1:
            return parts[0]
        return " AND ".join(_wrap(part, _AND) for part in parts), _AND

    def neg(self) -> tuple[str, int]:
        if self.peek() not in (("kw", "NOT"), ("op", "(")):
            return self.comparison(), _ATOM
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise FilterError(
                f"The condition nests deeper than {MAX_NESTING} levels of parentheses and NOT: write it flatter"
            )
        try:
            if self.take("kw", "NOT"):
                return f"NOT {_wrap(self.neg(), _NOT)}", _NOT
            self.i += 1  # the '('
            inner = self.expr()
            self.expect("op", ")", "')'")
            return inner
        finally:
            self.depth -= 1

    def operand(self) -> str:
        tok = self.peek()
        if tok is None:
            raise FilterError("The condition ends where a column or a value was expected")
        self.i += 1
        kind, value = tok
        if kind == "col":
            return quote(resolve_column(value, self.columns, "the runs summary"))
        if kind == "tag":
            return quote(resolve_tag(value, self.columns))
        if kind == "lit":
            self.binds.append(value)
            return "?"
        if kind == "kw" and value in ("TRUE", "FALSE"):
            self.binds.append(value == "TRUE")
            return "?"
        raise FilterError(f"Expected a column or a value, got {value!r}")

    def literal(self) -> str:
        tok = self.peek()
        if tok is not None and tok[0] == "kw" and tok[1] in ("TRUE", "FALSE"):  # a bool param's values
            self.i += 1
            self.binds.append(tok[1] == "TRUE")
            return "?"
        if tok is None or tok[0] != "lit":
            raise FilterError(f"IN takes a list of values, got {tok[1] if tok else 'the end'!r}")
        self.i += 1
        self.binds.append(tok[1])
        return "?"

    def comparison(self) -> str:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise FilterError(
                f"The condition has more than {MAX_COMPARISONS} comparisons: use IN (...) for many values"
            )
        left = self.operand()
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in _COMPARE:
            self.i += 1
            op = {"==": "=", "<>": "!="}.get(tok[1], tok[1])
            return f"{left} {op} {self.operand()}"
        if self.take("kw", "IS"):
            negated = self.take("kw", "NOT")
            self.expect("kw", "NULL", "NULL after IS")
            return f"{left} IS {'NOT ' if negated else ''}NULL"
        negated = self.take("kw", "NOT")
        if self.take("kw", "LIKE"):
            return f"{left} {'NOT ' if negated else ''}LIKE {self.operand()}"
        if self.take("kw", "IN"):
            self.expect("op", "(", "'(' after IN")
            items = [self.literal()]
            while self.take("op", ","):
                items.append(self.literal())
            self.expect("op", ")", "')' closing IN")
            return f"{left} {'NOT ' if negated else ''}IN ({', '.join(items)})"
        raise FilterError(
            f"Expected a comparison (=, !=, <, <=, >, >=, LIKE, IN, IS NULL), got {tok[1] if tok else 'the end'!r}"
        )


def parse_condition(text: str, columns: Sequence[str]) -> tuple[str, list[Any]]:
    """A SQL or MLflow-style condition -> (SQL with quoted, checked names, bound values).

    >>> parse_condition("metrics.acc > 0.9 and params.model = 'rf'", ["acc", "model"])
    ('("acc" > ? AND "model" = ?)', [0.9, 'rf'])
    """
    if not isinstance(text, str):
        raise TypeError(f"where must be a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FilterError(f"The condition is {len(text)} characters long; the most is {MAX_LENGTH}")
    parser = _Parser(_tokens(text), columns)
    return parser.parse(), parser.binds


def order_sql(order_by: Any, columns: Sequence[str]) -> str:
    """``'acc DESC, loss'`` or ``['-acc', 'loss ASC']`` -> ORDER BY terms, NULLs last."""
    items = order_by.split(",") if isinstance(order_by, str) else list(order_by)
    terms = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"order_by items are column names, got {item!r}")
        words = item.split()
        direction = "ASC"
        if len(words) == 2 and words[1].upper() in ("ASC", "DESC"):
            direction = words[1].upper()
        elif len(words) != 1:
            raise ValueError(f"Cannot read order_by item {item!r}: use 'column', 'column DESC' or '-column'")
        name = words[0]
        if name.startswith("-"):
            name, direction = name[1:], "DESC"
        elif name.startswith("+"):
            name = name[1:]
        if "." in name and name.split(".", 1)[0].lower() in _TAG_PREFIXES:
            col = quote(resolve_tag(_unquote(name.split(".", 1)[1]), columns))
            terms.append(f"{col} IS NULL, {col} {direction}")
            continue
        if "." in name and name.split(".", 1)[0].lower() in _PREFIXES:
            name = name.split(".", 1)[1]
        col = quote(resolve_column(_unquote(name), columns, "the runs summary"))
        terms.append(f"{col} IS NULL, {col} {direction}")
    return ", ".join(terms)
