"""Run metadata: tags, run names, recorded param/metric kinds, table descriptions."""

import random
import sqlite3

import pytest
from typer.testing import CliRunner

from xetrack import Reader, Tracker
from xetrack.cli import app


def sweep(db, n=3):
    for i in range(n):
        with Tracker(db, params={"lr": 0.1 * (i + 1), "model": "rf"}, track_id=f"r{i}", run_name=f"lr-{i}") as t:
            for step in range(3):
                t.log({"step": step, "loss": 1.0 / (step + 1 + i)})
            t.set_tag("team", "vision" if i else "nlp")
    return Reader(db)


def test_tags_show_in_runs_and_compare_and_filter_search(db):
    reader = sweep(db)
    runs = reader.runs()
    assert runs["tags.team"].tolist() == ["nlp", "vision", "vision"]
    assert reader.search("tags.team = 'vision'")["track_id"].tolist() == ["r1", "r2"]
    assert reader.search("tag.team != 'vision'")["track_id"].tolist() == ["r0"]
    assert reader.search(order_by="tags.team DESC, track_id")["track_id"].tolist() == ["r1", "r2", "r0"]
    compared = reader.compare(["r0", "r2"]).set_index("field")
    assert compared.loc["tags.team"].tolist() == ["nlp", "vision"]
    assert compared.loc["run_name"].tolist() == ["lr-0", "lr-2"]


