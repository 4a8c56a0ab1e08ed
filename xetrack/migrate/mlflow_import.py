"""``import_mlflow(src, db)``: an MLflow store's experiments, runs and registry into a xetrack file.

The mapping (docs/migrating-from-mlflow.md has the whole table):

- an experiment is a table, named by the table rules (``Vision models/v1`` ->
  ``Vision_models_v1``), described by its MLflow name and note;
- a run is a track_id (the MLflow run id), its name the ``run_name``;
- params are param columns on every row of the run (recorded as params), read as
  numbers when every value of the key prints back as the same text (see :func:`param_types`);
- each metric point is a row with ``step``, the value and the point's own timestamp
  (points logged together at one step and time share a row);
- tags are tags, ``mlflow.*`` included; status, start and end go to the runs side table;
- artifact files are ``log_artifact`` entries under their relative paths;
- registered model versions become registry versions of a small JSON record of the
  version (source, stage, status, creation time, tags, the model's description and tags,
  the hashes of the files it points at), in their run; the registry keeps the record's
  bytes, so the run's artifacts are exactly MLflow's. Aliases stay aliases and the
  ``Staging``/``Production`` stages become the aliases ``staging``/``production``.

A run is written completely or not at all as far as a later import can tell: its
lifecycle row is written last, and a run found with rows but without it (a killed
import) is deleted and imported again. A second import adds nothing.

>>> import_mlflow("mlruns", "exp.db")  # doctest: +SKIP
ImportResult(experiments=2, runs=12, skipped=0, rows=3120, artifacts=30, models=2, warnings=[])
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..schema import TIMESTAMP, TRACK_ID, column_name
from .mlflow_open import open_store
from .mlflow_store import RUN_NAME_TAG, Experiment, Model, Run

#: Rows per insert transaction: bounds the memory held for one write.
CHUNK_ROWS = 5000
STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed", "RUNNING": "running", "SCHEDULED": "running"}
#: The first line of an imported table's description; the export reads the name back from it.
DESCRIPTION_HEAD = "MLflow experiment: "
#: Where the import of builds before 0.8.0 kept each version's record: an artifact entry of its run,
#: ``mlflow-registry/<model>/version-N.json``. Now the registry keeps it, and the export
#: leaves such entries out (see :func:`xetrack.migrate.mlflow_export.legacy_record`).
REGISTRY_FOLDER = "mlflow-registry"
#: A registered artifact bigger than this is not read to see whether it is a version record.
RECORD_BYTES = 8 * 2**20
_RESERVED = {TIMESTAMP, TRACK_ID, "step"}


@dataclass
class ImportResult:
    """What an import added (a second import of the same source adds nothing)."""

    experiments: int = 0
    runs: int = 0
    skipped: int = 0  # runs already imported
    rows: int = 0
    artifacts: int = 0
    models: int = 0  # model versions
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def ms_to_stamp(ms: int | None) -> str | None:
    """MLflow's milliseconds since the epoch as the wide table's local ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if ms is None:
        return None
    seconds, milli = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S.", time.localtime(seconds)) + f"{milli * 1000:06d}"


