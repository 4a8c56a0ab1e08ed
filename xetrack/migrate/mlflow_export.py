"""``export_mlflow(db, dest)``: a xetrack file as an MLflow file store (an ``mlruns/`` folder)
that MLflow reads with ``search_runs``, ``get_metric_history`` and artifact downloads.

- a table is an experiment, named by the MLflow name an import kept in its description
  (else the table name), its note the rest of the description;
- a run is a run (its track_id the run id when MLflow accepts it as one), ``run_name``
  its name; params, tags and artifacts as they are;
- every non-NULL value of a metric column is a point with the row's ``step`` (else
  ``epoch``, else the row's position in the run) and the row's timestamp;
- which columns are params and which metrics: as recorded, else as ``runs()`` guesses;
  keys keep the names an import read them by (``train/loss``);
- registry versions an import made go back to ``models/`` with their aliases, tags,
  stage, status, source and creation time, as MLflow's version numbers when they can.
  The import keeps each version's record in the registry, never as an artifact of the
  run; a file imported by a build before 0.8.0 holds them as ``mlflow-registry/<model>/version-N.json``
  entries of the run too, and those are not written as artifacts (:func:`legacy_record`).

Runs already in DEST are left as they are: exporting again adds only new runs.

>>> export_mlflow("exp.db", "mlruns")  # doctest: +SKIP
ExportResult(experiments=2, runs=12, skipped=0, points=3000, artifacts=30, models=2)
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..run_columns import STEP_COLUMNS
from ..schema import TIMESTAMP, TRACK_ID
from .mlflow_import import DESCRIPTION_HEAD, REGISTRY_FOLDER, version_records
from .mlflow_store import NOTE_TAG, RUN_NAME_TAG, read_yaml

STATUS = {"running": 1, "finished": 3, "failed": 4, "killed": 5, "pruned": 5, "dead": 5}
_RUN_ID = re.compile(r"[a-zA-Z0-9][\w\-]{0,255}\Z")
_LEGACY = re.compile(re.escape(REGISTRY_FOLDER) + r"/[^/]+/version-\d+\.json\Z")
#: Rows of a run read per query.
_PAGE = 50_000


@dataclass
class ExportResult:
    experiments: int = 0
    runs: int = 0
    skipped: int = 0  # runs DEST already had
    points: int = 0
    artifacts: int = 0
    models: int = 0


def stamp_to_ms(text: Any) -> int | None:
    """The wide table's local ``YYYY-MM-DD HH:MM:SS.ffffff`` as ms since the epoch."""
    if not isinstance(text, str) or len(text) < 19:
        return None
    base, _, fraction = text.partition(".")
    try:
        seconds = time.mktime(time.strptime(base, "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        return None
    micros = int((fraction + "000000")[:6]) if fraction.isdigit() else 0
    return int(seconds) * 1000 + micros // 1000


def _yaml(data: dict[str, Any]) -> str:
    """Flat YAML: every string JSON-quoted (a valid YAML double-quoted scalar)."""
    lines = []
    for key, value in data.items():
        if isinstance(value, list) and not value:
            lines.append(f"{key}: []")
        elif isinstance(value, dict):
            lines.append(f"{key}:" + ("" if value else " {}"))
            lines += [f"  {json.dumps(str(k))}: {_scalar(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _safe_key(key: str) -> bool:
    """A key MLflow's file store can keep as a file path under its folder."""
    parts = key.split("/")
    return bool(key) and not key.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _run_id(track_id: str) -> str:
    return track_id if _RUN_ID.match(track_id) else uuid.uuid5(uuid.NAMESPACE_URL, "xetrack:" + track_id).hex


def export_mlflow(
    db: str | os.PathLike[str], dest: str | os.PathLike[str], *, tables: list[str] | None = None
) -> ExportResult:
    """Write the runs of ``db`` (every table, or ``tables``) as an MLflow file store at ``dest``.

    >>> from xetrack import export_mlflow
    >>> export_mlflow("exp.db", "mlruns").runs  # doctest: +SKIP
    12
    """
    from ..reader import Reader
    from ..store import is_url

    if is_url(db):  # a PostgreSQL store: exported from a SQLite snapshot of it (xetrack.copy)
        import tempfile

        from ..copy import copy

        with tempfile.TemporaryDirectory(prefix="xetrack-export-") as folder:
            snapshot = os.path.join(folder, "snapshot.db")
            copy(db, snapshot, tables=tables)
            return export_mlflow(snapshot, dest, tables=tables)
    root = os.path.abspath(os.fspath(dest))
    if os.path.exists(root) and not os.path.isdir(root):
        raise NotADirectoryError(f"{root!r} is a file; export_mlflow writes an mlruns/ folder")
    os.makedirs(root, exist_ok=True)
    existing = _experiments(root)
    if "0" not in existing.values():
        _new_experiment(root, "0", "Default", None)
        existing["Default"] = "0"
    result = ExportResult()
    with Reader(db) as first:
        names = list(first.store.tables()) if tables is None else list(tables)
        from .. import meta

        described = meta.descriptions(first.store)
        version_of = version_records(first.store)
    registry_runs: dict[str, str] = {}
    for table in names:
        text = described.get(table) or ""
        mlflow_name, note = table, text or None
        if text.startswith(DESCRIPTION_HEAD):
            head, _, rest = text.partition("\n")
            mlflow_name, note = head[len(DESCRIPTION_HEAD) :], rest or None
        exp_id = existing.get(mlflow_name)
        if exp_id is None:
            exp_id = str(max((int(i) for i in existing.values() if i.isdigit()), default=0) + 1)
            _new_experiment(root, exp_id, mlflow_name, note)
            existing[mlflow_name] = exp_id
        result.experiments += 1
        with Reader(db, table=table) as reader:
            _export_table(reader, os.path.join(root, exp_id), exp_id, result, registry_runs, version_of)
    with Reader(db) as reader:
        _export_models(reader, root, registry_runs, result, version_of)
    return result


def _run_values(engine: Any, table: str, track_id: Any, columns: list[str]) -> list[tuple[Any, ...]]:
    """The run's rows, oldest first, as tuples of ``columns`` (read a page at a time
    through the engine's cursor over the run's rows)."""
    out: list[tuple[Any, ...]] = []
    after = -(2**63)  # before any rowid
    while True:
        names, rows, _, _ = engine.run_rows(table, track_id, after, 0, _PAGE)
        at = [names.index(c) + 1 for c in columns]  # each row starts with its cursor
        out += [tuple(r[j] for j in at) for r in rows]
        if len(rows) < _PAGE:
            return out
        after = rows[-1][0]


def _experiments(root: str) -> dict[str, str]:
    out = {}
    for name in os.listdir(root):
        path = os.path.join(root, name, "meta.yaml")
        if os.path.isfile(path):
            meta = read_yaml(path)
            out[str(meta.get("name"))] = str(meta.get("experiment_id", name))
    return out


def _new_experiment(root: str, exp_id: str, name: str, note: str | None) -> None:
    now = int(time.time() * 1000)
    folder = os.path.join(root, exp_id)
    _write(
        os.path.join(folder, "meta.yaml"),
        _yaml(
            {
                "artifact_location": "file://" + folder,
                "creation_time": now,
                "experiment_id": exp_id,
                "last_update_time": now,
                "lifecycle_stage": "active",
                "name": name,
            }
        ),
    )
    if note:
        _write(os.path.join(folder, "tags", NOTE_TAG), note)


def legacy_record(name: str, key: str, records: dict[str, dict[str, Any]]) -> bool:
    """Whether the artifact entry ``name`` is where the import of builds before 0.8.0 kept a registry
    version's record: ``mlflow-registry/<model>/version-N.json`` whose bytes are the record
    of a registered version. Not an MLflow artifact; a file of another content at such a
    path is one, and is exported."""
    return key in records and bool(_LEGACY.match(name))


def _export_table(
    reader: Any,
    folder: str,
    exp_id: str,
    result: ExportResult,
    registry_runs: dict[str, str],
    version_of: dict[str, dict[str, Any]],
) -> None:
    from .. import meta
    from ..artifacts import Found, chunks, listing, write_verified
    from ..runs import run_records
    from ..store import features

    if TRACK_ID not in reader.columns:
        return  # a table some other tool wrote: no runs to export
    params, metrics, cols = reader.classify()
    engine, table = reader.store, reader.table_name
    keys = {c: (key or c) for c, (_, key) in meta.recorded_keys(engine, table).items()}
    step_col = next((c for c in STEP_COLUMNS if c in cols), None)
    metrics = [m for m in metrics if m != step_col and cols[m].upper() in ("INTEGER", "REAL", "NUMERIC", "FLOAT", "")]
    records = run_records(engine, table)
    names = meta.run_names(engine, table)
    select = [TIMESTAMP] + ([step_col] if step_col else []) + params + metrics
    run_sql = features(engine).run_sql  # a SQLite file: Reader(db) reads one
    track_ids = run_sql.run_ids(engine, table) if run_sql is not None else []
    for track_id in track_ids:
        run_id = _run_id(str(track_id))
        registry_runs[str(track_id)] = run_id
        run_dir = os.path.join(folder, run_id)
        if os.path.isfile(os.path.join(run_dir, "meta.yaml")):
            result.skipped += 1
            continue
        rows = _run_values(engine, table, track_id, select)
        part = run_dir + ".partial"  # written aside, renamed into place once complete
        _clear(part)
        offset = 1 + (1 if step_col else 0)
        for j, p in enumerate(params):
            value = next((r[offset + j] for r in rows if r[offset + j] is not None), None)
            if value is not None and _safe_key(keys.get(p, p)):
                _write(os.path.join(part, "params", keys.get(p, p)), _param_text(value))
        for j, m in enumerate(metrics):
            lines = []
            for i, r in enumerate(rows):
                value = r[offset + len(params) + j]
                if value is None or isinstance(value, (str, bytes)):
                    continue
                step = r[1] if step_col and isinstance(r[1], (int, float)) else i
                lines.append(f"{stamp_to_ms(r[0]) or 0} {_number(value)} {int(step)}\n")
            if lines and _safe_key(keys.get(m, m)):
                _write(os.path.join(part, "metrics", keys.get(m, m)), "".join(lines))
                result.points += len(lines)
        tags = meta.get_tags(engine, table, str(track_id))
        name = names.get(str(track_id)) or tags.get(RUN_NAME_TAG)
        if name:
            tags.setdefault(RUN_NAME_TAG, name)
        if run_id != track_id:
            tags.setdefault("xetrack.track_id", str(track_id))
        for key, value in tags.items():
            if _safe_key(key):
                _write(os.path.join(part, "tags", key), value)
        for sub in ("metrics", "params", "tags", "artifacts"):  # MLflow finds a run by these four
            os.makedirs(os.path.join(part, sub), exist_ok=True)
        arts = listing(engine, table, str(track_id))
        latest = dict(zip(arts["name"], arts["hash"]))  # MLflow has no steps: a name's latest step
        for art, key in latest.items():
            if legacy_record(art, key, version_of) or not _safe_key(art):
                continue
            write_verified(chunks(engine, Found(key, f"Artifact {art!r}")), os.path.join(part, "artifacts", art))
            result.artifacts += 1
        status, start, end = records.get(str(track_id), (None, None, None))
        first = stamp_to_ms(rows[0][0]) if rows else None
        last = stamp_to_ms(rows[-1][0]) if rows else None
        _write(
            os.path.join(part, "meta.yaml"),
            _yaml(
                {
                    "artifact_uri": "file://" + os.path.join(run_dir, "artifacts"),
                    "end_time": stamp_to_ms(end) if end else last,
                    "entry_point_name": "",
                    "experiment_id": exp_id,
                    "lifecycle_stage": "active",
                    "run_id": run_id,
                    "run_name": name or "",
                    "source_name": "",
                    "source_type": 4,
                    "source_version": "",
                    "start_time": stamp_to_ms(start) if start else first,
                    "status": STATUS.get(status or "finished", 3),
                    "tags": [],
                    "user_id": tags.get("mlflow.user", ""),
                }
            ),
        )
        os.replace(part, run_dir)
        result.runs += 1


def _clear(path: str) -> None:
    import shutil

    if os.path.isdir(path):
        shutil.rmtree(path)


def _param_text(value: Any) -> str:
    return repr(value) if isinstance(value, float) and not math.isfinite(value) else str(value)


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    return repr(float(value)) if isinstance(value, float) else str(value)


def _export_models(
    reader: Any, root: str, registry_runs: dict[str, str], result: ExportResult, records: dict[str, dict[str, Any]]
) -> None:
    """Every registry version goes to ``models/``; one an import made (its bytes are a
    version record) with what MLflow had: source, stage, status, creation time, tags, and
    the model's description and tags. Versions keep MLflow's numbers when every version of
    the name is a record of a distinct one, else the registry's."""
    from .. import models as registry

    frame = registry.listing(reader.store)
    now = int(time.time() * 1000)
    for name, group in frame.groupby("name", sort=True):
        folder = os.path.join(root, "models", str(name))
        if os.path.isfile(os.path.join(folder, "meta.yaml")):
            continue
        found = [records.get(str(key), {}) for key in group["hash"]]
        theirs = [r.get("mlflow_version") for r in found]
        keep = all(isinstance(n, int) and n > 0 for n in theirs) and len(set(theirs)) == len(theirs)
        numbers = {int(v): (int(n) if keep and n is not None else int(v)) for v, n in zip(group["version"], theirs)}
        aliases: dict[str, int] = {}
        described = None
        model_tags: object = {}  # what the records hold: _write_tags writes a dict, nothing else
        written = 0
        for (_, row), record in zip(group.iterrows(), found):
            version = numbers[int(row["version"])]
            run_id = registry_runs.get(row["track_id"]) if isinstance(row["track_id"], str) else None
            source = record.get("source") or (f"runs:/{run_id}/" if run_id else "")
            described = described or record.get("model_description")
            model_tags = model_tags or record.get("model_tags") or {}
            here = os.path.join(folder, f"version-{version}")
            _write(
                os.path.join(here, "meta.yaml"),
                _yaml(
                    {
                        "creation_timestamp": record.get("created") or now,
                        "current_stage": record.get("stage") or "None",
                        "description": row["description"],
                        "last_updated_timestamp": record.get("created") or now,
                        "name": str(name),
                        "run_id": run_id,
                        "run_link": None,
                        "source": source,
                        "status": record.get("status") or "READY",
                        "status_message": None,
                        "storage_location": source,
                        "user_id": None,
                        "version": version,
                    }
                ),
            )
            _write_tags(os.path.join(here, "tags"), record.get("tags"))
            written += 1
            for alias in row["aliases"]:
                if alias not in ("staging", "production") or (record.get("stage") or "").lower() != alias:
                    aliases[alias] = version
        _write(
            os.path.join(folder, "meta.yaml"),
            _yaml(
                {
                    "aliases": aliases,
                    "creation_timestamp": now,
                    "description": described,
                    "last_updated_timestamp": now,
                    "name": str(name),
                }
            ),
        )
        _write_tags(os.path.join(folder, "tags"), model_tags)
        for alias, version in aliases.items():
            _write(os.path.join(folder, "aliases", alias), str(version))
        result.models += written


def _write_tags(folder: str, tags: Any) -> None:
    """MLflow's registry tags: a file per key (``a/b`` nested) holding the value."""
    if not isinstance(tags, dict):
        return
    for key, value in tags.items():
        if _safe_key(str(key)):
            _write(os.path.join(folder, *str(key).split("/")), "" if value is None else str(value))
