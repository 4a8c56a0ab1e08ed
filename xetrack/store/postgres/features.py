"""The PostgreSQL package's module for each side-table feature
(:mod:`xetrack.store.features`). The run queries read an in-memory SQLite copy of the
table (:mod:`xetrack.store.run_mirror`), so their SQL is SQLite's."""

from __future__ import annotations

from .. import run_mirror
from ..features import Features
from . import artifacts, blobs, copy, copy_side, gc, meta, models, runs_side

FEATURES = Features(
    models=models, meta=meta, blobs=blobs, artifacts=artifacts, runs_side=runs_side, gc=gc, copy=copy,
    copy_side=copy_side, run_copy=run_mirror,
)