def table_name_for(name: str, taken: set[str]) -> str:
    """An experiment name as a table name: other characters become ``_``; never a
    reserved name, never one taken by another experiment."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "experiment"
    if base.lower().startswith(("xetrack_", "sqlite_")) or base.lower() == "assets":
        base = "mlflow_" + base
    out, n = base, 2
    while out.lower() in {t.lower() for t in taken}:
        out, n = f"{base}_{n}", n + 1
    taken.add(out)
    return out


def _prints_back(kind: type, text: str) -> bool:
    try:
        return str(kind(text)) == text
    except (TypeError, ValueError, OverflowError):
        return False


def param_types(texts: dict[str, list[str]]) -> dict[str, type]:
    """Per param key, how its values are kept: ``int`` when every one of them is an int
    that prints back as the same text (``'32'``), ``float`` likewise (``'0.01'``), else
    ``str``. One type per column, so that the export gives back the very text
    (``'1e-3'`` stays text, and so does ``'1'`` beside ``'0.5'``)."""
    out: dict[str, type] = {}
    for key, values in texts.items():
        out[key] = next((k for k in (int, float) if all(_prints_back(k, v) for v in values)), str)
    return out


class _Progress:
    """``importing mlflow [####   ] 120/1000 runs, 51,200 rows/s`` on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.start, self.last = max(total, 1), enabled, time.perf_counter(), 0.0

    def update(self, done: int, rows: int, final: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not final and now - self.last < 0.2):
            return
        self.last = now
        rate = rows / max(now - self.start, 1e-9)
        bar = "#" * int(30 * done / self.total)
        sys.stderr.write(f"\rimporting mlflow [{bar:<30}] {done}/{self.total} runs, {rate:,.0f} rows/s")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


class _Table:
    """One experiment table being written: its engine and the MLflow key -> column map."""

    def __init__(self, db: str, name: str) -> None:
        from .. import meta
        from ..tracker import Tracker

        self.name = name
        self.tracker = Tracker(db, table=name, warnings=False)
        self.engine = self.tracker._engine
        self.columns: dict[tuple[str, str], str] = {}
        self.param_types: dict[str, type] = {}  # set from every run's params before the first run
        for col, (kind, key) in meta.recorded_keys(self.engine, name).items():
            self.columns[(kind, key or col)] = col
        self.used = set(self.columns.values()) | set(self.engine.columns(name))

    def column(self, kind: str, key: str) -> str:
        """The column of MLflow's ``kind`` key: its sanitized name, with ``_param``,
        ``_metric`` or a number added when another key or a reserved name has it."""
        found = self.columns.get((kind, key))
        if found is not None:
            return found
        base = column_name(key)
        out, n = base, 2
        if out in _RESERVED or out in self.used:
            out = f"{base}_{kind}"
        while out in _RESERVED or out in self.used:
            out, n = f"{base}_{kind}{n}", n + 1
        self.columns[(kind, key)] = out
        self.used.add(out)
        return out


def import_mlflow(
    src: str | os.PathLike[str],
    db: str | os.PathLike[str],
    *,
    artifact_root: str | None = None,
    progress: bool = True,
) -> ImportResult:
    """Import an MLflow store into ``db``: an ``mlruns/`` folder, ``sqlite:///mlflow.db`` or
    an MLflow database on PostgreSQL (``postgresql+psycopg://user@host/db``) (with
    ``artifact_root``, the folder its artifacts live in, when the runs' own
    artifact URIs do not lead there). Returns what was added; problems with one run are
    warnings (also written to stderr) that name it, and every other run is imported.

    >>> from xetrack import import_mlflow
    >>> import_mlflow("mlruns", "exp.db").runs  # doctest: +SKIP
    12
    """
    started = time.perf_counter()
    result = ImportResult()
    with open_store(os.fspath(src), artifact_root) as store:
        experiments = [e for e in store.experiments() if not e.deleted]
        plan: list[tuple[Experiment, list[Run]]] = []
        for exp in experiments:
            runs = [r for r in store.runs(exp) if not r.deleted]
            if runs:
                plan.append((exp, runs))
        for problem in store.problems:
            _warn(result, problem)
        bar = _Progress(sum(len(r) for _, r in plan), progress)
        taken: set[str] = set()
        run_tables: dict[str, _Table] = {}
        done = 0
        for exp, runs in plan:
            table = _Table(os.fspath(db), table_name_for(exp.name, taken))
            texts: dict[str, list[str]] = {}
            for run in runs:
                try:
                    for key, value in store.params(run).items():
                        texts.setdefault(key, []).append(value)
                except Exception:  # noqa: BLE001 - the run's own import says what is wrong
                    pass
            table.param_types = param_types(texts)
            _describe(table, exp)
            result.experiments += 1
            for run in runs:
                run_tables[run.run_id] = table
                _import_run(store, table, run, result)
                done += 1
                bar.update(done, result.rows)
        _import_models(store, store.models(), run_tables, next(iter(run_tables.values()), None), result)
        bar.update(done, result.rows, final=True)
        for table in {id(t): t for t in run_tables.values()}.values():
            table.tracker.close()
    result.seconds = time.perf_counter() - started
    return result


def _describe(table: _Table, exp: Experiment) -> None:
    from .. import meta

    text = DESCRIPTION_HEAD + exp.name + (f"\n{exp.description}" if exp.description else "")
    meta.describe_table(table.engine, table.name, text)


def _warn(result: ImportResult, text: str) -> None:
    result.warnings.append(text)
    sys.stderr.write(f"warning: {text}\n")


def _import_run(store: Any, table: _Table, run: Run, result: ImportResult) -> None:
    from .. import meta
    from ..runs import record_run

    engine = table.engine
    if run.run_id in _finished(table):
        result.skipped += 1
        return
    if engine.count(table.name, {TRACK_ID: run.run_id}):
        _drop_run(table, run.run_id)  # a killed import left part of it: start it over
    try:
        rows = _write_rows(store, table, run)
        tags = store.tags(run)
        if tags:
            meta.set_tags(engine, table.name, run.run_id, {k: v if v is not None else "" for k, v in tags.items()})
        name = run.name or tags.get(RUN_NAME_TAG)
        if name:
            meta.set_run_name(engine, table.name, run.run_id, name)
        artifacts = _import_artifacts(store, table, run, result)
        record_run(
            engine,
            table.name,
            run.run_id,
            STATUS.get(run.status.upper(), "finished"),
            ms_to_stamp(run.start),
            ms_to_stamp(run.end),
        )
    except Exception as exc:  # noqa: BLE001 - one run's problem, whatever it is, must not stop the others
        _drop_run(table, run.run_id)
        _warn(result, f"run {run.run_id} ({run.where}) was not imported: {type(exc).__name__}: {exc}")
        return
    _finished(table).add(run.run_id)
    result.runs += 1
    result.rows += rows
    result.artifacts += artifacts


def _finished(table: _Table) -> set[str]:
    """The runs of the table with a lifecycle row: imported completely before."""
    found = getattr(table, "_finished", None)
    if found is None:
        from ..runs import run_records

        found = set(run_records(table.engine, table.name))
        table._finished = found  # type: ignore[attr-defined]
    return found


def _drop_run(table: _Table, run_id: str) -> None:
    from ..garbage import delete_run

    table.engine.delete(table.name, {TRACK_ID: run_id})
    delete_run(table.engine, table.name, run_id)


def _points(store: Any, run: Run) -> list[tuple[int, int, str, float]]:
    """The run's metric points as (timestamp, step, key, value), in time order."""
    points = [(ts, step, key, value) for key, ts, step, value in store.metrics(run)]
    points.sort(key=lambda p: (p[0], p[1]))
    return points


def _write_rows(store: Any, table: _Table, run: Run) -> int:
    """Insert the run's rows: one per (timestamp, step) with its metric values, params on each."""
    from .. import meta
    from ..tracker import _first_value_finder

    params = {table.column("param", k): table.param_types.get(k, str)(v) for k, v in store.params(run).items()}
    points = _points(store, run)
    metric_cols = list(dict.fromkeys(table.column("metric", key) for _, _, key, _ in points))
    keys = tuple(params) + (("step",) if points else ()) + tuple(metric_cols) + (TIMESTAMP, TRACK_ID)
    meta.record_kinds(
        table.engine,
        table.name,
        list(params),
        metric_cols,
        keys={c: k for (kind, k), c in table.columns.items() if c in params or c in metric_cols},
    )
    head = tuple(params.values())
    width = len(metric_cols)
    where = {c: i for i, c in enumerate(metric_cols)}
    count = 0

    def rows() -> Iterator[tuple[Any, ...]]:
        if not points:
            yield head + (ms_to_stamp(run.start) or ms_to_stamp(int(time.time() * 1000)), run.run_id)
            return
        current: list[Any] | None = None
        at: tuple[int, int] | None = None
        for ts, step, key, value in points:
            col = where[table.column("metric", key)]
            if current is None or at != (ts, step) or current[col] is not None:
                if current is not None:
                    yield head + (at[1],) + tuple(current) + (ms_to_stamp(at[0]), run.run_id)  # type: ignore[index]
                current, at = [None] * width, (ts, step)
            current[col] = value
        if current is not None:
            yield head + (at[1],) + tuple(current) + (ms_to_stamp(at[0]), run.run_id)  # type: ignore[index]

    batch: list[tuple[Any, ...]] = []
    for row in rows():
        batch.append(row)
        if len(batch) >= CHUNK_ROWS:
            table.engine.insert_many(table.name, keys, batch, _first_value_finder(batch), None)
            count += len(batch)
            batch = []
    if batch:
        table.engine.insert_many(table.name, keys, batch, _first_value_finder(batch), None)
        count += len(batch)
    return count


def _import_artifacts(store: Any, table: _Table, run: Run, result: ImportResult) -> int:
    from ..artifacts import folder_files

    folder = store.artifact_dir(run)
    if folder is None:
        uri = run.artifact_uri or ""
        if uri and "://" in uri and not uri.startswith("file:"):
            _warn(
                result,
                f"run {run.run_id}: artifacts at {uri} are not on this machine; "
                "pass artifact_root= (--artifact-root) to import them",
            )
        return 0
    table.tracker.track_id = run.run_id
    count = 0
    for name, path in folder_files(folder):
        try:
            table.tracker.log_artifact(path, name=name)
            count += 1
        except OSError as exc:
            _warn(
                result,
                f"run {run.run_id}: artifact {name!r} could not be read ({exc}); the rest of the run is imported",
            )
    return count


# ------------------------------------------------------------------ the registry
def _label(name: str) -> str:
    return re.sub(r"[:@/\\]", "_", name.strip()) or "model"


def version_records(engine: Any) -> dict[str, dict[str, Any]]:
    """hash -> record, of the registry versions whose bytes are an import's version record
    (a JSON object with ``mlflow_version``). Versions too big to be a record are not read."""
    from .. import models as registry
    from ..artifacts import Found, chunks

    frame = registry.listing(engine)
    out: dict[str, dict[str, Any]] = {}
    for name, key, kind, size in zip(frame["name"], frame["hash"], frame["kind"], frame["size"]):
        try:
            small = 0 < int(size) <= RECORD_BYTES
        except (TypeError, ValueError):  # no size: its bytes are gone
            small = False
        if kind != "artifact" or key in out or not small:
            continue
        try:
            record = json.loads(b"".join(chunks(engine, Found(key, f"model {name}"))))
            if isinstance(record, dict):
                record["mlflow_version"] = int(record["mlflow_version"])
                out[key] = record
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            continue  # not a record: a model someone registered
    return out


def _import_models(
    store: Any, models: list[Model], run_tables: dict[str, _Table], fallback: Any, result: ImportResult
) -> None:
    """Each version: a registry version of the model's name whose bytes are a JSON record of
    it, kept in its run when the run is here (else with no run, in ``fallback``'s table).
    The record's bytes are stored like any registered artifact but are no artifact entry of
    the run: a run's artifacts stay exactly MLflow's. A version a former import brought in
    (found by its record) is not added again."""
    from .. import models as registry
    from ..artifacts import listing

    if not models or fallback is None:
        if models:
            _warn(result, f"{len(models)} registered model(s) not imported: the store has no runs to keep them with")
        return
    engine = fallback.engine
    known = registry.listing(engine)
    records = version_records(engine)
    for model in models:
        name = _label(model.name)
        if name != model.name:
            _warn(
                result,
                f"registered model {model.name!r} is named {name!r} here (':', '@', '/' and '\\' are not allowed)",
            )
        numbers: dict[int, int] = {}  # MLflow's version -> the registry's
        for n, key, number in zip(known["name"], known["hash"], known["version"]):
            record = records.get(key)
            if n == name and record is not None and record.get("mlflow_model") == model.name:
                numbers.setdefault(record["mlflow_version"], int(number))
        for version in model.versions:
            if version.version in numbers:
                continue
            imported = version.run_id in run_tables
            table = run_tables[version.run_id] if imported else fallback  # type: ignore[index]
            files: dict[str, str] = {}
            path = _run_path(version.source, version.run_id)
            if path is not None and imported:
                frame = listing(table.engine, table.name, version.run_id)
                for art, key in zip(frame["name"], frame["hash"]):
                    if path in ("", art) or art.startswith(path.rstrip("/") + "/"):
                        files[art] = key
            record = {
                "mlflow_model": model.name,
                "mlflow_version": version.version,
                "source": version.source,
                "run_id": version.run_id,
                "stage": version.stage,
                "status": version.status,
                "model_description": model.description,
                "created": version.created,
                "files": files,
                "tags": version.tags,
                "model_tags": model.tags,
            }
            data = json.dumps(record, sort_keys=True).encode()
            numbers[version.version] = _register_record(
                table, version.run_id if imported else None, name, data, version.description
            )
            result.models += 1
        for alias, version_number in model.aliases.items():
            if version_number in numbers:
                registry.set_alias(engine, name, numbers[version_number], alias)
        for version in model.versions:
            if version.stage in ("Staging", "Production"):
                registry.set_alias(engine, name, numbers[version.version], version.stage.lower())


def _register_record(table: _Table, track_id: str | None, name: str, data: bytes, description: str | None) -> int:
    """Store a version record's bytes with no artifact entry (they are the registry's, not
    the run's) and register them as the next version of ``name``. A ``gc`` in between sees
    bytes nothing points at yet and may take them: then they are stored once more."""
    from .. import models as registry
    from ..artifacts import BytesSource, keeper, store

    def keep() -> str:
        key, _ = store(table.engine, BytesSource(data, "json", ".json"), lambda conn, key: None)
        return key

    key = keep()
    try:
        return registry.register(table.engine, table.name, track_id, name, key, description=description)
    except ValueError:
        if keeper(table.engine).has_blob(table.engine, key):
            raise  # not a gc meanwhile: the error says what is wrong
    return registry.register(table.engine, table.name, track_id, name, keep(), description=description)


def _run_path(source: str | None, run_id: str | None) -> str | None:
    """The artifact path of a ``runs:/<id>/<path>`` source (``''`` for the whole run)."""
    if not source or not source.startswith("runs:/"):
        return None
    rest = source[len("runs:/") :]
    rid, _, path = rest.partition("/")
    return path.strip("/") if rid == run_id else None
