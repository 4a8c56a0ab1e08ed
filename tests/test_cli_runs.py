"""`xt runs`, `xt compare`, `xt history`, run as a user runs them (a subprocess)."""

import json

from test_cli import fails, fingerprint, ok
from test_runs import make_runs


def test_xt_runs_where_order_limit_json(db):
    make_runs(db)
    before = fingerprint(db)
    out = json.loads(
        ok(
            "runs",
            db,
            "--where",
            "metrics.acc > 0.8 and params.model = 'rf' or model = 'lr'",
            "--order-by",
            "-acc",
            "--json",
        )
    )
    assert [r["track_id"] for r in out] == ["run-2", "run-1"] and out[0]["status"] == "finished"
    assert out[0]["acc"] == 1.1 and out[0]["model"] == "rf"
    table = ok("runs", db, "--order-by", "loss DESC", "--limit", "1", "--agg", "min")
    assert "run-0" in table and "run-2" not in table and "| track_id" in table
    assert fingerprint(db) == before  # reading changed nothing


def test_xt_runs_errors_are_one_line(db):
    make_runs(db)
    fails("runs", db, "--where", "acuracy > 1", match=r"'acuracy' not found.*Did you mean: acc")
    fails("runs", db, "--where", "acc > 1; DROP TABLE x", match="Cannot read the condition")
    fails("runs", db, "--order-by", "-los", match="Did you mean: loss")


def test_xt_compare(db):
    make_runs(db)
    out = json.loads(ok("compare", db, "run-0", "run-2", "--only-diff", "--json"))
    fields = {r["field"]: r for r in out}
    assert "model" not in fields and fields["lr"]["run-0"] == 0.1 and fields["lr"]["run-2"] == 0.3
    full = ok("compare", db, "run-0", "run-2")
    assert "| model" in full and "rf" in full
    fails("compare", db, "run-0", "run-7", match="Run 'run-7' not found.*Did you mean")


def test_xt_history_draws_and_summarizes(db):
    make_runs(db)
    out = ok("history", db, "acc", "--track-id", "run-2")
    assert "acc over steps (1 run)" in out and "step" in out
    assert "run-2" in out and "run-0" not in out and "1.1" in out
    points = json.loads(ok("history", db, "loss", "--json"))
    assert len(points) == 9 and points[0] == {"track_id": "run-0", "step": 0, "value": 1.0}
    fails("history", db, "acx", match="Did you mean: acc")
