"""Merging tables and assets from one database into another: ``xetrack.copy``.

>>> import xetrack
>>> xetrack.copy("worker.db", "all.db")  # doctest: +SKIP
1200

- Every experiment table of SOURCE (or the ones named) is copied into TARGET, which is
  created if missing. Tables and columns TARGET lacks are added with the declared types
  they have in SOURCE. Keys past a table's columns (spilled, docs/runs.md "Any number of
  keys") come along like the others, with their logical types: a column of TARGET where
  it has room, else spilled by TARGET's own rules.
- A row whose ``(track_id, timestamp)`` TARGET already has is skipped, so copying the
  same file twice, or a file that kept growing since the last copy, copies each row once.
- Assets are copied unless ``assets=False``, and each copied row that points at a stored
  asset counts one reference, as ``log()`` counts it.
- The side tables come along: the runs' lifecycle rows, kept predictions, artifact
  entries, tags, run names and descriptions of every table copied, the artifact bytes
  they point at, and the model registry with the bytes of its versions.
- Between two SQLite files the whole copy is one transaction of TARGET (all or
  nothing); with a PostgreSQL end (a ``postgresql://`` URL, docs/postgres.md) each batch
  is one, and a copy that was killed resumes where it stopped when run again.

The modules of the package, each importing :mod:`.result` and none this one:

- :mod:`.result`: :class:`CopyResult` (what a copy did), ``PROGRESS_THRESHOLD``;
- :mod:`.files` and :mod:`.files_side_tables`: SQLite file to SQLite file, on two
  connections that :mod:`xetrack.store.sqlite.copy` and ``.copy_side`` open and run every
  statement on (reached through ``xetrack.store.dialect_features("sqlite")``);
- :mod:`.postgres` and :mod:`.postgres_side_tables`: a copy with a PostgreSQL end, on
  two engines, through each engine's ``features(engine).copy`` / ``.copy_side``.

They hold the plan, the choices and the batch loops; this module picks one of the two.

**The function and the package share a name.** ``xetrack.copy`` has been the function
users call since it was a module of its own, so :mod:`xetrack` binds the name ``copy``
to the function :func:`copy` defined here (``from .copy import copy``), over the
package that importing it had set there. Hence:

- ``from xetrack import copy`` and ``xetrack.copy(...)`` give the function, as before;
- ``from xetrack.copy import copy_tables, CopyResult`` and ``from xetrack.copy import
  files`` work: a ``from`` import looks the package up by its full name, not as an
  attribute of :mod:`xetrack`;
- ``import xetrack.copy.files`` loads the module, but ``xetrack.copy.files`` afterwards
  is an attribute of the function and fails: use the ``from`` form, or
  ``importlib.import_module("xetrack.copy.files")``, which returns the module itself.

>>> import importlib
>>> xetrack.copy is importlib.import_module("xetrack.copy").copy
True

This module stays light on import (``import xetrack`` imports it): the store, the
engines and the Reader are imported inside the calls.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

from .result import PROGRESS_THRESHOLD, CopyResult, Progress, skipped_message


def copy(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    assets: bool = True,
    tables: Sequence[str] | str | None = None,
    *,
    progress: Progress | None = None,
) -> int:
    """Copy the rows of SOURCE's tables (and its assets) into TARGET; returns the number of
    rows copied.

    Rows TARGET already holds, with the same ``track_id`` and ``timestamp``, are skipped.

    >>> xetrack.copy("worker.db", "all.db", tables=["default"])  # doctest: +SKIP
    1200

    Along with the rows of each table copied come its side rows:

    - runs (``xetrack_runs``): a run TARGET has is kept as it is, unless TARGET says
      ``running`` and SOURCE says ``finished``, ``failed`` or ``killed``: then SOURCE's
      row replaces it (copying a worker's file again once it finished);
    - predictions: those TARGET lacks (by track_id, table, name and index);
    - artifact entries: those TARGET lacks by ``(track_id, table, name)`` (TARGET's entry
      wins), with their bytes, copied chunk by chunk and checked against their digest.
      Bytes TARGET holds already are not copied again; a hash TARGET holds with other
      bytes raises :class:`~xetrack.errors.IntegrityError` before anything is written.

    The model registry is file-wide and is copied whatever ``tables`` says, with the
    bytes of its versions. A version TARGET has already (same name, hash and creation
    time) is not added again; the others become TARGET's next version numbers, in
    SOURCE's order, so they may be renumbered. A SOURCE alias is set only when TARGET has
    no alias of that name for the model, and points at the version's number in TARGET.
    Copying the same SOURCE again adds nothing.

    ``assets=False`` copies no stored bytes, neither objects nor artifact bytes. An
    artifact entry or model version is then copied only when TARGET holds its bytes
    already, so every entry in TARGET stays readable; the others are counted in
    ``CopyResult.left_out``. (Rows of the experiment tables keep their asset hashes.)

    Args:
        source: an existing database file (or a PostgreSQL URL); it is only read.
        target: the file to merge into, created if missing (or a PostgreSQL URL).
        assets: also copy stored bytes: objects logged as hashes and artifact bytes.
        tables: the tables to copy, with their runs, predictions and artifacts; None
            copies every experiment table.
        progress: called as ``progress(rows_read, rows_total)`` after every batch.
    """
    result = copy_tables(source, target, assets=assets, tables=tables, progress=progress)
    for name in result.skipped_tables:
        warnings.warn(skipped_message(name), stacklevel=2)
    return result.rows


def copy_tables(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    assets: bool = True,
    tables: Sequence[str] | str | None = None,
    *,
    progress: Progress | None = None,
) -> CopyResult:
    """:func:`copy`, returning a :class:`CopyResult` with the details."""
    from ..store import is_url

    source_path, target_path = os.fspath(source), os.fspath(target)
    if is_url(source_path) or is_url(target_path):  # SQLite <-> PostgreSQL (docs/postgres.md)
        from .postgres import copy_with_postgres

        return copy_with_postgres(source_path, target_path, assets, tables, progress)
    from .files import copy_files

    return copy_files(source_path, target_path, assets, tables, progress)


__all__ = ["PROGRESS_THRESHOLD", "CopyResult", "copy", "copy_tables"]
