"""xetrack.integrations.lightgbm against real LightGBM (CPU): tiny random data made here,
10 iterations, a new Reader to check what landed. Steps are LightGBM's 0-based iterations."""

import importlib
import inspect
import subprocess
import sys
import textwrap

import numpy as np
import pytest

lgb = pytest.importorskip(
    "lightgbm", reason="the LightGBM integration needs lightgbm (pip install 'xetrack[lightgbm]')"
)

from xetrack import Reader  # noqa: E402
from xetrack.integrations.lightgbm import MODEL_ARTIFACT, xetrack_callback  # noqa: E402

ROUNDS = 10
PARAMS = {"objective": "binary", "learning_rate": 0.1, "num_leaves": 7, "metric": ["binary_logloss", "auc"]}
QUIET = {"verbose": -1, "num_threads": 1, "deterministic": True, "seed": 0}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.8, size=200) > 0).astype(int)
    return x[:140], y[:140], x[140:], y[140:]


def datasets(data):
    x, y, xv, yv = data
    train = lgb.Dataset(x, y, params={"verbose": -1}, free_raw_data=False)
    return train, lgb.Dataset(xv, yv, reference=train)


def eval_sets(clf, pairs):
    """The sklearn API's eval sets: eval_X and eval_y since LightGBM 4.7, eval_set before."""
    if "eval_X" in inspect.signature(clf.fit).parameters:
        return {"eval_X": tuple(x for x, _ in pairs), "eval_y": tuple(y for _, y in pairs)}
    return {"eval_set": pairs}


def only_run(db):
    runs = Reader(db).runs()
    assert len(runs) == 1, runs
    return runs.iloc[0]


def rows_of(db, track_id):
    return Reader(db).to_df(track_id=track_id)


def error_of(db, track_id):
    return Reader(db).store.run_error("default", track_id)


def test_train_lands_params_one_row_per_iteration_and_finishes(tmp_path, data):
    db = str(tmp_path / "exp.db")
    train, valid = datasets(data)
    history = {}
    cb = xetrack_callback(db, params={"dataset": "tiny"}, run_name="small", tags={"k": "v"})
    booster = lgb.train(
        {**PARAMS, **QUIET},
        train,
        ROUNDS,
        valid_sets=[train, valid],
        valid_names=["train", "valid"],
        callbacks=[cb, lgb.record_evaluation(history)],
    )

    run = only_run(db)
    assert run["status"] == "finished" and run["run_name"] == "small" and run["tags.k"] == "v"
    assert (run["learning_rate"], run["num_leaves"], run["objective"]) == (0.1, 7, "binary")
    assert (run["num_iterations"], run["dataset"]) == (ROUNDS, "tiny")
    rows = rows_of(db, run["track_id"])
    assert len(rows) == ROUNDS and rows["step"].tolist() == list(range(ROUNDS))
    for name in ("train", "valid"):
        for metric in ("binary_logloss", "auc"):  # valid-binary_logloss, by the Tracker's key rules
            assert rows[f"{name}_{metric}"].tolist() == [float(v) for v in history[name][metric]]
    assert run["valid_binary_logloss"] == history["valid"]["binary_logloss"][-1]
    assert booster.current_iteration() == ROUNDS


def test_early_stopping_finishes_the_run_and_its_model_loads_back(tmp_path, data):
    db = str(tmp_path / "exp.db")
    train, valid = datasets(data)
    history = {}
    booster = lgb.train(
        {"objective": "binary", "learning_rate": 0.5, **QUIET},
        train,
        200,
        valid_sets=[valid],
        callbacks=[
            xetrack_callback(db, log_model=True),
            lgb.record_evaluation(history),
            lgb.early_stopping(3, verbose=False),
        ],
    )
    iterations = len(history["valid_0"]["binary_logloss"])
    assert iterations < 200  # stopped early

    run = only_run(db)
    assert run["status"] == "finished" and run["best_iteration"] == booster.best_iteration
    rows = rows_of(db, run["track_id"])
    assert len(rows) == iterations and rows["step"].tolist() == list(range(iterations))
    assert rows["valid_0_binary_logloss"].tolist() == [float(v) for v in history["valid_0"]["binary_logloss"]]

    # The model as LightGBM saves it after early stopping (up to the best iteration).
    loaded = lgb.Booster(model_str=Reader(db).artifact(MODEL_ARTIFACT, track_id=run["track_id"]).decode())
    x = data[2]
    assert loaded.current_iteration() == booster.best_iteration
    assert np.array_equal(loaded.predict(x), booster.predict(x))


