"""Tracked functions: track() and wrap() log one row per call and return the result."""

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel

from xetrack import Reader, Tracker


def stored(db, engine):
    """The last row as another process would read it."""
    with Reader(db, engine=engine) as reader:
        return reader._engine.last_row(reader.table_name)  # latest() is the run's frame


def power(x: int, y: int) -> int:
    return x**y


def test_track_logs_one_row_and_returns_the_result(db, engine):
    tracker = Tracker(db, engine=engine)
    assert tracker.track(power, args=[2, 10]) == 1024
    assert tracker.track(power, args=[3], kwargs={"y": 2}) == 9
    first, second = Reader(db, engine=engine).to_df().to_dict("records")
    assert first["function_name"] == "power"
    assert json.loads(first["args"]) == [2, 10] and json.loads(first["kwargs"]) == {}
    assert first["error"] == "" and first["function_result"] == 1024
    assert 0 <= first["function_time"] < 1
    assert json.loads(second["args"]) == [3] and json.loads(second["kwargs"]) == {"y": 2}
    assert second["function_result"] == 9 and second["track_id"] == tracker.track_id


def test_wrap_as_in_the_readme(db, engine):
    tracker = Tracker(db, engine=engine, params={"name": "base", "model": "m1"})

    @tracker.wrap(params={"name": "foofoo"})
    def foo(a: int, b: str):
        return a + len(b)

    assert foo(1, "hello") == 6
    assert foo.__name__ == "foo"
    row = stored(db, engine)
    assert {k: row[k] for k in ("function_name", "args", "kwargs", "error", "function_result")} == {
        "function_name": "foo",
        "args": '[1, "hello"]',
        "kwargs": "{}",
        "error": "",
        "function_result": 6,
    }
    assert row["name"] == "foofoo" and row["model"] == "m1"  # the call's params win, for that row
    assert tracker.log({"x": 1})["name"] == "base"  # ...only for that row
    assert tracker.track(power, args=[2, 2], params={"model": "m2"}) == 4
    assert stored(db, engine)["model"] == "m2" and tracker.params["model"] == "m1"


def test_bare_wrap_decorator(db):
    tracker = Tracker(db)

    @tracker.wrap
    def double(x):
        return 2 * x

    assert double(x=21) == 42
    assert tracker.latest["function_result"] == 42 and tracker.latest["kwargs"] == '{"x": 21}'


def test_a_dict_result_becomes_columns(db, engine):
    tracker = Tracker(db, engine=engine)

    def evaluate(threshold):
        return {"accuracy": 0.9, "loss": 0.1, "error": "not the call's error"}

    assert tracker.track(evaluate, args=[0.5]) == {"accuracy": 0.9, "loss": 0.1, "error": "not the call's error"}
    row = stored(db, engine)
    assert row["accuracy"] == 0.9 and row["loss"] == 0.1
    assert row["error"] == ""  # the call's own columns win over result keys of the same name
    assert "function_result" not in row


def test_other_results_go_into_function_result(db, engine):
    tracker = Tracker(db, engine=engine)
    assert tracker.track(lambda: [1, 2, 3]) == [1, 2, 3]
    assert json.loads(stored(db, engine)["function_result"]) == [1, 2, 3]
    assert tracker.track(lambda: {1.5: "a float key"}) == {1.5: "a float key"}
    assert stored(db, engine)["function_result"] is not None
    assert tracker.track(lambda: None) is None
    assert tracker.latest["function_result"] is None  # None is stored as NULL; the key was logged


def test_an_object_result_is_stored_as_an_asset(db):
    tracker = Tracker(db)
    result = tracker.track(lambda: {1, 2})  # not a plain value: the asset store keeps it
    digest = tracker.latest["function_result"]
    assert len(digest) == 16 and tracker.get(digest) == result == {1, 2}


