"""``import_tensorboard(logdir, db)``: TensorBoard event files as runs, read with
TensorBoard's own reader (the ``xetrack[tensorboard]`` extra).

The mapping:

- each folder under ``logdir`` (``logdir`` itself included) that holds event files
  (``events.out.tfevents.*``) is a run, its ``run_name`` the folder's path relative to
  ``logdir`` (``run_a``, ``exp1/train``; ``.`` for ``logdir`` itself), as TensorBoard
  names its runs;
- the scalars become rows: one row per step, with ``step`` and every scalar tag written
  at that step as a column named by the key rules (``train/loss`` -> ``train_loss``),
  the row's ``timestamp`` the step's first wall time; both ``simple_value`` scalars
  (``SummaryWriter.add_scalar``) and scalar tensors (``tf.summary.scalar``,
  ``add_scalar(..., new_style=True)``) are read;
- the HParams plugin's session (``add_hparams``, ``hp.hparams``) becomes params on every
  row of the run. ``torch``'s ``add_hparams`` writes it to a subfolder of the run named by
  the time, with the hparams' metrics: such a subfolder, holding the session and only the
  metrics it names, is read as part of its parent's run (a metric named like one of the
  run's own tags as ``hparams/<tag>``);
- the run is recorded ``finished`` (``failed`` when its hparams session says so), its
  start and end the first and last wall time;
- images, audio, histograms, graphs and other non-scalar data are not imported: a
  warning names them.

The track_id is made from the folder's relative path and the name of its first event
file, so a second import of the same logdir adds nothing, and a run whose event files
grew since (a training still going) is replaced by its whole new content.

>>> import_tensorboard("runs", "exp.db")  # doctest: +SKIP
Imported(runs=2, replaced=0, skipped=0, rows=10, warnings=[], seconds=0.05)
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..integrations.common import require
from .run_rows import PATH_TAG, SOURCE_TAG, Imported, SourceRow, SourceRun, write_runs

EXTRA = "tensorboard"
WHAT = "xetrack.import_tensorboard"


@dataclass
class _Folder:
    """One run folder as read: its scalar points, hparams and what was not imported."""

    rel: str
    path: str
    files: list[str]
    points: list[tuple[int, float, str, Any]] = field(default_factory=list)  # step, wall time, tag, value
    params: dict[str, Any] = field(default_factory=dict)
    session: bool = False  # holds an hparams session start
    metrics: set[str] = field(default_factory=set)  # the tags its hparams experiment names as metrics
    failed: bool = False
    first_time: float | None = None
    other: dict[str, str] = field(default_factory=dict)  # tag -> kind, of what is not imported
    merged: list[str] = field(default_factory=list)


def run_folders(logdir: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Relative path (``/``-separated, ``.`` for ``logdir`` itself) -> the event files of
    every folder under ``logdir`` that holds any, in path order."""
    io_wrapper = require("tensorboard.backend.event_processing.io_wrapper", EXTRA, WHAT)
    root = os.fspath(logdir)
    out: dict[str, list[str]] = {}
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        files = sorted(
            os.path.join(folder, n) for n in names if io_wrapper.IsSummaryEventsFile(os.path.join(folder, n))
        )
        if files:
            rel = os.path.relpath(folder, root)
            out[rel.replace(os.sep, "/") if rel != os.curdir else "."] = files
    return out


