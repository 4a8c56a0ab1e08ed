"""MLflow's ``filter_string`` and ``order_by`` for ``search_runs``, read and turned into
xetrack's search conditions (:mod:`xetrack.filters`, run by ``Reader.search``).

MLflow's grammar is clauses joined by ``AND``, each ``<entity>.<key> <comparator> <value>``:

- ``metrics.<key>`` with ``= != < <= > >=`` and a number;
- ``params.<key>`` and ``tags.<key>`` with ``= != LIKE ILIKE IN NOT IN`` and quoted text;
- ``attributes.<name>`` (or the bare name): ``run_id``, ``run_name``, ``status``,
  ``start_time``, ``end_time``.

A key with other characters is quoted: ``metrics.`eval/loss` < 0.5``. Anything else (``OR``,
parentheses, ``IS NULL``, datasets) is refused, naming ``Reader.search`` which has them.

>>> [c.text() for c in parse_filter("metrics.acc > 0.9 and params.lr = '0.1'")]
['metrics.acc > 0.9', "params.lr = '0.1'"]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .entities import ms_to_stamp

_ENTITIES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
#: MLflow's run attributes -> the runs summary's columns.
ATTRIBUTES = {
    "run_id": "track_id",
    "run_name": "run_name",
    "status": "status",
    "start_time": "start",
    "end_time": "end",
}
#: MLflow's status names -> xetrack's statuses they cover.
STATUSES = {
    "RUNNING": ("running",),
    "SCHEDULED": (),
    "FINISHED": ("finished",),
    "FAILED": ("failed", "dead"),
    "KILLED": ("killed", "pruned"),
}
_TEXT_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
_TOKEN = re.compile(
    r"""\s*(?:
    (?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w.]))
  | (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<op><=|>=|!=|<>|==|=|<|>|\(|\)|,)
  | (?P<word>[A-Za-z_][\w]*(?:\.(?:`[^`]+`|"[^"]+"|[^\s=!<>(),'"`]+))?)
    )""",
    re.VERBOSE,
)
_HINT = "xetrack.Reader(db, table=...).search(where) takes OR, parentheses and IS NULL (docs/runs.md)"


class FilterError(ValueError):
    """A filter_string or order_by outside MLflow's grammar (as xetrack.mlflow reads it)."""


class Missing(LookupError):
    """A clause names a metric, param or tag the table does not have: it matches no run there."""


@dataclass
class Clause:
    entity: str  # metrics, params, tags, attributes
    key: str
    op: str  # = != < <= > >= LIKE ILIKE IN NOT IN
    value: Any  # a number, a str, or a tuple of them (IN)

    def text(self) -> str:
        value = (
            "(" + ", ".join(map(_literal, self.value)) + ")" if isinstance(self.value, tuple) else _literal(self.value)
        )
        return f"{self.entity}.{self.key} {self.op} {value}"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos, text = 0, text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FilterError(f"Cannot read the filter at {text[pos : pos + 20]!r} (position {pos})")
        pos = m.end()
        kind = m.lastgroup
        value = m.group(kind or "")
        if kind == "num":
            out.append(("lit", float(value) if re.search(r"[.eE]", value) else int(value)))
        elif kind == "str":
            out.append(("lit", value[1:-1].replace(value[0] * 2, value[0])))
        elif kind == "op":
            out.append(("op", {"==": "=", "<>": "!="}.get(value, value)))
        else:
            out.append(("word", value))
    return out


def identifier(word: str) -> tuple[str, str]:
    """``metrics.`eval/loss``` -> ``('metrics', 'eval/loss')``; a bare attribute name ->
    ``('attributes', name)``."""
    if "." not in word:
        if word.lower() in ATTRIBUTES:
            return "attributes", word.lower()
        raise FilterError(f"Unknown name {word!r}: use metrics.<key>, params.<key>, tags.<key> or attributes.<name>")
    prefix, key = word.split(".", 1)
    entity = _ENTITIES.get(prefix.lower())
    if entity is None:
        what = "datasets are not kept by xetrack" if prefix.lower().startswith("dataset") else "unknown prefix"
        raise FilterError(f"Cannot search by {word!r} ({what}): use metrics., params., tags. or attributes.")
    if key[:1] in '`"' and key[-1:] == key[:1] and len(key) > 1:
        key = key[1:-1]
    if not key:
        raise FilterError(f"{word!r} names no key")
    if entity == "attributes":
        if key.lower() not in ATTRIBUTES:
            raise FilterError(f"Cannot search by attribute {key!r}: the attributes are {', '.join(ATTRIBUTES)}")
        key = key.lower()
    return entity, key


