"""The CREATE statements of the side tables on a SQLite file that more than one module
makes: the runs' lifecycle and predictions, artifact entries and the model registry.
(Each other side table's DDL sits with the one module that creates it.)"""

from __future__ import annotations

from ...schema import quote
from ..tables import ARTIFACTS, MODEL_ALIASES, MODELS, PREDICTIONS, RUNS

RUNS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(RUNS)} ("
    '"track_id" TEXT NOT NULL, "table" TEXT NOT NULL, "status" TEXT, "start" TEXT, '
    '"end" TEXT, "error" TEXT, "pid" INTEGER, "host" TEXT, PRIMARY KEY ("track_id", "table"))'
)
PREDICTIONS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(PREDICTIONS)} ("
    '"track_id" TEXT NOT NULL, "table" TEXT NOT NULL, "name" TEXT NOT NULL, "idx" INTEGER NOT NULL, '
    '"prediction", "actual", PRIMARY KEY ("track_id", "table", "name", "idx"))'
)
#: An artifact entry's columns; ``step`` is NULL for an entry logged without one.
ARTIFACT_FIELDS = (
    '"track_id" TEXT NOT NULL, "table" TEXT NOT NULL, "name" TEXT NOT NULL, "type" TEXT, '
    '"hash" TEXT NOT NULL, "size" INTEGER NOT NULL, "created" TEXT NOT NULL, "step" INTEGER'
)
ARTIFACTS_DDL = f"CREATE TABLE IF NOT EXISTS {quote(ARTIFACTS)} ({ARTIFACT_FIELDS})"
#: What names one entry: a run's name at a step, or without one. SQLite holds NULLs distinct
#: in a UNIQUE key, so the step-less entry is keyed as step -1 (a step is never negative).
ARTIFACT_KEY = '("track_id", "table", "name", coalesce("step", -1))'
ARTIFACTS_KEY_DDL = (
    f"CREATE UNIQUE INDEX IF NOT EXISTS {quote(ARTIFACTS + '_key')} ON {quote(ARTIFACTS)} {ARTIFACT_KEY}"
)
MODELS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(MODELS)} ("
    '"name" TEXT NOT NULL, "version" INTEGER NOT NULL, "hash" TEXT NOT NULL, "kind" TEXT NOT NULL, '
    '"track_id" TEXT, "table" TEXT, "description" TEXT, "created" TEXT NOT NULL, '
    'PRIMARY KEY ("name", "version"))',
    f"CREATE TABLE IF NOT EXISTS {quote(MODEL_ALIASES)} ("
    '"name" TEXT NOT NULL, "alias" TEXT NOT NULL, "version" INTEGER NOT NULL, PRIMARY KEY ("name", "alias"))',
)
