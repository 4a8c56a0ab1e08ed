"""Result caching: Tracker(cache=dir) serves repeated calls from disk, with track_id lineage."""

import os
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from xetrack import Reader, Tracker
from xetrack.cache import UncacheableArgumentWarning

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "cache_dir")


CALLS: list = []


def expensive_computation(x, y):
    CALLS.append((x, y))
    return x**y


def scores(name):
    CALLS.append(name)
    return {"accuracy": 0.75, "name_length": len(name)}


@pytest.fixture(autouse=True)
def no_calls_yet():
    CALLS.clear()


def rows(db, engine="sqlite"):
    return Reader(db, engine=engine).to_df()


def test_the_readme_basic_usage(db, cache_dir, engine):
    tracker = Tracker(db=db, cache=cache_dir, engine=engine)
    assert tracker.track(expensive_computation, args=[2, 10]) == 1024  # computed
    assert tracker.track(expensive_computation, args=[2, 10]) == 1024  # hit
    assert tracker.track(expensive_computation, args=[3, 10]) == 59049  # other args
    assert tracker.track(expensive_computation, args=[2, 10], params={"model": "v2"}) == 1024  # other params
    assert tracker.track(expensive_computation, args=[2, 10], params={"model": "v2"}) == 1024  # hit
    assert CALLS == [(2, 10), (3, 10), (2, 10)]
    frame = rows(db, engine)
    me = tracker.track_id
    assert frame["cache"].tolist() == ["", me, "", "", me]
    assert frame["function_result"].tolist() == [1024, 1024, 59049, 1024, 1024]
    assert frame["function_time"][1] == 0.0 and frame["function_time"][4] == 0.0
    assert frame["model"].isna().tolist() == [True, True, True, False, False]


def test_a_hit_points_at_the_run_that_computed_it(db, cache_dir, engine):
    first = Tracker(db, cache=cache_dir, engine=engine)
    first.track(scores, args=["resnet"])
    second = Tracker(db, cache=cache_dir, engine=engine)  # another run, e.g. tomorrow
    assert second.track(scores, args=["resnet"]) == {"accuracy": 0.75, "name_length": 6}
    assert CALLS == ["resnet"]
    frame = rows(db, engine)[["function_name", "function_time", "cache", "track_id", "accuracy", "name_length"]]
    computed, hit = frame.to_dict("records")
    assert computed["cache"] == "" and computed["track_id"] == first.track_id
    assert hit["cache"] == first.track_id and hit["track_id"] == second.track_id
    assert hit["function_time"] == 0.0
    assert (hit["accuracy"], hit["name_length"]) == (computed["accuracy"], computed["name_length"])


def test_without_a_cache_there_is_no_cache_column(db):
    tracker = Tracker(db)
    tracker.track(expensive_computation, args=[2, 2])
    tracker.track(expensive_computation, args=[2, 2])
    assert len(CALLS) == 2 and "cache" not in Reader(db).columns


def test_keyword_and_positional_arguments_are_one_call(cache_dir):
    tracker = Tracker(Tracker.IN_MEMORY, cache=cache_dir)
    tracker.track(expensive_computation, args=[2], kwargs={"y": 3})
    tracker.track(expensive_computation, kwargs={"y": 3, "x": 2})
    tracker.track(expensive_computation, args=(2, 3))
    assert CALLS == [(2, 3)]
    tracker.track(expensive_computation, args=[2.0, 3])  # 2.0 == 2, but another type
    tracker.track(expensive_computation, args=[True, 3])
    assert CALLS == [(2, 3), (2.0, 3), (True, 3)]


def test_wrap_caches_too(cache_dir, db):
    tracker = Tracker(db, cache=cache_dir)

    @tracker.wrap(params={"name": "foofoo"})
    def add(a, b):
        CALLS.append((a, b))
        return a + b

    assert [add(1, 2), add(1, 2), add(a=1, b=2)] == [3, 3, 3]
    assert CALLS == [(1, 2)]
    assert rows(db)["cache"].tolist() == ["", tracker.track_id, tracker.track_id]


def test_exceptions_are_never_cached(db, cache_dir):
    tracker = Tracker(db, cache=cache_dir)
    attempts = []

    def flaky(x):
        attempts.append(x)
        if len(attempts) == 1:
            raise ConnectionError("try again")
        return x

    with pytest.raises(ConnectionError):
        tracker.track(flaky, args=[1])
    assert tracker.track(flaky, args=[1]) == 1  # computed: the failure was not stored
    assert tracker.track(flaky, args=[1]) == 1  # now from the cache
    assert attempts == [1, 1]
    assert rows(db)["error"].tolist() == ["try again", "", ""]
    assert rows(db)["cache"].tolist() == ["", "", tracker.track_id]