def parse_filter(text: Any) -> list[Clause]:
    """MLflow's ``filter_string`` as clauses (all of which a run must match)."""
    if text is None:
        return []
    if not isinstance(text, str):
        raise TypeError(f"filter_string must be a str, got {type(text).__name__}")
    toks, i = _tokens(text), 0
    clauses: list[Clause] = []

    def take(kind: str, value: str | None = None) -> Any:
        nonlocal i
        tok = toks[i] if i < len(toks) else None
        if tok is None or tok[0] != kind or (value is not None and str(tok[1]).upper() != value):
            return None
        i += 1
        return tok[1]

    while i < len(toks):
        if clauses and take("word", "AND") is None:
            tok = toks[i][1]
            if str(tok).upper() == "OR" or tok in ("(", ")"):
                raise FilterError(f"MLflow's filter joins clauses with AND only, got {tok!r}: {_HINT}")
            raise FilterError(f"Expected AND between clauses, got {tok!r}")
        if take("op", "(") is not None:
            raise FilterError(f"Parentheses are not in MLflow's filter grammar: {_HINT}")
        word = take("word")
        if word is None:
            raise FilterError(f"Expected metrics.<key>, params.<key>, tags.<key> or an attribute, got {_at(toks, i)!r}")
        entity, key = identifier(word)
        op = take("op")
        if op is None:
            op = _word_op(take, toks, i)
        value: Any
        if op in ("IN", "NOT IN"):
            if take("op", "(") is None:
                raise FilterError(f"{op} takes a list in parentheses, got {_at(toks, i)!r}")
            items = [take("lit")]
            while take("op", ",") is not None:
                items.append(take("lit"))
            if None in items or take("op", ")") is None:
                raise FilterError(f"Cannot read the list after {op}: write ('a', 'b')")
            value = tuple(items)
        else:
            value = take("lit")
            if value is None:
                raise FilterError(f"Expected a value after {word} {op}, got {_at(toks, i)!r}")
        clauses.append(_checked(Clause(entity, key, op, value)))
    return clauses


def _at(toks: list[tuple[str, Any]], i: int) -> Any:
    return toks[i][1] if i < len(toks) else "the end"


def _word_op(take: Callable[..., Any], toks: list[tuple[str, Any]], i: int) -> str:
    for op in ("LIKE", "ILIKE", "IN"):
        if take("word", op) is not None:
            return op
    if take("word", "NOT") is not None and take("word", "IN") is not None:
        return "NOT IN"
    if str(_at(toks, i)).upper() == "IS":
        raise FilterError(f"IS NULL is not in MLflow's filter grammar: {_HINT}")
    raise FilterError(f"Expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN), got {_at(toks, i)!r}")


def _checked(clause: Clause) -> Clause:
    entity, op, value = clause.entity, clause.op, clause.value
    name = f"{entity}.{clause.key}"
    numeric = entity == "metrics" or (entity == "attributes" and clause.key in ("start_time", "end_time"))
    ops = _NUMBER_OPS if numeric else _TEXT_OPS
    if op not in ops:
        raise FilterError(f"{name} takes {', '.join(ops)}, not {op}")
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if numeric and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise FilterError(f"{name} is compared with a number, got {v!r}")
        if not numeric and not isinstance(v, str):
            raise FilterError(f"{name} is compared with quoted text, got {v!r}: write '{v}'")
    if entity == "attributes" and clause.key == "status":
        unknown = [v for v in values if v.upper() not in STATUSES]
        if unknown or op in ("LIKE", "ILIKE"):
            raise FilterError(
                f"attributes.status takes =, !=, IN, NOT IN and {', '.join(STATUSES)}, got {op} {value!r}"
            )
    return clause