def test_tags_are_a_side_table_not_columns(db):
    sweep(db, 1)
    columns = [r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info('default')")]
    assert not any(c.startswith("tags") or c == "team" for c in columns)
    assert Reader(db).to_df().shape[0] == 3


def test_reader_set_and_delete_tag_and_the_cached_frames_follow(db):
    reader = sweep(db)
    reader.runs(), reader.runs()  # the second call builds the summary and caches the frame
    reader.search("loss < 2"), reader.search("loss < 2")
    reader.set_tag("r0", "team", "vision")
    assert reader.runs()["tags.team"].tolist() == ["vision"] * 3
    assert len(reader.search("tags.team = 'vision'")) == 3
    assert reader.delete_tag("r0", "team") is True
    assert reader.delete_tag("r0", "team") is False
    assert reader.runs()["tags.team"].isna().tolist() == [True, False, False]
    reader.set_tag("r1", "stage", 2)  # kept as text, as MLflow keeps it
    assert reader.tags("r1") == {"stage": "2", "team": "vision"}
    assert Reader(db).search("tags.stage = '2'")["track_id"].tolist() == ["r1"]


def test_a_second_reader_sees_tag_changes_of_the_first(db):
    sweep(db)
    other = Reader(db)
    other.runs(), other.runs()
    Reader(db).set_tag("r2", "team", "audio")
    assert other.runs()["tags.team"].tolist() == ["nlp", "vision", "audio"]


def test_tags_of_an_unknown_run_or_a_bad_value_are_refused_and_nothing_changes(db):
    reader = sweep(db)
    with pytest.raises(KeyError, match="Run 'nope' not found in table 'default'"):
        reader.set_tag("nope", "team", "x")
    with pytest.raises(TypeError, match="Tag 'team': the value must be a str, int, float or bool, got None"):
        reader.set_tags("r0", {"a": "1", "team": None})
    with pytest.raises(TypeError, match="A tag key must be a non-empty str"):
        reader.set_tag("r0", "", "x")
    assert reader.tags("r0") == {"team": "nlp"}


def test_run_names_show_and_filter(db):
    reader = sweep(db)
    assert list(reader.runs().columns[:2]) == ["track_id", "run_name"]
    assert reader.search("run_name = 'lr-1'")["track_id"].tolist() == ["r1"]
    assert reader.search("attributes.run_name LIKE 'lr-%'").shape[0] == 3
    reader.set_run_name("r1", "best")
    assert reader.runs()["run_name"].tolist() == ["lr-0", "best", "lr-2"]


def test_a_table_without_tags_or_names_keeps_its_columns(db):
    with Tracker(db, params={"a": 1}, track_id="x") as t:
        t.log({"v": 1.0})
    assert list(Reader(db).runs().columns) == ["track_id", "status", "start", "end", "duration", "events", "a", "v"]
    assert list(Reader(db).tables().columns) == ["table", "rows", "runs"]


def test_a_metric_logged_once_stays_a_metric_and_a_param_that_changes_stays_a_param(db):
    t = Tracker(db, params={"lr": 0.1}, track_id="a")
    t.log({"loss": 0.5})
    t.log({"loss": 0.4})
    t.set_params({"lr": 0.01})  # a schedule: still the param lr
    t.log({"loss": 0.3})
    t.log({"f1": 0.9})  # once: a metric, not a param
    t.log({"note": "text"})  # neither: left to the guess
    queries = Reader(db)._runs()
    params, metrics, _ = queries.classify()
    assert params == ["lr", "note"] and metrics == ["loss", "f1"]
    assert Reader(db).runs(agg="max")["f1"].tolist() == [0.9]


def test_a_file_without_recorded_kinds_is_guessed_as_before(db):
    t = Tracker(db, track_id="a")
    t.log({"acc": 0.1, "model": "rf"})
    t.log({"acc": 0.2, "model": "rf"})
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE xetrack_kinds")  # as a file written before kinds were recorded
    conn.commit()
    conn.close()
    params, metrics, _ = Reader(db)._runs().classify()
    assert params == ["model"] and metrics == ["acc"]


def test_descriptions_show_in_tables(db):
    Tracker(db, table="sweep", description="lr sweep, May").log({"x": 1})
    Tracker(db, table="other").log({"x": 1})
    reader = Reader(db)
    frame = reader.tables().set_index("table")
    assert frame.loc["sweep", "description"] == "lr sweep, May"
    assert frame["description"].isna().to_dict() == {"sweep": False, "other": True}
    reader.describe_table("other", "second")
    assert Reader(db).tables().set_index("table").loc["other", "description"] == "second"
    with pytest.raises(KeyError, match="Table 'nope' not found"):
        reader.describe_table("nope", "x")
    out = CliRunner().invoke(app, ["tables", db])
    assert out.exit_code == 0 and "lr sweep, May" in out.stdout


def test_new_tracker_arguments_are_keyword_only(db):
    with pytest.raises(TypeError):
        Tracker(
            db,
            None,
            False,
            False,
            False,
            True,
            1.0,
            None,
            None,
            None,
            False,
            None,
            None,
            False,
            True,
            None,
            "sqlite",
            "default",
            "name",
        )  # one positional argument too many
    assert Tracker(db, params={"a": 1}, run_name="n", description="d").params == {"a": 1}


def test_cli_tag_and_runs_tags(db):
    sweep(db)
    runner = CliRunner()
    out = runner.invoke(app, ["tag", db, "r0", "owner=ana", "stage=final"])
    assert out.exit_code == 0, out.output
    assert Reader(db).tags("r0") == {"owner": "ana", "stage": "final", "team": "nlp"}
    plain = runner.invoke(app, ["runs", db, "--json"])
    assert "tags.owner" not in plain.stdout
    tagged = runner.invoke(app, ["runs", db, "--tags", "--json", "--where", "tags.owner = 'ana'"])
    assert tagged.exit_code == 0 and '"tags.owner": "ana"' in tagged.stdout and '"r1"' not in tagged.stdout
    out = runner.invoke(app, ["tag", db, "r0", "--delete", "owner"])
    assert out.exit_code == 0 and "owner" not in Reader(db).tags("r0")
    bad = runner.invoke(app, ["tag", db, "r0", "novalue"])
    assert bad.exit_code != 0


def test_randomized_tag_edits_match_a_dict(db):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    reader = sweep(db)
    model = {f"r{i}": {"team": "vision" if i else "nlp"} for i in range(3)}
    for _ in range(40):
        run, key = rng.choice(list(model)), rng.choice(["a", "b", "team"])
        if rng.random() < 0.3:
            reader.delete_tag(run, key)
            model[run].pop(key, None)
        else:
            value = str(rng.randint(0, 5))
            reader.set_tag(run, key, value)
            model[run][key] = value
        if rng.random() < 0.5:
            frame = reader.runs().set_index("track_id")
            for r, tags in model.items():
                got = {c[5:]: v for c, v in frame.loc[r].items() if c.startswith("tags.") and isinstance(v, str)}
                assert got == tags, f"seed {seed}"


def test_copy_carries_tags_names_and_descriptions_and_keeps_the_targets(tmp_path):
    import xetrack

    worker, main = str(tmp_path / "worker.db"), str(tmp_path / "main.db")
    with Tracker(worker, params={"lr": 0.1}, track_id="w", run_name="worker-run", description="from the worker") as t:
        t.log({"f1": 0.9})  # once: a metric, by the recorded kind
        t.set_tag("team", "vision")
    with Tracker(main, track_id="m", description="main's own") as t:
        t.log({"x": 1.0})
    target = Reader(main)
    target.runs(), target.runs()  # cached before the copy
    xetrack.copy(worker, main)
    runs = Reader(main).runs().set_index("track_id")
    assert runs.loc["w", "run_name"] == "worker-run" and runs.loc["w", "tags.team"] == "vision"
    assert target.runs().set_index("track_id").loc["w", "tags.team"] == "vision"
    assert Reader(main).tables().loc[0, "description"] == "main's own"
    # f1, logged once, stays a metric (the guess would call a one-value column a param)
    params, metrics, _ = Reader(main)._runs().classify()
    assert "f1" in metrics and "lr" in params and "x" in metrics
