"""The two ends of a copy (``xetrack.store.sqlite.copy*`` and ``pg_copy*``): twin modules
with the same functions, answering alike for the same data on either engine."""

import inspect
import random

import pytest

import xetrack
from xetrack import Tracker
from xetrack.store import features, open_engine

pytest.importorskip("psycopg", reason="the PostgreSQL end needs psycopg (pip install 'psycopg[binary]')")

FEATURES = ("copy", "copy_side")


def public_functions(module):
    return {
        name: inspect.signature(fn)
        for name, fn in vars(module).items()
        if inspect.isfunction(fn) and not name.startswith("_") and fn.__module__ == module.__name__
    }


@pytest.mark.parametrize("feature", FEATURES)
def test_every_postgres_end_function_has_a_sqlite_twin_of_the_same_signature(feature):
    import importlib

    sqlite_end = public_functions(importlib.import_module(f"xetrack.store.sqlite.{feature}"))
    pg_end = public_functions(importlib.import_module(f"xetrack.store.postgres.{feature}"))
    assert pg_end, f"pg_{feature} has no functions"
    missing = sorted(set(pg_end) - set(sqlite_end))
    assert not missing, f"sqlite_{feature} lacks {missing}"
    for name, signature in pg_end.items():
        assert list(signature.parameters) == list(sqlite_end[name].parameters), name


def log_random(path, seed):
    rng = random.Random(seed)
    for r in range(rng.randint(2, 4)):
        with Tracker(path, params={"seed": seed}) as run:
            run.track_id = f"run-{seed}-{r}"
            for step in range(rng.randint(1, 6)):
                run.log({"step": step, "loss": rng.random(), "ok": rng.random() < 0.5, "n": rng.randint(0, 9)})
            if rng.random() < 0.7:
                n = rng.randint(1, 5)
                run.log_predictions([rng.random() for _ in range(n)], [rng.random() for _ in range(n)], name="val")
            if rng.random() < 0.7:
                run.log_artifact(rng.randbytes(rng.randint(1, 3000)), name=f"notes/{r}.bin")
            if rng.random() < 0.5:
                run.register_model("net", {"w": rng.random()}, alias=f"a{r}")


def answers(engine, table, runs):
    ends, side = features(engine).copy, features(engine).copy_side
    pages = [dict(zip(names, row)) for names, rows in ends.pages(engine, table, 3) for row in rows]
    stamps = sorted(row["timestamp"] for row in pages)
    return {
        "rows": sorted(pages, key=lambda row: (row["track_id"], row["timestamp"])),
        "runs": sorted(ends.run_rows(engine, table)),
        "statuses": ends.run_statuses(engine, table),
        "pairs": ends.stored_pairs(engine, table, runs, None),
        "span": ends.stored_pairs(engine, table, runs, (stamps[0], stamps[(len(stamps) - 1) // 2])),
        "predictions": sorted(row for page in side.prediction_pages(engine, table, 2) for row in page),
        "artifacts": sorted(side.artifact_entries(engine, table, 2)),
        "versions": sorted(side.model_versions(engine)),
        "aliases": sorted(side.model_aliases(engine)),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_both_ends_answer_alike_for_the_same_data(tmp_path, pg_url, seed):
    laptop = str(tmp_path / "laptop.db")
    log_random(laptop, seed)
    xetrack.copy(laptop, pg_url)
    sqlite_end, pg_end = open_engine(laptop, create=False), open_engine(pg_url, create=False)
    try:
        runs = sorted({row[0] for row in features(sqlite_end).copy.run_rows(sqlite_end, "default")})
        ours, theirs = answers(sqlite_end, "default", runs), answers(pg_end, "default", runs)
        for key in ours:
            assert ours[key] == theirs[key], f"seed {seed}: {key} differ"
        assert len(ours["pairs"]) == len(ours["rows"]) > len(ours["span"]) > 0, f"seed {seed}"
        assert set(ours["statuses"].values()) == {"finished"}, f"seed {seed}"
    finally:
        sqlite_end.close()
        pg_end.close()
