"""Artifacts: files, bytes, figures and frames kept by runs, stored once by content."""

import io
import multiprocessing
import os
import sqlite3
import tracemalloc

import pandas as pd
import pytest

from pg_server import raw_sql
from xetrack import Reader, Tracker
from xetrack.errors import IntegrityError, NotFoundError
from xetrack.store import chunks
from xetrack.store.sqlite import blobs


def _query(db, sql, empty):
    """Rows of one query on the store (SQLite or PostgreSQL); ``empty`` when never created."""
    return raw_sql(db, sql, (), empty)


def blob_rows(db):
    return _query(db, "SELECT hash, size, chunks FROM xetrack_blobs ORDER BY hash", [])


def chunk_bytes(db):
    ((total, count),) = _query(db, "SELECT coalesce(sum(length(data)), 0), count(*) FROM xetrack_chunks", [(0, 0)])
    return int(total), count


def keeper(db):
    """The module that keeps the bytes of this store (what a test patches to die mid-upload)."""
    from xetrack.store.postgres import blobs as pg_blobs

    return pg_blobs if str(db).startswith("postgresql://") else blobs


@pytest.fixture
def file(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_bytes(b"epoch,loss\n1,0.5\n2,0.25\n")
    return path


def test_a_file_is_stored_with_its_name_and_read_back(db, file, engine):
    tracker = Tracker(db, engine=engine)
    digest = tracker.log_artifact(file)
    assert isinstance(digest, str) and len(digest) == 16 and int(digest, 16) >= 0
    reader = Reader(db, engine=engine)
    listed = reader.artifacts()
    assert listed.columns.tolist() == ["track_id", "name", "type", "hash", "size", "created", "step"]
    row = listed.iloc[0]
    assert (row.track_id, row["name"], row.type, row.hash, row["size"]) == (
        tracker.track_id,
        "metrics.csv",
        "file",
        digest,
        len(file.read_bytes()),
    )
    assert reader.artifact("metrics.csv") == file.read_bytes()
    assert reader.artifact(digest) == file.read_bytes()
    assert reader.artifact("metrics.csv", track_id=tracker.track_id) == file.read_bytes()


def test_bytes_get_a_name_and_type_of_your_choice(engine_db):
    tracker = Tracker(engine_db)
    digest = tracker.log_artifact(b"\x00\x01binary", name="weights/last.bin", type="checkpoint")
    unnamed = tracker.log_artifact(b"no name")
    frame = Reader(engine_db).artifacts(track_id=tracker.track_id)
    assert frame["name"].tolist() == ["weights/last.bin", unnamed]  # unnamed bytes: named by hash
    assert frame["type"].tolist() == ["checkpoint", "bytes"]
    assert Reader(engine_db).artifact("weights/last.bin") == b"\x00\x01binary"
    assert Reader(engine_db).artifact(digest) == b"\x00\x01binary"


def test_logging_a_name_again_in_a_run_replaces_it(engine_db):
    tracker = Tracker(engine_db)
    tracker.log_artifact(b"v1", name="model.bin")
    second = tracker.log_artifact(b"v2", name="model.bin")
    frame = Reader(engine_db).artifacts()
    assert frame["name"].tolist() == ["model.bin"] and frame["hash"].tolist() == [second]
    assert Reader(engine_db).artifact("model.bin") == b"v2"


def test_same_bytes_from_many_runs_are_stored_once(engine_db, file):
    hashes = {Tracker(engine_db).log_artifact(file) for _ in range(5)}
    hashes.add(Tracker(engine_db).log_artifact(file.read_bytes(), name="copy.csv"))
    assert len(hashes) == 1
    size = len(file.read_bytes())
    assert blob_rows(engine_db) == [(hashes.pop(), size, 1)]
    assert chunk_bytes(engine_db) == (size, 1)
    assert len(Reader(engine_db).artifacts()) == 6


def test_a_name_without_track_id_gives_the_latest(engine_db):
    first, second = Tracker(engine_db), Tracker(engine_db)
    first.log_artifact(b"old", name="report.txt")
    second.log_artifact(b"new", name="report.txt")
    reader = Reader(engine_db)
    assert reader.artifact("report.txt") == b"new"
    assert reader.artifact("report.txt", track_id=first.track_id) == b"old"


def test_unknown_artifacts_list_what_exists(engine_db):
    tracker = Tracker(engine_db)
    tracker.log_artifact(b"x", name="confusion.png")
    tracker.log_artifact(b"y", name="metrics.csv")
    with pytest.raises(NotFoundError) as info:
        Reader(engine_db).artifact("confusion.pgn")
    message = str(info.value)
    assert "No artifact 'confusion.pgn'" in message and "Did you mean: confusion.png" in message
    assert "metrics.csv" in message
    with pytest.raises(NotFoundError, match="run 'nobody'"):
        Reader(engine_db).artifact("metrics.csv", track_id="nobody")
    with pytest.raises(KeyError):  # NotFoundError is a KeyError
        Reader(engine_db).artifact("0123456789abcdef")


def test_log_artifacts_keeps_the_folder_tree_and_download_writes_it_back(engine_db, tmp_path):
    out = tmp_path / "outputs"
    (out / "plots" / "deep").mkdir(parents=True)
    files = {
        "model.pt": os.urandom(3000),
        "plots/loss.png": b"\x89PNG fake",
        "plots/deep/a b.txt": "ünïcode name".encode(),
        "empty.txt": b"",
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
    tracker = Tracker(engine_db)
    names = tracker.log_artifacts(out, prefix="epoch-3")
    assert sorted(names) == sorted(f"epoch-3/{n}" for n in files)
    dest = tmp_path / "restored"
    written = Reader(engine_db).download_artifacts(tracker.track_id, dest)
    assert len(written) == len(files)
    for name, data in files.items():
        assert (dest / "epoch-3" / name).read_bytes() == data
    assert Reader(engine_db).artifacts().set_index("name").loc["epoch-3/empty.txt", "size"] == 0


def test_download_of_a_run_without_artifacts_names_the_runs_that_have_some(engine_db, tmp_path):
    tracker = Tracker(engine_db)
    tracker.log_artifact(b"x", name="x.bin")
    with pytest.raises(NotFoundError) as info:
        Reader(engine_db).download_artifacts("someone-else", tmp_path / "d")
    assert tracker.track_id in str(info.value)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "a/../../b", "", "  ", "a\x00b"])