def _param(value: Any) -> Any:
    """A ``google.protobuf.Value`` of an hparam as a plain value (lists and structs as JSON)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return float(value.number_value)
    if kind == "string_value":
        return str(value.string_value)
    if kind == "bool_value":
        return bool(value.bool_value)
    if kind in ("list_value", "struct_value"):
        json_format = require("google.protobuf.json_format", EXTRA, WHAT)
        return json.dumps(json_format.MessageToDict(value), sort_keys=True)
    return None


def _read(rel: str, path: str, files: list[str]) -> _Folder:
    """The folder's events through TensorBoard's EventAccumulator, every point kept."""
    ea = require("tensorboard.backend.event_processing.event_accumulator", EXTRA, WHAT)
    metadata = require("tensorboard.plugins.hparams.metadata", EXTRA, WHAT)
    api_pb2 = require("tensorboard.plugins.hparams.api_pb2", EXTRA, WHAT)
    tensor_util = require("tensorboard.util.tensor_util", EXTRA, WHAT)

    out = _Folder(rel, path, list(files))
    keep_all = {ea.SCALARS: 0, ea.TENSORS: 0, ea.IMAGES: 1, ea.AUDIO: 1, ea.HISTOGRAMS: 1, ea.COMPRESSED_HISTOGRAMS: 1}
    acc = ea.EventAccumulator(path, size_guidance=keep_all)
    acc.Reload()
    tags = acc.Tags()
    for tag in tags.get(ea.SCALARS, []):
        out.points.extend((e.step, e.wall_time, tag, float(e.value)) for e in acc.Scalars(tag))
    for tag in tags.get(ea.TENSORS, []):
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        if plugin == metadata.PLUGIN_NAME:
            continue
        if plugin != "scalars":
            out.other[tag] = plugin or "tensors"
            continue
        for e in acc.Tensors(tag):
            array = tensor_util.make_ndarray(e.tensor_proto)
            if array.size != 1:
                out.other[tag] = "tensors"
                continue
            out.points.append((e.step, e.wall_time, tag, array.item()))
    for kind in (ea.IMAGES, ea.AUDIO, ea.HISTOGRAMS):
        out.other.update(dict.fromkeys(tags.get(kind, []), kind))
    if tags.get(ea.GRAPH) or tags.get(ea.META_GRAPH):
        out.other["(graph)"] = "graph"
    try:
        out.first_time = acc.FirstEventTimestamp()
    except ValueError:  # no event at all
        pass
    try:
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    except KeyError:
        content = {}
    if metadata.SESSION_START_INFO_TAG in content:
        info = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
        out.session = True
        out.params = {k: _param(info.hparams[k]) for k in sorted(info.hparams)}
    if metadata.EXPERIMENT_TAG in content:
        experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
        out.metrics = {m.name.tag for m in experiment.metric_infos}
    if metadata.SESSION_END_INFO_TAG in content:
        end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
        out.failed = end.status == api_pb2.STATUS_FAILURE
    return out


def _merge_sessions(folders: dict[str, _Folder]) -> None:
    """Fold each subfolder that holds only an hparams session and its metrics (what
    ``torch``'s ``add_hparams`` writes) into the run folder it is in. A metric named like a
    tag of the run is kept as ``hparams/<tag>``, so that it does not overwrite the
    run's own value at its step."""
    for rel in sorted(folders):
        child = folders[rel]
        if rel == ".":
            continue
        parent = folders.get(posixpath.dirname(rel) or ".")
        if parent is None or parent.session or not child.session or child.other:
            continue
        if any(tag not in child.metrics for _, _, tag, _ in child.points):
            continue
        parent.params.update(child.params)
        parent.session, parent.failed = True, parent.failed or child.failed
        own = {tag for _, _, tag, _ in parent.points}  # add_hparams(..., {"val/acc": 0.9}) beside a val/acc curve
        parent.points.extend((s, w, f"hparams/{t}" if t in own else t, v) for s, w, t, v in child.points)
        parent.files.extend(child.files)
        parent.merged.append(rel)
        del folders[rel]


def _whole_numbers(folders: list[_Folder]) -> None:
    """hparams come as floats (``32.0``): a key whose numbers are all whole, in every run,
    is kept as ints."""
    numbers: dict[str, list[float]] = {}
    for folder in folders:
        for key, value in folder.params.items():
            if type(value) is float:
                numbers.setdefault(key, []).append(value)
    whole = {k for k, values in numbers.items() if all(v.is_integer() and abs(v) < 2**63 for v in values)}
    for folder in folders:
        for key in whole & set(folder.params):
            if type(folder.params[key]) is float:
                folder.params[key] = int(folder.params[key])


def _natural(path: str) -> list[Any]:
    """A file name's sort key with its runs of digits as numbers:
    ``events.out.tfevents.1700000000.host.42.10`` after ``...42.9``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", os.path.basename(path))]


def _digest(*parts: str) -> str:
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def _run(root: str, folder: _Folder, result: Imported) -> SourceRun:
    rows: dict[int, SourceRow] = {}
    repeated = 0
    for step, wall, tag, value in folder.points:
        row = rows.get(step)
        if row is None:
            row = rows[step] = SourceRow(int(step), wall, {})
        elif row.time is None or wall < row.time:
            row.time = wall
        repeated += tag in row.values
        row.values[tag] = value
    if repeated:
        result.warn(
            f"run {folder.rel!r}: {repeated} scalar point(s) repeat a tag at a step it has: the last one is kept"
        )
    times = [wall for _, wall, _, _ in folder.points] or [folder.first_time or time.time()]
    # The run is known by its folder and its first event file: the names' numbers compared
    # as numbers (a writer's counter goes ...9, 10), so a file added later never comes first.
    own = sorted((f for f in folder.files if os.path.dirname(f) == folder.path), key=_natural)
    sizes = [f"{os.path.relpath(f, root)}:{os.path.getsize(f)}" for f in sorted(folder.files)]
    return SourceRun(
        track_id="tb-" + _digest(folder.rel, os.path.basename(own[0]))[:16],
        name=folder.rel,
        rows=[rows[s] for s in sorted(rows)],
        params=folder.params,
        tags={SOURCE_TAG: "tensorboard", PATH_TAG: folder.path},
        fingerprint=_digest(*sizes),
        status="failed" if folder.failed else "finished",
        error="the hparams session ended with STATUS_FAILURE" if folder.failed else None,
        start=min(times),
        end=max(times),
    )


def import_tensorboard(logdir: str | os.PathLike[str], db: str | os.PathLike[str], table: str = "default") -> Imported:
    """Import every run of a TensorBoard log folder into ``table`` of ``db`` (see the
    module's docstring for the mapping). Returns what was added; a second import of the
    same folder adds nothing.

    >>> from xetrack import import_tensorboard
    >>> import_tensorboard("runs", "exp.db").runs  # doctest: +SKIP
    2
    """
    started = time.perf_counter()
    require("tensorboard.backend.event_processing.event_accumulator", EXTRA, WHAT)
    root = os.path.abspath(os.fspath(logdir))
    if not os.path.exists(root):
        raise FileNotFoundError(f"No such folder: {os.fspath(logdir)!r} (the TensorBoard log folder)")
    if not os.path.isdir(root):
        raise NotADirectoryError(
            f"{os.fspath(logdir)!r} is a file: pass the TensorBoard log folder, which holds the run folders"
        )
    found = run_folders(root)
    if not found:
        raise ValueError(f"{os.fspath(logdir)!r} holds no TensorBoard event files (events.out.tfevents.*)")
    folders = {rel: _read(rel, os.path.join(root, *rel.split("/")), files) for rel, files in found.items()}
    _merge_sessions(folders)
    _whole_numbers(list(folders.values()))
    result = Imported()
    other: dict[str, set[str]] = {}
    runs: list[SourceRun] = []
    for rel, folder in folders.items():
        for tag, kind in folder.other.items():
            other.setdefault(kind, set()).add(tag)
        if not folder.points and not folder.session:
            result.warn(f"run {rel!r} holds no scalars and no hparams: not imported")
            continue
        runs.append(_run(root, folder, result))
    if other:
        listed = "; ".join(
            f"{kind}: {', '.join(sorted(tags)[:5])}{' ...' if len(tags) > 5 else ''}"
            for kind, tags in sorted(other.items())
        )
        result.warn(f"only scalars and hparams are imported, not these tags ({listed})")
    return write_runs(db, table, runs, result, started)


__all__ = ["import_tensorboard", "run_folders", "Imported"]