def test_cache_force_recomputes_and_later_hits_point_at_the_refresh(db, cache_dir, engine):
    old = Tracker(db, cache=cache_dir, engine=engine)
    old.track(expensive_computation, args=[2, 4])
    refresh = Tracker(db, cache=cache_dir, engine=engine)
    assert refresh.track(expensive_computation, args=[2, 4], cache_force=True) == 16
    later = Tracker(db, cache=cache_dir, engine=engine)
    later.track(expensive_computation, args=[2, 4])
    assert CALLS == [(2, 4), (2, 4)]
    assert rows(db, engine)["cache"].tolist() == ["", "", refresh.track_id]
    key = old._generate_cache_key(expensive_computation, [2, 4], {}, {})
    assert Reader.read_cache(cache_dir, key) == {"result": 16, "cache": refresh.track_id}


def test_a_failed_forced_call_keeps_the_old_entry(cache_dir):
    tracker = Tracker(Tracker.IN_MEMORY, cache=cache_dir, raise_on_error=False)
    state = {"fail": False}

    def sometimes(x):
        if state["fail"]:
            raise RuntimeError("down")
        return x * 10

    tracker.track(sometimes, args=[1])
    state["fail"] = True
    assert tracker.track(sometimes, args=[1], cache_force=True) is None
    assert tracker.track(sometimes, args=[1]) == 10


# -- what makes a key -------------------------------------------------------------
class Config:
    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return hash(self.value)

    def __eq__(self, other):
        return isinstance(other, Config) and self.value == other.value


class HashableList:
    def __init__(self, items):
        self.items = tuple(items)

    def __hash__(self):
        return hash(self.items)

    def __eq__(self, other):
        return isinstance(other, HashableList) and self.items == other.items


@dataclass(frozen=True)
class Point:
    x: int
    y: int


@dataclass(frozen=True)
class Segment:
    start: Point
    end: Point


@dataclass
class MutablePoint:
    x: int
    y: int


class FrozenModel(BaseModel):
    model_config = ConfigDict(frozen=True)
    lr: float


def process(item):
    CALLS.append(item)
    return repr(item)


def test_equal_hashable_objects_hit_the_same_entry(cache_dir):
    tracker = Tracker(Tracker.IN_MEMORY, cache=cache_dir)
    for make in (
        lambda: Config("production"),
        lambda: HashableList([1, 2, 3]),
        lambda: Point(1, 2),
        lambda: Segment(Point(0, 0), Point(1, 1)),
        lambda: FrozenModel(lr=0.1),
        lambda: (1, "a", (2.5, None), frozenset({3, 4})),
    ):
        tracker.track(process, args=[make()])
        tracker.track(process, args=[make()])  # another instance, equal
    assert len(CALLS) == 6
    assert tracker.latest["cache"] == tracker.track_id
    tracker.track(process, args=[Point(2, 1)])
    assert len(CALLS) == 7


