"""The SQLite package's module for each side-table feature (:mod:`xetrack.store.features`).
The DuckDB engine on a SQLite file uses these too: its side tables are in the same file."""

from __future__ import annotations

from ..features import Features
from . import artifacts, blobs, copy, copy_side, gc, meta, models, run_copy, runs_side

FEATURES = Features(
    models=models, meta=meta, blobs=blobs, artifacts=artifacts, runs_side=runs_side, gc=gc, copy=copy,
    copy_side=copy_side, run_copy=run_copy,
)