def test_sklearn_api_with_early_stopping_from_params(tmp_path, data):
    pytest.importorskip("sklearn", reason="LightGBM's sklearn API needs scikit-learn")
    db = str(tmp_path / "exp.db")
    x, y, xv, yv = data
    cb = xetrack_callback(db, log_model=True)
    clf = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.5, num_leaves=5, early_stopping_round=3, **QUIET)
    clf.fit(x, y, **eval_sets(clf, [(x, y), (xv, yv)]), callbacks=[cb])
    history = clf.evals_result_
    iterations = len(history["valid_1"]["binary_logloss"])
    assert iterations < 200 and clf.best_iteration_ < iterations

    run = only_run(db)
    assert run["status"] == "finished" and run["best_iteration"] == clf.best_iteration_
    assert (run["learning_rate"], run["num_leaves"], run["num_iterations"]) == (0.5, 5, 200)
    rows = rows_of(db, run["track_id"])
    assert len(rows) == iterations and rows["step"].tolist() == list(range(iterations))
    assert len(history) == 2  # valid_0 and valid_1 (or "training", by LightGBM's version)
    for name in history:
        assert rows[f"{name}_binary_logloss"].tolist() == [float(v) for v in history[name]["binary_logloss"]]
    assert run["valid_1_binary_logloss"] == history["valid_1"]["binary_logloss"][-1]
    loaded = lgb.Booster(model_str=Reader(db).artifact(MODEL_ARTIFACT).decode())
    assert np.array_equal(loaded.predict(xv), clf.predict_proba(xv)[:, 1])

    clf.set_params(early_stopping_round=None, n_estimators=4).fit(x, y, **eval_sets(clf, [(xv, yv)]), callbacks=[cb])
    runs = Reader(db).runs()  # the same callback again: a run of its own
    assert len(runs) == 2 and runs["status"].tolist() == ["finished", "finished"]
    assert runs["events"].tolist()[1] == 4


def test_cv_logs_the_mean_and_stdv_over_folds(tmp_path, data):
    db = str(tmp_path / "exp.db")
    train, _ = datasets(data)
    result = lgb.cv(
        {"objective": "binary", **QUIET},
        train,
        4,
        nfold=2,
        stratified=False,
        seed=0,
        callbacks=[xetrack_callback(db, log_model=True)],
        return_cvbooster=True,
    )
    run = only_run(db)
    assert (run["status"], run["nfold"], run["num_iterations"]) == ("finished", 2, 4)
    rows = rows_of(db, run["track_id"])
    assert rows["step"].tolist() == [0, 1, 2, 3]
    assert rows["valid_binary_logloss_mean"].tolist() == result["valid binary_logloss-mean"]
    assert rows["valid_binary_logloss_stdv"].tolist() == pytest.approx(result["valid binary_logloss-stdv"])
    assert sorted(Reader(db).artifacts()["name"]) == ["model_fold0.txt", "model_fold1.txt"]


def test_an_error_of_another_callback_marks_the_run_failed_at_once(tmp_path, data):
    db = str(tmp_path / "exp.db")
    train, valid = datasets(data)

    def broken(env):
        if env.iteration == 3:
            raise RuntimeError("another callback broke")

    callbacks = [broken, xetrack_callback(db)]
    with pytest.raises(RuntimeError):
        lgb.train({**PARAMS, **QUIET}, train, ROUNDS, valid_sets=[valid], callbacks=callbacks)
    assert callbacks[0] is broken  # wrapped in lgb.train's own list only
    run = only_run(db)
    assert run["status"] == "failed" and run["events"] == 3  # iterations 0, 1, 2
    assert error_of(db, run["track_id"]) == "RuntimeError: another callback broke"


def test_a_kept_error_is_marked_by_the_next_training(tmp_path, data):
    db = str(tmp_path / "exp.db")
    train, valid = datasets(data)
    cb = xetrack_callback(db)
    try:
        lgb.train({**PARAMS, **QUIET}, train, ROUNDS, valid_sets=[valid], feval=exploding_metric(2), callbacks=[cb])
    except ValueError as exc:
        kept = exc  # its traceback keeps the failed booster alive
    first = cb.run.track_id
    assert Reader(db).runs().set_index("track_id").loc[first, "status"] == "running"  # not finished
    lgb.train({**PARAMS, **QUIET}, train, 2, valid_sets=[valid], callbacks=[cb])
    runs = Reader(db).runs().set_index("track_id")
    assert runs.loc[first, "status"] == "failed" and "a new training began" in error_of(db, first)
    assert runs.loc[cb.run.track_id, "status"] == "finished" and runs.loc[cb.run.track_id, "events"] == 2
    del kept


