"""Every side table xetrack keeps beside the experiment tables, by name, defined once.

All start with :data:`~xetrack.schema.INTERNAL_PREFIX` (``xetrack_``) but the asset store's
two, whose names sqlitedict and xetrack 0.7.0 fixed. Every engine package creates and
reads them under these names; the column tuples say what a row holds, in the order the
copy and the engines write it.

>>> RUNS, MODELS, TAGS
('xetrack_runs', 'xetrack_models', 'xetrack_tags')
"""

from __future__ import annotations

from ..schema import ASSET_COUNTS, ASSETS_TABLE, INTERNAL_PREFIX

# the asset store (objects logged by value), as sqlitedict lays it out
ASSETS = ASSETS_TABLE
ASSET_COUNTS = ASSET_COUNTS
# run lifecycle and scored predictions (xetrack.runs)
RUNS = INTERNAL_PREFIX + "runs"
PREDICTIONS = INTERNAL_PREFIX + "predictions"
# run metadata (xetrack.meta): tags, display names, param/metric roles, table descriptions
TAGS = INTERNAL_PREFIX + "tags"
RUN_NAMES = INTERNAL_PREFIX + "run_names"
KINDS = INTERNAL_PREFIX + "kinds"
DESCRIPTIONS = INTERNAL_PREFIX + "descriptions"
# each column's logical type, where it differs from the declared one
COLUMN_TYPES = INTERNAL_PREFIX + "columns"
# artifacts (xetrack.artifacts): a run's named entries, and the chunked bytes they point at
ARTIFACTS = INTERNAL_PREFIX + "artifacts"
BLOBS = INTERNAL_PREFIX + "blobs"
CHUNKS = INTERNAL_PREFIX + "chunks"
UPLOADS = INTERNAL_PREFIX + "uploads"
# the model registry (xetrack.models)
MODELS = INTERNAL_PREFIX + "models"
MODEL_ALIASES = INTERNAL_PREFIX + "model_aliases"
# the run summary (SQLite only: store/sqlite/summary.py)
SUMMARY_STATE = INTERNAL_PREFIX + "summary_state"
SUMMARY_RUNS = INTERNAL_PREFIX + "summary_runs"
SUMMARY_COLUMNS = INTERNAL_PREFIX + "summary_columns"
SUMMARY_DIRTY = INTERNAL_PREFIX + "dirty"
# keys past the columns a table holds (store/sqlite/spill.py): their values, and the keys
SPILL = INTERNAL_PREFIX + "spill"
SPILLED = INTERNAL_PREFIX + "spilled"

RUN_COLUMNS = ("track_id", "table", "status", "start", "end", "error", "pid", "host")
PREDICTION_COLUMNS = ("track_id", "table", "name", "idx", "prediction", "actual")
ARTIFACT_COLUMNS = ("track_id", "table", "name", "type", "hash", "size", "created", "step")
MODEL_COLUMNS = ("name", "version", "hash", "kind", "track_id", "table", "description", "created")
#: The side tables whose rows belong to one run: deleting a run deletes its rows there.
RUN_SIDE_TABLES = (RUNS, PREDICTIONS, ARTIFACTS, TAGS, RUN_NAMES)
#: The side tables whose rows point at stored bytes (garbage collection keeps those).
POINTING_TABLES = (ARTIFACTS, MODELS)

__all__ = [
    "ASSETS",
    "ASSET_COUNTS",
    "RUNS",
    "PREDICTIONS",
    "TAGS",
    "RUN_NAMES",
    "KINDS",
    "DESCRIPTIONS",
    "COLUMN_TYPES",
    "ARTIFACTS",
    "BLOBS",
    "CHUNKS",
    "UPLOADS",
    "MODELS",
    "MODEL_ALIASES",
    "SUMMARY_STATE",
    "SUMMARY_RUNS",
    "SUMMARY_COLUMNS",
    "SPILL",
    "SPILLED",
    "SUMMARY_DIRTY",
    "RUN_COLUMNS",
    "PREDICTION_COLUMNS",
    "ARTIFACT_COLUMNS",
    "MODEL_COLUMNS",
    "RUN_SIDE_TABLES",
    "POINTING_TABLES",
]
