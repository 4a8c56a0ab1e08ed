"""A long run's curve is downsampled inside SQLite, bucket by bucket (xetrack/ui/data.py):
the points it sends must be real points of the run, in order, with its extremes and ends."""

import random
import warnings

import pytest

pytest.importorskip("starlette", reason="the ui extra: pip install 'xetrack[ui]'")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from xetrack import Reader, Tracker
from xetrack.store.sqlite.runs import BUCKET_ABOVE
from xetrack.ui.app import create_app
from xetrack.ui.data import MAX_POINTS


def dashboard(db, **options):
    """The app over ``db``, its Readers opened as ``Reader.ui()`` opens them."""
    return create_app(lambda table: Reader(db, table=table, persist_summary=False), **options)


N = BUCKET_ABOVE + 30_000


@pytest.fixture(scope="module", params=["dense", "sparse"])
def long_run(tmp_path_factory, request):
    """A run of N points; "sparse": another run's rows make most of its rowid span, so the
    buckets are read through the track_id index instead of in rowid order."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    db = str(tmp_path_factory.mktemp("curve") / "long.db")
    values = [rng.gauss(0, 1) for _ in range(N)]
    low, high = rng.randrange(N), rng.randrange(N)
    values[low], values[high] = -100.0, 100.0
    main, other = Tracker(db), Tracker(db)
    done = 0
    while done < N:  # another run's rows in between: the run's rowids have gaps
        size = rng.randrange(1, 20_000)
        main.log_batch([{"step": s, "loss": values[s]} for s in range(done, min(done + size, N))])
        others = rng.randrange(0, 3_000) if request.param == "dense" else 4 * size
        other.log_batch([{"step": 0, "loss": 0.0}] * others)
        done += size
    yield {"db": db, "run": main.track_id, "values": values, "seed": seed, "tracker": main}
    main.close()
    other.close()


def curve(db, **params):
    with TestClient(dashboard(db)) as client:
        response = client.get("/api/curve", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_long_curve_keeps_real_points_its_extremes_and_ends(long_run):
    values, seed = long_run["values"], long_run["seed"]
    body = curve(long_run["db"], run=long_run["run"], metric="loss")
    xs, ys = body["x"], body["y"]
    assert body["n"] == N, f"seed {seed}"
    assert 2 * 100 < len(xs) <= MAX_POINTS, f"seed {seed}"
    assert xs == sorted(set(xs)), f"seed {seed}"
    assert all(values[x] == y for x, y in zip(xs, ys)), f"seed {seed}"
    assert min(ys) == -100.0 and max(ys) == 100.0, f"seed {seed}"
    assert xs[0] == 0 and xs[-1] == N - 1, f"seed {seed}"


def test_the_live_cursor_of_a_long_curve_brings_only_new_points(long_run):
    body = curve(long_run["db"], run=long_run["run"], metric="loss")
    long_run["tracker"].log_batch([{"step": N + i, "loss": float(i)} for i in range(10)])
    newer = curve(long_run["db"], run=long_run["run"], metric="loss", after=body["cursor"])
    assert newer["x"] == list(range(N, N + 10)) and newer["y"] == [float(i) for i in range(10)]
    assert newer["cursor"] > body["cursor"]


def test_text_among_the_numbers_is_left_out_as_in_a_short_curve(tmp_path):
    db = str(tmp_path / "mixed.db")
    with Tracker(db) as run:
        run.log_batch([{"step": s, "loss": float(s % 7)} for s in range(N)])
        run.log({"step": N, "loss": "diverged"})  # a later value of another type, stored as given
        run.log({"step": N + 1, "loss": 3.5})
        body = curve(db, run=run.track_id, metric="loss")
    assert "diverged" not in body["y"] and body["x"][-1] == N + 1
    assert len(body["x"]) <= MAX_POINTS and max(body["y"]) == 6.0 and min(body["y"]) == 0.0