def exploding_metric(after):
    """A custom metric (called by LightGBM itself, not a callback) that raises at iteration ``after``."""
    calls = []

    def metric(preds, dataset):
        calls.append(1)
        if len(calls) > after:
            raise ValueError("the metric exploded")
        return "mean_pred", float(np.mean(preds)), False

    return metric


def test_an_error_inside_lightgbm_marks_the_run_failed_never_finished(tmp_path, data):
    db = str(tmp_path / "exp.db")
    train, valid = datasets(data)
    with pytest.raises(ValueError, match="the metric exploded"):
        lgb.train(
            {**PARAMS, **QUIET},
            train,
            ROUNDS,
            valid_sets=[valid],
            feval=exploding_metric(3),
            callbacks=[xetrack_callback(db)],
        )
    # The error is handled: the failed training's booster is gone, and the run marked.
    run = only_run(db)
    assert run["status"] == "failed" and run["events"] == 3
    assert "stopped after 3 of 10 iterations without reaching its end" in error_of(db, run["track_id"])
    assert run["valid_0_mean_pred"] > 0

    db2 = str(tmp_path / "with.db")
    with pytest.raises(ValueError):
        with xetrack_callback(db2) as cb:
            lgb.train({**PARAMS, **QUIET}, train, ROUNDS, valid_sets=[valid], feval=exploding_metric(2), callbacks=[cb])
    run = only_run(db2)
    assert run["status"] == "failed" and error_of(db2, run["track_id"]) == "ValueError: the metric exploded"


def test_an_uncaught_error_marks_the_run_failed_when_the_process_ends(tmp_path):
    db = str(tmp_path / "exp.db")
    script = textwrap.dedent(
        f"""
        import numpy as np, lightgbm as lgb
        from xetrack.integrations.lightgbm import xetrack_callback
        x = np.random.default_rng(0).normal(size=(60, 5))
        d = lgb.Dataset(x, (x[:, 0] > 0).astype(int), params={{"verbose": -1}})

        def objective(preds, dataset):
            if preds.any():
                raise KeyError("lost")
            return preds - dataset.get_label() + 0.5, np.ones_like(preds)

        lgb.train({{"objective": objective, "verbose": -1}}, d, 5, callbacks=[xetrack_callback({db!r})])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "KeyError: 'lost'" in done.stderr
    run = only_run(db)
    assert run["status"] == "failed" and run["events"] == 1
    assert error_of(db, run["track_id"]) == "KeyError: 'lost'"
    assert run["objective"] == "none"  # LightGBM's own param for a custom objective


def test_outside_lgb_train_it_warns_and_still_logs(tmp_path, data):
    db = str(tmp_path / "exp.db")
    train, _ = datasets(data)
    booster = lgb.Booster({**PARAMS, **QUIET}, train)
    cb = xetrack_callback(db)
    with pytest.warns(UserWarning, match="early stopping will not mark the run finished"):
        for i in range(2):
            booster.update()
            env = lgb.callback.CallbackEnv(booster, {"num_leaves": 7}, i, 0, 2, booster.eval_train())
            cb(env)
    run = only_run(db)
    assert run["status"] == "finished" and run["num_leaves"] == 7
    assert rows_of(db, run["track_id"])["step"].tolist() == [0, 1]


def test_bad_input_gets_a_clear_error(tmp_path, data):
    db = str(tmp_path / "exp.db")
    with pytest.raises(TypeError, match="tags must be a dict"):
        xetrack_callback(db, tags=["a"])
    with pytest.raises(TypeError, match="log_model must be True or False"):
        xetrack_callback(db, log_model=1)
    with pytest.raises(TypeError, match="track_id must be a non-empty str"):
        xetrack_callback(db, track_id="")
    train, _ = datasets(data)
    with pytest.raises(ValueError, match=r"params \['num_leaves'\] differ"):
        lgb.train({**PARAMS, **QUIET}, train, 2, callbacks=[xetrack_callback(db, params={"num_leaves": 3})])


def test_missing_lightgbm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    monkeypatch.delitem(sys.modules, "xetrack.integrations.lightgbm")
    with pytest.raises(ImportError, match=r"pip install 'xetrack\[lightgbm\]'"):
        importlib.import_module("xetrack.integrations.lightgbm")