def test_names_that_leave_the_folder_are_refused(engine_db, name):
    tracker = Tracker(engine_db)
    with pytest.raises((ValueError, TypeError), match="name"):
        tracker.log_artifact(b"data", name=name)
    assert Reader(engine_db).artifacts().empty
    assert blob_rows(engine_db) == []


def test_bad_sources_get_one_clear_error_and_write_nothing(engine_db, tmp_path):
    tracker = Tracker(engine_db)
    tracker.log_artifact(b"kept", name="kept.bin")
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        tracker.log_artifact(tmp_path / "missing.csv")
    with pytest.raises(IsADirectoryError, match="log_artifacts"):
        tracker.log_artifact(tmp_path)
    with pytest.raises(TypeError, match="file path, bytes"):
        tracker.log_artifact({"not": "a file"})
    with open(tmp_path / "f.bin", "wb") as handle:
        handle.write(b"x")
    with open(tmp_path / "f.bin", "rb") as handle, pytest.raises(TypeError, match="not an open file"):
        tracker.log_artifact(handle)
    with pytest.raises(NotADirectoryError):
        tracker.log_artifacts(tmp_path / "f.bin")
    with pytest.raises(TypeError, match="type"):
        tracker.log_artifact(b"x", type=3)
    assert Reader(engine_db).artifacts()["name"].tolist() == ["kept.bin"]
    assert Reader(engine_db).artifact("kept.bin") == b"kept"


def test_a_figure_is_stored_as_png_and_a_frame_as_parquet(engine_db):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import polars as pl

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])
    tracker = Tracker(engine_db)
    tracker.log_artifact(fig, name="curve.png")
    plt.close(fig)
    frame = pd.DataFrame({"y": [1, 2], "label": ["a", "b"]})
    digest = tracker.log_artifact(frame)
    tracker.log_artifact(pl.DataFrame({"z": [1.5]}), name="polars.parquet")
    reader = Reader(engine_db)
    listed = reader.artifacts().set_index("name")
    assert listed.loc["curve.png", "type"] == "figure"
    assert reader.artifact("curve.png").startswith(b"\x89PNG\r\n\x1a\n")
    assert listed.loc[f"{digest}.parquet", "type"] == "dataframe"
    back = pd.read_parquet(io.BytesIO(reader.artifact(digest)))
    pd.testing.assert_frame_equal(back, frame)
    assert pd.read_parquet(io.BytesIO(reader.artifact("polars.parquet")))["z"].tolist() == [1.5]