def test_unhashable_arguments_skip_the_cache_with_one_warning_per_type(db, cache_dir):
    tracker = Tracker(db, cache=cache_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracker.track(process, args=[[1, 2, 3]])
        tracker.track(process, args=[[1, 2, 3]])  # computed again, no second warning
        tracker.track(process, kwargs={"item": {"a": 1}})
        tracker.track(process, args=[MutablePoint(1, 2)])
        tracker.track(process, args=[MutablePoint(1, 2)])
        tracker.track(process, args=[{1, 2}])
        tracker.track(process, args=[object()])  # hashed by identity
    messages = [str(w.message) for w in caught if w.category is UncacheableArgumentWarning]
    assert len(messages) == 5, messages
    assert "argument 'item' is unhashable (builtins.list)" in messages[0]
    assert "builtins.dict" in messages[1] and "MutablePoint" in messages[2] and "builtins.set" in messages[3]
    assert "hashed by identity" in messages[4]
    assert all(w.filename == __file__ for w in caught)  # points at the caller's line
    assert len(CALLS) == 7
    assert "cache" not in Reader(db).columns  # not cacheable: no lineage at all
    assert list(Reader.scan_cache(cache_dir)) == []


def test_warnings_false_keeps_quiet(cache_dir):
    tracker = Tracker(Tracker.IN_MEMORY, cache=cache_dir, warnings=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracker.track(process, args=[[1]])
    assert len(CALLS) == 1


def test_generate_cache_key(cache_dir):
    tracker = Tracker(Tracker.IN_MEMORY, cache=cache_dir)
    key = tracker._generate_cache_key(expensive_computation, [2, 10], {}, {})
    assert key.startswith("expensive_computation:")
    assert key == tracker._generate_cache_key(expensive_computation, (2,), {"y": 10}, None)
    assert key != tracker._generate_cache_key(expensive_computation, [2, 10], {}, {"model": "v2"})
    assert tracker._generate_cache_key(expensive_computation, [[2], 10], {}, {}) is None
    assert tracker._generate_cache_key(
        expensive_computation, [2, 10], {}, {"layers": [64, 32]}
    ) == tracker._generate_cache_key(expensive_computation, [2, 10], {}, {"layers": [64, 32]})


def test_keys_are_stable_across_processes(cache_dir):
    """hash() of a str changes with every process; keys must not."""
    code = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        from test_cache import Point, Segment, expensive_computation
        from xetrack import Tracker
        t = Tracker(Tracker.IN_MEMORY)
        print(t._generate_cache_key(expensive_computation, ["text", Segment(Point(1, 2), Point(3, 4))],
                                    {}, {"model": "v2", "tags": ["a"]}))
        """
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", code, str(ROOT / "tests")],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(keys) == 1 and None not in keys and "None" not in keys


# -- Reader: read, scan, delete ---------------------------------------------------
def test_read_scan_and_delete_through_reader(db, cache_dir):
    first = Tracker(db, cache=cache_dir)
    first.track(expensive_computation, args=[2, 10])
    first.track(expensive_computation, args=[3, 2])
    second = Tracker(db, cache=cache_dir)
    second.track(expensive_computation, args=[5, 2])
    second.track(expensive_computation, args=[2, 10])  # a hit: the entry stays first's

    key = first._generate_cache_key(expensive_computation, [2, 10], {}, {})
    assert Reader.read_cache(cache_dir, key) == {"result": 1024, "cache": first.track_id}
    assert Reader.read_cache(cache_dir, "expensive_computation:missing") is None

    scanned = dict(Reader.scan_cache(cache_dir))
    assert sorted(e["result"] for e in scanned.values()) == [9, 25, 1024]
    assert scanned[key]["cache"] == first.track_id

    assert Reader.delete_cache_by_track_id(cache_dir, first.track_id) == 2
    assert Reader.delete_cache_by_track_id(cache_dir, first.track_id) == 0
    assert [e["cache"] for _, e in Reader.scan_cache(cache_dir)] == [second.track_id]
    second.track(expensive_computation, args=[2, 10])  # deleted, so computed again
    assert CALLS.count((2, 10)) == 2


def test_reader_never_creates_a_cache(tmp_path):
    missing = tmp_path / "nowhere"
    for call in (
        lambda: Reader.read_cache(missing, "k"),
        lambda: Reader.scan_cache(missing),
        lambda: Reader.delete_cache_by_track_id(missing, "run"),
    ):
        with pytest.raises(FileNotFoundError, match="cache"):
            call()
    assert not missing.exists()


def test_in_memory_and_skip_insert_trackers_cache(cache_dir):
    Tracker(Tracker.SKIP_INSERT, cache=cache_dir).track(expensive_computation, args=[7, 2])
    memory = Tracker(Tracker.IN_MEMORY, cache=cache_dir)
    assert memory.track(expensive_computation, args=[7, 2]) == 49
    assert CALLS == [(7, 2)] and memory.latest["function_time"] == 0.0


def test_a_result_that_cannot_be_pickled_is_returned_but_not_cached(cache_dir):
    tracker = Tracker(Tracker.IN_MEMORY, cache=cache_dir)

    def make_scaler(n):
        CALLS.append(n)
        return lambda x: n * x  # pickle refuses a local function (the asset store's cloudpickle takes it)

    with pytest.warns(UncacheableArgumentWarning, match=r"make_scaler\(\) was not cached"):
        scale = tracker.track(make_scaler, args=[3])
    assert scale(2) == 6
    assert tracker.track(make_scaler, args=[3])(2) == 6
    assert CALLS == [3, 3] and list(Reader.scan_cache(cache_dir)) == []


def test_a_diskcache_object_can_be_given(tmp_path):
    import diskcache

    with diskcache.Cache(str(tmp_path / "dc")) as own:
        tracker = Tracker(Tracker.IN_MEMORY, cache=own)
        tracker.track(expensive_computation, args=[2, 2])
        tracker.track(expensive_computation, args=[2, 2])
        assert len(own) == 1 and CALLS == [(2, 2)]
    with pytest.raises(TypeError, match=r"directory path or a diskcache\.Cache"):
        Tracker(Tracker.IN_MEMORY, cache=42)


CHILD = """
import sys
sys.path.insert(0, sys.argv[3])
from test_cache import CALLS, expensive_computation
from xetrack import Tracker
tracker = Tracker(sys.argv[1], cache=sys.argv[2])
print(tracker.track(expensive_computation, args=[6, 2]), tracker.track(expensive_computation, args=[8, 2]), len(CALLS))
print(tracker.track_id)
"""


def test_hits_across_processes(db, cache_dir, engine):
    parent = Tracker(db, cache=cache_dir, engine=engine)
    parent.track(expensive_computation, args=[6, 2])
    out = subprocess.run(
        [sys.executable, "-c", CHILD, db, cache_dir, str(ROOT / "tests")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    results, child_id = out.stdout.strip().splitlines()
    assert results == "36 64 1"  # the child computed only 8**2
    parent.track(expensive_computation, args=[8, 2])  # ...which the parent now gets from it
    assert CALLS == [(6, 2)]
    frame = rows(db, engine)
    assert frame[["track_id", "cache"]].values.tolist() == [
        [parent.track_id, ""],
        [child_id, parent.track_id],
        [child_id, ""],
        [parent.track_id, child_id],
    ]


def test_processes_sharing_a_cache_at_once(db, cache_dir):
    """Four processes tracking the same calls at once: every row lands, every hit is lineage."""
    code = CHILD.replace("args=[6, 2]", "args=[4, 2]")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, db, cache_dir, str(ROOT / "tests")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outputs]
    frame = rows(db)
    assert len(frame) == 8 and set(frame["function_result"]) == {16, 64}
    computed = frame[frame["cache"] == ""]
    assert 2 <= len(computed) <= 8
    assert set(frame.loc[frame["cache"] != "", "cache"]) <= set(frame["track_id"])


@dataclass(frozen=True)
class Scaler:
    factor: int

    def scale(self, x):
        CALLS.append((self.factor, x))
        return self.factor * x


def test_functions_that_share_a_name_are_told_apart(cache_dir):
    import functools

    tracker = Tracker(Tracker.IN_MEMORY, cache=cache_dir)
    double = lambda x: 2 * x  # noqa: E731
    triple = lambda x: 3 * x  # noqa: E731
    assert [tracker.track(double, args=[5]), tracker.track(triple, args=[5])] == [10, 15]
    assert [tracker.track(Scaler(2).scale, args=[5]), tracker.track(Scaler(3).scale, args=[5])] == [10, 15]
    assert tracker.track(Scaler(2).scale, args=[5]) == 10  # an equal object: a hit
    assert [
        tracker.track(functools.partial(expensive_computation, 2), args=[3]),
        tracker.track(functools.partial(expensive_computation, 3), args=[3]),
    ] == [8, 27]
    assert CALLS == [(2, 5), (3, 5), (2, 3), (3, 3)]
    assert tracker.latest["function_name"] == "expensive_computation"


def test_tracker_params_are_part_of_the_key(tmp_path):
    """Spec: 'Different tracker params create separate cache entries'."""
    cache = str(tmp_path / "cache")
    db = str(tmp_path / "keys.db")
    v1 = Tracker(db, params={"model": "v1"}, cache=cache)
    v1.track(expensive_computation, args=[3, 3])
    assert v1.latest["cache"] == ""
    v2 = Tracker(db, params={"model": "v2"}, cache=cache)
    v2.track(expensive_computation, args=[3, 3])
    assert v2.latest["cache"] == ""  # other tracker params: computed again
    again = Tracker(db, params={"model": "v1"}, cache=cache)
    again.track(expensive_computation, args=[3, 3])
    assert again.latest["cache"] == v1.track_id  # same params: a hit from the v1 run
    overridden = Tracker(db, params={"model": "v2"}, cache=cache)
    overridden.track(expensive_computation, args=[3, 3], params={"model": "v1"})
    assert overridden.latest["cache"] == v1.track_id  # the call's params win
    key = again._generate_cache_key(expensive_computation, [3, 3], {}, {})
    assert Reader.read_cache(cache, key) == {"result": 27, "cache": v1.track_id}


def test_entries_of_a_class_only_the_script_has_are_listed_and_deleted(tmp_path):
    """The CLI (another process, without the user's classes) still sees lineage and deletes."""
    cache = str(tmp_path / "cache")
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(f"""
        from dataclasses import dataclass
        from xetrack import Tracker

        @dataclass(frozen=True)
        class Score:
            value: float

        def score(x):
            return Score(x / 2)

        tracker = Tracker(Tracker.SKIP_INSERT, cache={cache!r})
        tracker.track_id = "script-run"
        tracker.track(score, args=[3])
        print(tracker.latest is None)
    """)
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    entries = list(Reader.scan_cache(cache))  # this process has no Score class
    assert len(entries) == 1
    _, entry = entries[0]
    assert entry["cache"] == "script-run" and "unreadable here" in entry["result"]
    assert Reader.delete_cache_by_track_id(cache, "script-run") == 1
    assert list(Reader.scan_cache(cache)) == []
