"""xetrack.integrations.optuna against real Optuna studies (in memory, tiny objectives made
here), a new Reader to check what landed."""

import math

import pandas as pd
import pytest

optuna = pytest.importorskip("optuna", reason="the Optuna integration needs optuna (pip install 'xetrack[optuna]')")

from xetrack import Reader  # noqa: E402
from xetrack.integrations.optuna import NO_ERROR_TEXT, XetrackCallback  # noqa: E402

TRIALS, FAILING, STEPS = 8, 3, 3
STATUS = {"COMPLETE": "finished", "PRUNED": "pruned", "FAIL": "failed"}


def objective(trial):
    x = trial.suggest_float("x", -10, 10)
    if trial.number == FAILING:
        raise ValueError("objective broke")
    for step in range(STEPS):
        trial.report((x - 2) ** 2 + step, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return (x - 2) ** 2


def study(name="tune", **kwargs):
    return optuna.create_study(
        study_name=name,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.ThresholdPruner(upper=20.0),
        **kwargs,
    )


@pytest.fixture
def tuned(tmp_path):
    """A study of TRIALS trials, recorded: completed, pruned and failed ones."""
    db = str(tmp_path / "exp.db")
    callback = XetrackCallback(db, metric_name="loss", params={"dataset": "toy"}, tags={"team": "a"})
    tuning = study()
    tuning.optimize(objective, n_trials=TRIALS, catch=(ValueError,), callbacks=[callback])
    return db, tuning, callback


def stamp(moment):
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def test_each_trial_is_one_run_with_its_params_values_status_and_times(tuned):
    db, tuning, _ = tuned
    states = [t.state.name for t in tuning.trials]
    assert {"COMPLETE", "PRUNED", "FAIL"} <= set(states)  # the objective and pruner made all three

    reader = Reader(db)
    runs = reader.runs().set_index("track_id")
    assert len(runs) == TRIALS
    for trial in tuning.trials:
        run = runs.loc[f"tune-trial-{trial.number}"]
        assert run["run_name"] == f"trial-{trial.number}"
        assert run["status"] == STATUS[trial.state.name]
        assert run["x"] == pytest.approx(trial.params["x"])
        assert run["study_name"] == "tune" and run["trial_number"] == trial.number and run["dataset"] == "toy"
        assert run["start"] == stamp(trial.datetime_start) and run["end"] == stamp(trial.datetime_complete)
        if trial.value is None:
            assert math.isnan(run["loss"])
        else:
            assert run["loss"] == pytest.approx(trial.value)  # the last row: the trial's value
        assert reader.tags(run.name) == {"team": "a"}

        rows = reader.to_df(track_id=run.name)
        steps = rows[rows["step"].notna()]
        assert steps["step"].astype(int).tolist() == sorted(trial.intermediate_values)
        assert steps["loss"].tolist() == pytest.approx([trial.intermediate_values[s] for s in sorted(steps["step"])])
        last = rows.iloc[-1]
        assert pd.isna(last["step"])
        assert last["trial_duration"] == pytest.approx(trial.duration.total_seconds())
        assert len(rows) == len(trial.intermediate_values) + 1

    failed = f"tune-trial-{FAILING}"
    assert reader.store.run_error("default", failed) == "ValueError: objective broke"
    assert reader.store.run_error("default", "tune-trial-0") is None


def test_calling_the_callback_again_writes_nothing_new(tuned):
    db, tuning, callback = tuned
    before = Reader(db).to_df()
    for trial in tuning.trials:
        callback(tuning, trial)
    after = Reader(db).to_df()
    assert len(after) == len(before)
    assert sorted(Reader(db).runs()["track_id"]) == sorted(f"tune-trial-{t.number}" for t in tuning.trials)


def test_a_half_written_trial_is_written_again(tuned):
    from xetrack.runs import record_run

    db, tuning, callback = tuned
    trial = tuning.trials[0]
    track_id = "tune-trial-0"
    reader = Reader(db)
    rows = len(reader.to_df(track_id=track_id))
    reader.set_value("loss", None, track_id=track_id)  # as if it stopped half way...
    record_run(reader.store, "default", track_id, "running", stamp(trial.datetime_start), None)
    callback(tuning, trial)

    again = Reader(db)
    assert len(again.to_df(track_id=track_id)) == rows
    run = again.runs().set_index("track_id").loc[track_id]
    assert run["status"] == "finished" and run["loss"] == pytest.approx(trial.value)


def test_a_trial_that_stops_optimize_is_recorded_afterwards(tmp_path):
    db = str(tmp_path / "exp.db")
    callback = XetrackCallback(db)
    tuning = study("uncaught")
    with pytest.raises(ValueError):
        tuning.optimize(objective, n_trials=TRIALS, callbacks=[callback])  # no catch: trial 3 stops it
    assert Reader(db).runs()["status"].tolist() == ["finished"] * 3  # Optuna called no callback for it
    for trial in tuning.trials:
        callback(tuning, trial)
    runs = Reader(db).runs().set_index("track_id")
    assert runs.loc["uncaught-trial-3", "status"] == "failed"
    assert Reader(db).store.run_error("default", "uncaught-trial-3") == "ValueError: objective broke"
    assert runs.loc["uncaught-trial-0", "value"] == pytest.approx(tuning.trials[0].value)
    assert len(runs) == 4


def test_another_study_of_the_same_name_gets_runs_of_its_own(tmp_path):
    db = str(tmp_path / "exp.db")
    callback = XetrackCallback(db)
    first, second = study("again"), study("again")  # a script run twice, in memory
    first.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, callbacks=[callback])
    second.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, callbacks=[callback])
    runs = Reader(db).runs().set_index("track_id")
    assert sorted(runs.index) == ["again-trial-0", "again-trial-0-2", "again-trial-1", "again-trial-1-2"]
    assert runs.loc["again-trial-1-2", "value"] == pytest.approx(second.trials[1].value)