def test_bytes_above_the_blob_limit_are_chunked_not_refused(db):
    tracker = Tracker(db)
    data = os.urandom(20_000)
    conn = tracker._engine._live()  # stands for a SQLite build whose blob limit is small
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 5_000)
    with pytest.raises(sqlite3.DataError):  # one row could not hold it
        conn.execute("SELECT zeroblob(20000)").fetchone()
    digest = tracker.log_artifact(data, name="big.bin")
    [(_, size, chunks)] = blob_rows(db)
    assert size == 20_000 and chunks >= 8  # chunks of at most half the limit
    assert Reader(db).artifact(digest) == data


def test_large_files_are_written_in_several_transactions_and_read_back(db, tmp_path, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_SIZE", 1_000)
    import xetrack.artifacts as artifacts

    monkeypatch.setattr(artifacts, "BATCH_BYTES", 4_000)
    path = tmp_path / "big.bin"
    data = os.urandom(10_500)
    path.write_bytes(data)
    commits = []
    tracker = Tracker(db)
    tracker._engine._live().set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    digest = tracker.log_artifact(path)
    assert len(commits) >= 3  # batches of 4 chunks, then the last one makes it visible
    assert blob_rows(db) == [(digest, 10_500, 11)]
    assert Reader(db).artifact("big.bin") == data
    with Reader(db).open_artifact("big.bin") as stream:
        pieces = iter(lambda: stream.read(777), b"")
        assert b"".join(pieces) == data


@pytest.mark.parametrize("change", [b"line 2\n", None])
def test_a_file_that_changes_while_stored_is_refused(engine_db, tmp_path, monkeypatch, change):
    import xetrack.artifacts as artifacts

    path = tmp_path / "growing.log"
    path.write_bytes(b"line 1\n")
    original = artifacts.Source.digest

    def digest_then_change(self):
        value = original(self)
        if change is None:
            path.write_bytes(b"LINE 1\n")  # same size, other bytes
        else:
            with open(self.path, "ab") as handle:
                handle.write(change)
        return value

    monkeypatch.setattr(artifacts.FileSource, "digest", digest_then_change)
    tracker = Tracker(engine_db)
    with pytest.raises(ValueError, match="changed"):
        tracker.log_artifact(path)
    assert Reader(engine_db).artifacts().empty
    assert blob_rows(engine_db) == [] and chunk_bytes(engine_db) == (0, 0)


def test_a_50_mb_file_is_stored_and_read_back_in_bounded_memory(engine_db, tmp_path):
    size = 50 * 2**20
    path = tmp_path / "weights.bin"
    with open(path, "wb") as handle:
        for _ in range(50):
            handle.write(os.urandom(2**20))
    tracker = Tracker(engine_db)
    tracemalloc.start()
    try:
        tracker.log_artifact(path)
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        [written] = Reader(engine_db).download_artifacts(tracker.track_id, tmp_path / "out")
        _, read_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with Reader(engine_db).open_artifact("weights.bin") as stream:
            streamed = sum(len(piece) for piece in iter(lambda: stream.read(2**20), b""))
        _, stream_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(
        f"\n50 MB artifact, peak Python memory: write {write_peak / 2**20:.1f} MiB, "
        f"download {read_peak / 2**20:.1f} MiB, stream {stream_peak / 2**20:.1f} MiB"
    )
    assert streamed == size
    with open(path, "rb") as a, open(written, "rb") as b:
        assert a.read() == b.read()
    bound = 4 * chunks.CHUNK_SIZE  # a few chunks, whatever the file's size
    assert write_peak < bound and read_peak < bound and stream_peak < bound


def corrupt_first_chunk(db):
    raw_sql(db, "UPDATE xetrack_chunks SET data = ? WHERE seq = 0", (b"tampered",))


def test_corrupt_bytes_raise_naming_the_artifact_and_are_never_returned(engine_db, tmp_path):
    tracker = Tracker(engine_db)
    digest = tracker.log_artifact(b"the real weights", name="model.bin")
    corrupt_first_chunk(engine_db)
    reader = Reader(engine_db)
    with pytest.raises(IntegrityError, match=f"'model.bin' \\({digest}\\) is corrupt"):
        reader.artifact("model.bin")
    with pytest.raises(IntegrityError, match=r"model\.bin"):
        reader.artifact(digest)
    with pytest.raises(IntegrityError, match=r"model\.bin"):
        reader.download_artifacts(tracker.track_id, tmp_path / "out")
    assert not (tmp_path / "out" / "model.bin").exists()
    assert list((tmp_path / "out").iterdir()) == []  # no temporary file left either
    with pytest.raises(IntegrityError), reader.open_artifact("model.bin") as stream:
        stream.read()


def test_a_missing_chunk_is_reported_not_skipped(engine_db, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_SIZE", 4)
    tracker = Tracker(engine_db)
    tracker.log_artifact(b"0123456789", name="ten.bin")
    raw_sql(engine_db, "DELETE FROM xetrack_chunks WHERE seq = 1")
    with pytest.raises(IntegrityError, match="chunk 2 of 3 is missing"):
        Reader(engine_db).artifact("ten.bin")


def test_a_corrupt_asset_is_not_unpickled(db):
    tracker = Tracker(db)
    digest = tracker.log({"model": {1, 2, 3}})["model"]
    import cloudpickle

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE assets SET value = ? WHERE key = ?", (cloudpickle.dumps({6}), digest))
    with pytest.raises(IntegrityError, match=digest):
        Reader(db).assets[digest]
    with pytest.raises(IntegrityError):
        tracker.get(digest)


def test_deleting_a_run_keeps_shared_bytes_and_gc_frees_the_rest(engine_db):
    shared = os.urandom(5000)
    only_a = os.urandom(7000)
    a, b = Tracker(engine_db), Tracker(engine_db)
    a.log({"step": 1})
    a.log_artifact(shared, name="shared.bin")
    a.log_artifact(only_a, name="only.bin")
    b.log_artifact(shared, name="shared.bin")
    reader = Reader(engine_db)
    assert reader.delete_run(a.track_id) == 1
    assert a.track_id not in set(reader.artifacts()["track_id"])
    assert reader.artifact("shared.bin") == shared  # b still holds those bytes
    preview = reader.gc(dry_run=True)
    assert (preview.artifacts, preview.bytes) == (1, 7000)
    assert len(blob_rows(engine_db)) == 2  # a dry run removes nothing
    freed = reader.gc()
    assert (freed.assets, freed.artifacts, freed.bytes) == (0, 1, 7000)
    assert [h for h, _, _ in blob_rows(engine_db)] == [reader.artifacts()["hash"].iloc[0]]
    assert reader.artifact("shared.bin") == shared
    assert reader.gc().bytes == 0  # nothing left to free


def test_gc_keeps_objects_rows_point_at_and_removes_the_others(engine_db):
    tracker = Tracker(engine_db)
    kept = tracker.log({"model": {"kept", 1}})["model"]
    other = Tracker(engine_db)
    dropped = other.log({"model": {"dropped", 2}})["model"]
    reader = Reader(engine_db)
    reader.delete_run(other.track_id)
    result = reader.gc()
    assert result.assets == 1 and result.hashes == [dropped] and result.bytes > 0
    assert reader.assets[kept] == {"kept", 1}
    assert dropped not in reader.assets


@pytest.fixture
def multi_batch_file(tmp_path, monkeypatch):
    """A 9,000-byte file that uploads as 9 chunks in 5 transactions (2 chunks per batch)."""
    import xetrack.artifacts as artifacts

    monkeypatch.setattr(chunks, "CHUNK_SIZE", 1_000)
    monkeypatch.setattr(artifacts, "BATCH_BYTES", 2_000)
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(9_000))
    return path


def test_gc_removes_the_chunks_of_an_upload_that_never_finished(engine_db, multi_batch_file, monkeypatch):
    path = multi_batch_file
    tracker = Tracker(engine_db)
    calls = []
    original = keeper(engine_db).write_header

    def killed(*args):  # the process dies before the upload's last transaction
        calls.append(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(keeper(engine_db), "write_header", killed)
    with pytest.raises(KeyboardInterrupt):
        tracker.log_artifact(path)
    monkeypatch.setattr(keeper(engine_db), "write_header", original)
    assert calls and Reader(engine_db).artifacts().empty
    left, _ = chunk_bytes(engine_db)
    assert 0 < left < 9_000  # committed batches, invisible without their header
    with pytest.raises(NotFoundError):
        Reader(engine_db).artifact(calls[0][1])
    assert Reader(engine_db).gc().bytes == left
    assert chunk_bytes(engine_db) == (0, 0)
    tracker.log_artifact(path)  # logging it again works
    assert Reader(engine_db).artifact("big.bin") == path.read_bytes()


def test_gc_vacuum_gives_the_space_back(db):
    tracker = Tracker(db)
    tracker.log_artifact(os.urandom(3 * 2**20), name="big.bin")
    Reader(db).delete_run(tracker.track_id)
    result = Reader(db).gc(vacuum=True)
    assert result.bytes == 3 * 2**20
    assert result.file_bytes >= 3 * 2**20 and os.path.getsize(db) < 2**20
    assert not os.path.exists(db + "-wal") or os.path.getsize(db + "-wal") < 2**20


def test_skip_insert_stores_nothing_but_returns_the_hash(engine_db):
    digest = Tracker(Tracker.SKIP_INSERT).log_artifact(b"abc", name="a.txt")
    assert digest == Tracker(engine_db).log_artifact(b"abc", name="a.txt")


def _log_shared(args):
    db, data, batch = args
    import xetrack.artifacts as artifacts
    from xetrack.store import chunks

    chunks.CHUNK_SIZE = 64 * 1024
    artifacts.BATCH_BYTES = batch
    tracker = Tracker(db)
    return tracker.track_id, tracker.log_artifact(data, name="shared.bin")


def test_processes_logging_the_same_large_bytes_at_once_store_them_once(engine_db):
    data = os.urandom(2 * 2**20 + 123)
    Tracker(engine_db).log({"ready": 1})
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_log_shared, [(engine_db, data, 256 * 1024)] * 4)
    assert len({h for _, h in results}) == 1
    reader = Reader(engine_db)
    assert sorted(reader.artifacts()["track_id"]) == sorted(t for t, _ in results)
    assert len(blob_rows(engine_db)) == 1 and chunk_bytes(engine_db)[0] == len(data)
    assert reader.artifact("shared.bin") == data


def test_an_object_past_the_value_limit_says_to_log_a_file_instead(db, tmp_path):
    tracker = Tracker(db)
    tracker.log({"kept": 1})
    tracker._engine._live().setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 5_000)  # a small SQLite build
    big = set(range(3_000))
    with pytest.raises(ValueError, match="log_artifact"):
        tracker.log({"model": big})
    with pytest.raises(ValueError, match="more than SQLite's limit of 5,000 bytes"):
        tracker.register_model("big", big)
    assert len(Reader(db).to_df()) == 1 and len(Reader(db).assets) == 0 and Reader(db).models().empty
    import cloudpickle

    path = tmp_path / "big.pkl"
    path.write_bytes(cloudpickle.dumps(big))
    tracker.register_model("big", tracker.log_artifact(path))  # the way around it, in chunks
    assert cloudpickle.loads(Reader(db).load_model("big")) == big