def test_a_raising_function_logs_its_error_then_raises(db, engine):
    tracker = Tracker(db, engine=engine)

    def fail(x):
        raise ValueError(f"bad input {x}")

    with pytest.raises(ValueError, match="bad input 3"):
        tracker.track(fail, args=[3])
    row = stored(db, engine)
    assert row["function_name"] == "fail" and row["error"] == "bad input 3"
    assert row["function_time"] >= 0 and "function_result" not in row

    with pytest.raises(KeyError):  # an error with no message still says what it was
        tracker.track(lambda: {}["missing"])
    assert stored(db, engine)["error"] == "'missing'"
    with pytest.raises(ZeroDivisionError):
        tracker.track(lambda: 1 / 0)


def test_raise_on_error_false_returns_none(db, engine):
    tracker = Tracker(db, engine=engine, raise_on_error=False)

    @tracker.wrap()
    def fail():
        raise RuntimeError()

    assert fail() is None
    assert stored(db, engine)["error"] == "RuntimeError"
    assert tracker.track(power, args=[2, 3]) == 8  # and the next call goes on
    assert [r["error"] for r in Reader(db, engine=engine).to_df().to_dict("records")] == ["RuntimeError", ""]


def test_arguments_that_json_cannot_hold_are_shown_by_repr(db):
    tracker = Tracker(db)

    class Thing:
        def __repr__(self):
            return "Thing()"

    tracker.track(lambda *a, **k: None, args=[Thing(), list(range(1000))], kwargs={"when": Thing()})
    row = tracker.latest
    args = json.loads(row["args"])
    assert args[0] == "Thing()"
    assert args[1][:3] == [0, 1, 2] and args[1][-1] == "... 900 more" and len(args[1]) == 101
    assert json.loads(row["kwargs"]) == {"when": "Thing()"}


def test_arguments_are_checked_before_the_call(db):
    tracker = Tracker(db)
    with pytest.raises(TypeError, match=r"args must be a list or tuple.*args=\[\.\.\.\]"):
        tracker.track(power, "2")
    with pytest.raises(TypeError, match="kwargs must be a dict"):
        tracker.track(power, [2], [3])
    with pytest.raises(TypeError, match="takes a function"):
        tracker.track(5)
    assert len(tracker) == 0


def test_skip_insert_still_returns_the_result():
    tracker = Tracker(Tracker.SKIP_INSERT)
    assert tracker.track(power, args=(2, 5)) == 32


# -- unpacking dataclass and pydantic arguments -----------------------------------
@dataclass
class Optimizer:
    lr: float = 0.01
    betas: tuple = (0.9, 0.999)
    schedule: str | None = None


@dataclass(frozen=True)
class Frozen:
    depth: int
    widths: list = field(default_factory=lambda: [64, 32], hash=False)


@dataclass
class Config:
    optimizer: Optimizer
    frozen: Frozen
    tags: list = field(default_factory=list)


class OptimizerModel(BaseModel):
    lr: float = 0.1
    momentum: float | None = None
    layers: list = [8, 4]
    shape: tuple = (2, 3)


class ConfigModel(BaseModel):
    optimizer: OptimizerModel
    name: str = "baseline"


def train(cfg, *rest, seed=0, **options):
    return seed


def test_dataclass_arguments_are_unpacked_recursively(db, engine):
    tracker = Tracker(db, engine=engine)
    cfg = Config(Optimizer(lr=0.001), Frozen(3), tags=["a", "b"])
    assert tracker.track(train, args=[cfg], kwargs={"seed": 7}) == 7
    row = stored(db, engine)
    assert row["cfg_optimizer_lr"] == 0.001
    assert json.loads(row["cfg_optimizer_betas"]) == [0.9, 0.999]  # a tuple field is JSON
    assert row["cfg_frozen_depth"] == 3 and json.loads(row["cfg_frozen_widths"]) == [64, 32]
    assert json.loads(row["cfg_tags"]) == ["a", "b"]
    assert json.loads(row["args"])[0]["optimizer"]["lr"] == 0.001
    assert "seed_" not in " ".join(row)  # plain arguments are not unpacked


def test_a_none_field_is_kept(db, engine):
    tracker = Tracker(db, engine=engine)
    tracker.track(train, args=[Optimizer(schedule=None)])
    tracker.track(train, args=[Optimizer(schedule="cosine")])
    frame = Reader(db, engine=engine).to_df()
    assert frame["cfg_schedule"].isna().tolist() == [True, False]
    assert frame["cfg_lr"].tolist() == [0.01, 0.01]