def test_a_multi_objective_study_lands_a_column_per_objective(tmp_path):
    db = str(tmp_path / "exp.db")
    tuning = optuna.create_study(study_name="multi", directions=["minimize", "maximize"])

    def two(trial):
        x = trial.suggest_float("x", 0, 1)
        return x**2, 1 - x

    tuning.optimize(two, n_trials=3, callbacks=[XetrackCallback(db, metric_name=["error", "speed"])])
    runs = Reader(db).runs().set_index("track_id")
    assert len(runs) == 3
    for trial in tuning.trials:
        run = runs.loc[f"multi-trial-{trial.number}"]
        assert [run["error"], run["speed"]] == pytest.approx(trial.values)

    named = str(tmp_path / "named.db")
    tuning.optimize(two, n_trials=1, callbacks=[XetrackCallback(named)])  # one name: value_0, value_1
    run = Reader(named).runs().iloc[0]
    assert [run["value_0"], run["value_1"]] == pytest.approx(tuning.trials[-1].values)

    with pytest.raises(ValueError, match="3 names for a study with 2 objectives"):
        tuning.optimize(two, n_trials=1, callbacks=[XetrackCallback(db, metric_name=["a", "b", "c"])])


def test_bad_arguments_get_clear_errors(tmp_path):
    db = str(tmp_path / "exp.db")
    with pytest.raises(TypeError, match="metric_name"):
        XetrackCallback(db, metric_name=["loss", 3])
    with pytest.raises(ValueError, match="twice"):
        XetrackCallback(db, metric_name=["loss", "loss"])
    with pytest.raises(ValueError, match="column the callback writes"):
        XetrackCallback(db, metric_name="step")
    with pytest.raises(TypeError, match="params must be a dict"):
        XetrackCallback(db, params="lr")
    clash = study("clash")
    with pytest.raises(ValueError, match="also a column of the run"):
        clash.optimize(lambda t: t.suggest_float("value", 0, 1), n_trials=1, callbacks=[XetrackCallback(db)])
    running = clash.ask()
    with pytest.raises(ValueError, match="RUNNING"):
        XetrackCallback(db)(clash, clash.trials[running.number])


def test_a_failed_trial_without_optunas_warning_says_so(tmp_path):
    db = str(tmp_path / "exp.db")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # Optuna's warning, the only place of the error, is off
    try:
        quiet = study("quiet")
        quiet.optimize(objective, n_trials=FAILING + 1, catch=(ValueError,), callbacks=[XetrackCallback(db)])
    finally:
        optuna.logging.set_verbosity(verbosity)
    assert Reader(db).runs().set_index("track_id").loc[f"quiet-trial-{FAILING}", "status"] == "failed"
    assert Reader(db).store.run_error("default", f"quiet-trial-{FAILING}") == NO_ERROR_TEXT
