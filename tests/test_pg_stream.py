"""A big log_batch on PostgreSQL goes as a stream of chunks into one COPY
(xetrack/store/postgres/stream.py): the rows stored must be exactly those of the whole-batch
path and of SQLite, whatever a later chunk holds, and an aborted stream writes nothing.

Chunks are made small here (100 rows) so that a batch of a thousand rows crosses many.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pandas as pd
import pytest

from xetrack import Reader, Tracker
from xetrack import batch as batch_module
from xetrack.store.postgres import stream as pg_stream

STAMPS = ["timestamp", "track_id"]


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(batch_module, "STREAM_ABOVE", 200)
    monkeypatch.setattr(batch_module, "STREAM_CHUNK", 100)
    calls = {"streamed": 0, "aborted": 0}
    real = pg_stream.PostgresStreams.insert_stream

    def spy(self, *args, **kwargs):
        try:
            real(self, *args, **kwargs)
        except Exception:
            calls["aborted"] += 1
            raise
        calls["streamed"] += 1

    monkeypatch.setattr(pg_stream.PostgresStreams, "insert_stream", spy)
    return calls


def _frames(tmp_path, pg_url, batches, params):
    frames, errors = {}, {}
    for name, db in {"sqlite": str(tmp_path / "exp.db"), "postgres": pg_url}.items():
        tracker = Tracker(db, params=params, track_id="run-1")
        for n, batch in enumerate(batches):
            try:
                tracker.log_batch(batch)
            except ValueError as exc:  # a 70-bit int: the same clear error, nothing written
                errors[name, n] = str(exc)
        frames[name] = Reader(db).to_df()
    assert {n: e for (engine, n), e in errors.items() if engine == "sqlite"} == {
        n: e for (engine, n), e in errors.items() if engine == "postgres"
    }
    return frames


def _same(frames):
    sqlite, postgres = frames["sqlite"], frames["postgres"]
    assert list(sqlite.columns) == list(postgres.columns)
    assert sqlite.dtypes.astype(str).to_dict() == postgres.dtypes.astype(str).to_dict()
    pd.testing.assert_frame_equal(sqlite.drop(columns=STAMPS), postgres.drop(columns=STAMPS))


EVENTS = [
    "float in the int column",
    "nan",
    "none",
    "text in the int column",
    "extra key",
    "an object",
    "a 70-bit int",
    "inf",
    "bool in the float column",
    "nothing",
]


def _batch(rng, n, event_at, event):
    rows = [{"i": k, "f": k / 3, "s": rng.choice(["a", "tab\there", "ü ✓", "\\N"]), "b": k % 2 == 0} for k in range(n)]
    row = rows[event_at]
    if event == "float in the int column":
        row["i"] = 2.5
    elif event == "nan":
        row["f"] = float("nan")
    elif event == "none":
        row["s"] = None
    elif event == "text in the int column":
        row["i"] = "seven"
    elif event == "extra key":
        row["late"] = 1
    elif event == "an object":
        row["s"] = np.arange(3)
    elif event == "a 70-bit int":
        row["i"] = 2**70
    elif event == "inf":
        row["f"] = float("inf")
    elif event == "bool in the float column":
        row["f"] = True
    return rows


@pytest.mark.parametrize("seed", [int(os.environ.get("XT_SEED", 0)) or s for s in (11, 22, 33)])
def test_streamed_batches_store_what_sqlite_stores(tmp_path, pg_url, small_chunks, seed):
    rng = random.Random(seed)
    batches = []
    for _ in range(4):
        n = rng.choice([250, 640, 1000])
        batches.append(_batch(rng, n, rng.randrange(100, n), rng.choice(EVENTS)))  # never in the first chunk
    try:
        _same(_frames(tmp_path, pg_url, batches, {"model": "rf", "seed": rng.choice([7, "seven"])}))
    except AssertionError as exc:
        raise AssertionError(f"XT_SEED={seed}: {exc}") from None
    assert small_chunks["streamed"] + small_chunks["aborted"] == 4


def test_every_kind_of_later_chunk_streams_or_aborts_as_it_should(pg_url, small_chunks):
    """NaN, None and inf stream; a value that needs the overflow column (a float in the
    int column, a bool in the float one, text in the int one), other keys, an object or
    a 70-bit int abort the stream, and the whole-batch path takes over: every row stored
    once, or (the 70-bit int) none and a clear error."""
    rng = random.Random(5)
    expected = {
        "float in the int column": False,
        "nan": True,
        "none": True,
        "inf": True,
        "nothing": True,
        "bool in the float column": False,
        "text in the int column": False,
        "extra key": False,
        "an object": False,
        "a 70-bit int": False,
    }
    for event, streams in expected.items():
        before = dict(small_chunks)
        batch = _batch(rng, 500, 333, event)
        tracker = Tracker(pg_url, track_id=event)
        try:
            tracker.log_batch(batch)
        except ValueError as exc:
            assert event == "a 70-bit int" and "64-bit integer range" in str(exc)
        took = {k: small_chunks[k] - before[k] for k in before}
        assert took == ({"streamed": 1, "aborted": 0} if streams else {"streamed": 0, "aborted": 1}), event
        stored = Reader(pg_url).to_df()
        stored = stored[stored["track_id"] == event]
        assert len(stored) == (0 if event == "a 70-bit int" else 500), event  # all or nothing, never twice


def test_a_first_chunk_with_an_empty_column_goes_whole(pg_url, small_chunks):
    rows = [{"x": k, "later": None} for k in range(150)] + [{"x": k, "later": "text"} for k in range(150, 400)]
    Tracker(pg_url).log_batch(rows)
    assert small_chunks == {"streamed": 0, "aborted": 0}
    assert Reader(pg_url)["later"].tolist()[150:152] == ["text", "text"]


def test_a_connection_dropped_mid_stream_stores_every_row_once(pg_server, pg_url, small_chunks, monkeypatch):
    name = pg_url.rsplit("/", 1)[1]
    tracker = Tracker(pg_url)
    tracker.log({"x": -1})
    real = Tracker._batch_fast
    calls = {"n": 0}

    def dropping(self, rows):
        calls["n"] += 1
        if calls["n"] == 3:  # the third chunk: the COPY is under way
            pg_server.sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
        return real(self, rows)

    monkeypatch.setattr(Tracker, "_batch_fast", dropping)
    tracker.log_batch([{"x": k} for k in range(1000)])
    assert Reader(pg_url)["x"].tolist() == [-1] + list(range(1000))
    assert small_chunks["streamed"] == 1