def test_pydantic_models_are_unpacked_like_dataclasses(db, engine):
    tracker = Tracker(db, engine=engine)
    tracker.track(train, args=[ConfigModel(optimizer=OptimizerModel(lr=0.5))])
    row = stored(db, engine)
    assert row["cfg_optimizer_lr"] == 0.5 and row["cfg_name"] == "baseline"
    assert json.loads(row["cfg_optimizer_layers"]) == [8, 4]
    assert json.loads(row["cfg_optimizer_shape"]) == [2, 3]
    assert "cfg_optimizer_momentum" not in row  # None: the column waits for a real value
    tracker.track(train, args=[ConfigModel(optimizer=OptimizerModel(momentum=0.9))])
    assert stored(db, engine)["cfg_optimizer_momentum"] == 0.9


def test_var_positional_and_keyword_dataclasses_are_named(db):
    tracker = Tracker(db)
    tracker.track(train, args=[Optimizer(lr=1.0), Frozen(1), Frozen(2)], kwargs={"extra": Optimizer(lr=3.0)})
    row = tracker.latest
    assert row["cfg_lr"] == 1.0
    assert row["rest_0_depth"] == 1 and row["rest_1_depth"] == 2
    assert row["extra_lr"] == 3.0


def test_arguments_of_a_function_without_signature_get_positional_names(db):
    tracker = Tracker(db)
    assert tracker.track(max, args=[Frozen(1), Frozen(1)], kwargs={"key": repr}) == Frozen(1)
    assert tracker.latest["args_0_depth"] == 1 and tracker.latest["args_1_depth"] == 1


@dataclass
class Node:
    name: str
    next: Any = None


def test_cycles_are_cut_off(db, engine):
    tracker = Tracker(db, engine=engine)
    loop = Node("a")
    loop.next = loop
    pair = Node("x", Node("y"))
    pair.next.next = pair
    assert tracker.track(lambda node, other: "ok", args=[loop, pair]) == "ok"
    row = stored(db, engine)
    assert row["node_name"] == "a" and row["node_next"] == "<cycle: Node>"
    assert row["other_next_name"] == "y" and row["other_next_next"] == "<cycle: Node>"
    assert json.loads(row["args"])[0] == {"name": "a", "next": "<cycle: Node>"}


def test_nesting_deeper_than_ten_levels_is_cut_off(db):
    tracker = Tracker(db)
    chain = Node("0")
    for i in range(1, 30):
        chain = Node(str(i), chain)
    tracker.track(lambda node: None, args=[chain])
    row = tracker.latest
    ten_levels = "node" + "_next" * 9
    assert row[ten_levels + "_name"] == "20"  # the tenth dataclass is unpacked
    assert row[ten_levels + "_next"] == "<deeper than 10 levels: Node>"
    assert not any(k.startswith(ten_levels + "_next_") for k in row)


def test_a_cyclic_list_field_does_not_crash(db):
    tracker = Tracker(db)
    items: list = [1]
    items.append(items)
    tracker.track(lambda cfg: None, args=[Optimizer(betas=items)])
    assert json.loads(tracker.latest["cfg_betas"]) == [1, "<cycle: list>"]


def test_a_result_no_row_can_hold_is_returned_and_logged_as_its_repr(tmp_path):
    """The function already ran: its result must not be lost to a storage error."""
    tracker = Tracker(str(tmp_path / "repr.db"))
    lock = threading.Lock()
    with pytest.warns(UserWarning, match="repr"):
        assert tracker.track(lambda: lock) is lock
    assert "lock" in tracker.latest["function_result"]
    with pytest.warns(UserWarning):
        assert tracker.track(pow, args=[2, 100]) == 2**100
    assert tracker.latest["function_result"] == str(2**100)
    assert tracker.track(lambda: {"a": 1}) == {"a": 1}  # storable results are untouched
    assert tracker.latest["a"] == 1