def test_a_chunk_that_is_no_longer_bytes_is_damage_not_a_crash(db):
    Tracker(db).log_artifact(b"payload", name="p.bin")
    with sqlite3.connect(db) as conn:  # SQLite only: PostgreSQL's bytea column holds bytes alone
        conn.execute("UPDATE xetrack_chunks SET data = 'text now'")
    with pytest.raises(IntegrityError, match=r"'p\.bin'.*not bytes"):
        Reader(db).artifact("p.bin")


@pytest.mark.stress
def test_a_file_over_2_gb_is_stored_and_streamed_back(db, tmp_path):
    """make stress: 2.1 GB, past both 2**31 and SQLite's default 1 GB value limit."""
    import hashlib

    size = 2 * 2**30 + 100 * 2**20
    path = tmp_path / "huge.bin"
    block = os.urandom(2**20)
    expected = hashlib.sha256()
    with open(path, "wb") as handle:
        for i in range(size // 2**20):
            piece = block[i % 256 :] + block[: i % 256]  # every MiB differs
            handle.write(piece)
            expected.update(piece)
    tracker = Tracker(db)
    tracemalloc.start()
    digest = tracker.log_artifact(path)
    _, write_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    path.unlink()
    got = hashlib.sha256()
    with Reader(db).open_artifact(digest) as stream:
        for piece in iter(lambda: stream.read(2**20), b""):
            got.update(piece)
    print(f"\n2.1 GB artifact: write peak {write_peak / 2**20:.1f} MiB of Python memory")
    assert got.hexdigest() == expected.hexdigest()
    assert blob_rows(db)[0][1] == size and write_peak < 4 * chunks.CHUNK_SIZE


def test_downloaded_files_get_the_usual_permissions(engine_db, tmp_path):
    tracker = Tracker(engine_db)
    tracker.log_artifact(b"x", name="a.txt")
    [path] = Reader(engine_db).download_artifacts(tracker.track_id, tmp_path / "out")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_gc_during_a_large_upload_leaves_its_chunks_alone(engine_db, multi_batch_file, monkeypatch):
    path = multi_batch_file
    tracker = Tracker(engine_db)
    tracker.log({"step": 1})
    collected = []
    ops = keeper(engine_db)
    write = ops.write

    def write_then_gc(engine, body):  # another process runs gc between our transactions
        result = write(engine, body)
        collected.append(Reader(engine_db).gc())
        return result

    monkeypatch.setattr(ops, "write", write_then_gc)
    tracker.log_artifact(path)
    assert len(collected) >= 4 and sum(c.bytes for c in collected) == 0
    assert Reader(engine_db).artifact("big.bin") == path.read_bytes()
    assert _query(engine_db, "SELECT count(*) FROM xetrack_uploads", None) == [(0,)]


def _die_while_uploading(db, path):
    import xetrack.artifacts as artifacts
    from xetrack.store import chunks

    chunks.CHUNK_SIZE = 1_000
    artifacts.BATCH_BYTES = 2_000
    keeper(db).write_header = lambda *args: os._exit(9)  # killed before the last transaction
    Tracker(db).log_artifact(path)


def test_gc_removes_what_a_killed_upload_left(engine_db, tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(9_000))
    Tracker(engine_db).log({"step": 1})
    process = multiprocessing.get_context("spawn").Process(target=_die_while_uploading, args=(engine_db, str(path)))
    process.start()
    process.join(60)
    assert process.exitcode == 9
    left, _ = chunk_bytes(engine_db)
    assert left > 0 and _query(engine_db, "SELECT count(*) FROM xetrack_uploads", None) == [(1,)]
    assert Reader(engine_db).gc(dry_run=True).bytes == left
    assert _query(engine_db, "SELECT count(*) FROM xetrack_uploads", None) == [(1,)]  # a dry run changes nothing
    assert Reader(engine_db).gc().bytes == left
    assert chunk_bytes(engine_db) == (0, 0) and _query(engine_db, "SELECT count(*) FROM xetrack_uploads", None) == [
        (0,)
    ]


def _log_delete_relog(args):
    """A worker: log bytes, delete the run (its bytes become garbage), log them again in a
    new run, over and over; returns the runs it kept and their bytes."""
    db, seed = args
    import random

    rng = random.Random(seed)
    kept = {}
    for _ in range(12):
        data = b"shared-%d" % rng.randrange(3) * 50
        gone = Tracker(db)
        gone.log_artifact(data, name="x.bin")
        Reader(db).delete_run(gone.track_id)
        again = Tracker(db)
        again.log_artifact(data, name="x.bin")
        kept[again.track_id] = data
    return kept


def test_gc_racing_writers_never_removes_bytes_a_new_entry_points_at(engine_db):
    """Seeded: workers keep re-logging bytes that gc sees as garbage; every entry they
    kept must still read back."""
    Tracker(engine_db).log({"ready": 1})
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pending = pool.map_async(_log_delete_relog, [(engine_db, seed) for seed in (1, 2)])
        while not pending.ready():
            Reader(engine_db).gc()
        results = pending.get(120)
    reader = Reader(engine_db)
    for seed, kept in zip((1, 2), results):
        for track_id, data in kept.items():
            assert reader.artifact("x.bin", track_id=track_id) == data, f"seed {seed}, run {track_id}"
    reader.gc()
    assert len(blob_rows(engine_db)) == len({d for kept in results for d in kept.values()})