# ------------------------------------------------------------- for one table
def condition(clauses: list[Clause], column: Callable[[str, str], str | None], types: dict[str, str]) -> str | None:
    """The clauses as a ``Reader.search`` condition over one table's runs summary.

    ``column(entity, key)``: the summary column a metric, param or tag is in (None when the
    table has none: :class:`Missing`); ``types``: summary column -> logical type, so that a
    param kept as a number (``lr`` = 0.1) matches MLflow's text (``params.lr = '0.1'``).
    """
    parts = [_clause_sql(c, column, types) for c in clauses]
    return " AND ".join(parts) if parts else None


def _clause_sql(c: Clause, column: Callable[[str, str], str | None], types: dict[str, str]) -> str:
    if c.entity == "tags" and c.key == "mlflow.runName":
        c = Clause("attributes", "run_name", c.op, c.value)
    if c.entity == "attributes":
        name = ATTRIBUTES[c.key]
        if name == "run_name" and column("attributes", "run_name") is None:
            raise Missing("run_name")
        if c.key == "status":
            values = c.value if isinstance(c.value, tuple) else (c.value,)
            wanted = tuple(s for v in values for s in STATUSES[v.upper()]) or ("scheduled",)
            op = "NOT IN" if c.op in ("!=", "NOT IN") else "IN"
            return f"status {op} ({', '.join(map(_literal, wanted))})"
        if c.key in ("start_time", "end_time"):
            return f'"{name}" {c.op} {_literal(ms_to_stamp(c.value))}'
        return _compare(f'"{name}"', c.op, c.value, "TEXT")
    found = column(c.entity, c.key)
    if found is None:
        raise Missing(f"{c.entity}.{c.key}")
    if c.entity == "tags":
        return _compare("tags.`" + found + "`", c.op, c.value, "TEXT")
    return _compare('"' + found.replace('"', '""') + '"', c.op, c.value, types.get(found, "TEXT"))


def _compare(name: str, op: str, value: Any, kind: str) -> str:
    """``name op value``; text compared with a numeric or boolean column is read as one."""
    if op in ("LIKE", "ILIKE"):  # SQLite's LIKE ignores ASCII case, as ILIKE does
        return f"{name} LIKE {_literal(value)}"
    if isinstance(value, tuple):
        return f"{name} {op} ({', '.join(_literal(_typed(v, kind)) for v in value)})"
    return f"{name} {op} {_literal(_typed(value, kind))}"


def _typed(value: Any, kind: str) -> Any:
    if not isinstance(value, str):
        return value
    kind = kind.upper()
    if kind == "BOOLEAN" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind in ("INTEGER", "REAL", "NUMERIC", "FLOAT", "DOUBLE", "INT", "BIGINT"):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and re.fullmatch(r"[+-]?\d+", value.strip()) else number
    return value


# ----------------------------------------------------------------- order_by
def parse_order(order_by: Any) -> list[tuple[str, bool]]:
    """MLflow's ``order_by`` (``["metrics.acc DESC", "params.lr"]``) -> (the search frame's
    column, ascending) pairs."""
    if order_by is None:
        return []
    if isinstance(order_by, str):
        order_by = [order_by]
    out = []
    for item in order_by:
        if not isinstance(item, str) or not item.strip():
            raise FilterError(f"order_by items are 'metrics.<key> [ASC|DESC]' strings, got {item!r}")
        words = _tokens(item)
        direction = "ASC"
        if len(words) == 2 and str(words[1][1]).upper() in ("ASC", "DESC"):
            direction = str(words[1][1]).upper()
        elif len(words) != 1 or words[0][0] != "word":
            raise FilterError(f"Cannot read order_by item {item!r}: write 'metrics.acc DESC' or 'params.lr'")
        entity, key = identifier(words[0][1])
        if entity == "attributes":
            name = "tags.mlflow.runName" if key == "run_name" else key
        else:
            name = f"{entity}.{key}"
        out.append((name, direction == "ASC"))
    return out


__all__ = ["FilterError", "Missing", "Clause", "parse_filter", "condition", "parse_order", "identifier", "ATTRIBUTES"]
