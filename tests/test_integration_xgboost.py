"""xetrack.integrations.xgboost against real XGBoost (CPU): tiny random data made here,
10 rounds, a new Reader to check what landed. Steps are XGBoost's 0-based rounds."""

import importlib
import json
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost", reason="the XGBoost integration needs xgboost (pip install 'xetrack[xgboost]')")

from xetrack import Reader  # noqa: E402
from xetrack.integrations.xgboost import MODEL_ARTIFACT, XetrackCallback  # noqa: E402

ROUNDS = 10
PARAMS = {"objective": "binary:logistic", "eta": 0.1, "max_depth": 3, "eval_metric": ["logloss", "error"]}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.8, size=200) > 0).astype(int)
    return x[:140], y[:140], x[140:], y[140:]


@pytest.fixture(scope="module")
def dmatrices(data):
    x, y, xv, yv = data
    return xgb.DMatrix(x, label=y), xgb.DMatrix(xv, label=yv)


def only_run(db):
    runs = Reader(db).runs()
    assert len(runs) == 1, runs
    return runs.iloc[0]


def rows_of(db, track_id):
    return Reader(db).to_df(track_id=track_id)


def error_of(db, track_id):
    return Reader(db).store.run_error("default", track_id)


def exploding_objective(after):
    """A custom objective (called inside XGBoost's update) that raises at round ``after``."""
    calls = []

    def objective(preds, dtrain):
        calls.append(1)
        if len(calls) > after:
            raise ValueError("the objective exploded")
        labels = dtrain.get_label()
        p = 1 / (1 + np.exp(-preds))
        return p - labels, p * (1 - p)

    return objective


def test_train_lands_params_one_row_per_round_and_finishes(tmp_path, dmatrices):
    db = str(tmp_path / "exp.db")
    dtrain, dvalid = dmatrices
    evals_result = {}
    cb = XetrackCallback(db, params={"dataset": "tiny"}, run_name="small", tags={"k": "v"})
    booster = xgb.train(
        PARAMS,
        dtrain,
        ROUNDS,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        evals_result=evals_result,
        verbose_eval=False,
        callbacks=[cb],
    )

    run = only_run(db)
    assert run["status"] == "finished" and run["run_name"] == "small" and run["tags.k"] == "v"
    assert (run["eta"], run["max_depth"], run["objective"]) == (0.1, 3, "binary:logistic")
    assert (run["num_boost_round"], run["dataset"], run["booster"]) == (ROUNDS, "tiny", "gbtree")
    assert json.loads(run["eval_metric"]) == ["logloss", "error"]
    rows = rows_of(db, run["track_id"])
    assert len(rows) == ROUNDS and rows["step"].tolist() == list(range(ROUNDS))
    for data_name in ("train", "valid"):
        for metric in ("logloss", "error"):  # validation-0 style names, by the Tracker's key rules
            assert rows[f"{data_name}_{metric}"].tolist() == evals_result[data_name][metric]
    assert run["valid_logloss"] == evals_result["valid"]["logloss"][-1]

    # The callback changes nothing in the training (it reads the booster's config).
    alone = xgb.train(PARAMS, dtrain, ROUNDS, evals=[(dvalid, "valid")], verbose_eval=False)
    assert np.array_equal(alone.predict(dvalid), booster.predict(dvalid))


def test_params_left_to_xgboost_come_from_the_booster_config(tmp_path, dmatrices):
    db = str(tmp_path / "exp.db")
    dtrain, dvalid = dmatrices
    xgb.train({"objective": "reg:squarederror"}, dtrain, 3, evals=[(dvalid, "v")], callbacks=[XetrackCallback(db)])
    run = only_run(db)
    assert (run["eta"], run["max_depth"], run["eval_metric"], run["num_boost_round"]) == (0.3, 6, "rmse", 3)
    assert rows_of(db, run["track_id"])["step"].tolist() == [0, 1, 2]


def test_sklearn_api_with_early_stopping(tmp_path, data):
    pytest.importorskip("sklearn", reason="XGBoost's sklearn API needs scikit-learn")
    db = str(tmp_path / "exp.db")
    x, y, xv, yv = data
    clf = xgb.XGBClassifier(
        n_estimators=200,
        learning_rate=0.5,
        max_depth=3,
        early_stopping_rounds=3,
        eval_metric="logloss",
        callbacks=[XetrackCallback(db, log_model=True)],
    )
    clf.fit(x, y, eval_set=[(x, y), (xv, yv)], verbose=False)
    history = clf.evals_result()
    rounds = len(history["validation_1"]["logloss"])
    assert rounds < 200  # stopped early

    run = only_run(db)
    assert run["status"] == "finished"
    assert (run["learning_rate"], run["max_depth"], run["num_boost_round"]) == (0.5, 3, 200)
    assert "eta" not in run or run.isna()["eta"]  # set as learning_rate: not twice
    assert run["best_iteration"] == clf.best_iteration and run["best_score"] == pytest.approx(clf.best_score)
    rows = rows_of(db, run["track_id"])
    assert len(rows) == rounds and rows["step"].tolist() == list(range(rounds))
    assert rows["validation_0_logloss"].tolist() == history["validation_0"]["logloss"]
    assert run["validation_1_logloss"] == history["validation_1"]["logloss"][-1]

    # log_model: the booster as trained loads back and predicts the same.
    loaded = xgb.Booster()
    loaded.load_model(bytearray(Reader(db).artifact(MODEL_ARTIFACT, track_id=run["track_id"])))
    dvalid = xgb.DMatrix(xv)
    assert np.array_equal(loaded.predict(dvalid), clf.get_booster().predict(dvalid))


def test_clones_copies_and_reuse_each_train_their_own_run(tmp_path, data):
    sklearn_base = pytest.importorskip("sklearn.base", reason="XGBoost's sklearn API needs scikit-learn")
    db = str(tmp_path / "exp.db")
    x, y, xv, yv = data
    cb = XetrackCallback(db, params={"tag": "same"})
    clf = xgb.XGBClassifier(n_estimators=3, max_depth=2, callbacks=[cb])
    twin = sklearn_base.clone(clf)  # deep-copies the callback: its settings, not its run
    assert twin.callbacks[0] is not cb and twin.callbacks[0].db == db
    clf.fit(x, y, eval_set=[(xv, yv)], verbose=False)
    twin.fit(x, y, eval_set=[(xv, yv)], verbose=False)
    clf.fit(x, y, eval_set=[(xv, yv)], verbose=False)  # the same callback, a second training
    pickle.loads(pickle.dumps(clf))  # an estimator holding the callback still pickles

    runs = Reader(db).runs()
    assert len(runs) == 3 and runs["track_id"].nunique() == 3
    assert set(runs["status"]) == {"finished"} and set(runs["tag"]) == {"same"}
    assert runs["events"].tolist() == [3, 3, 3]


def test_cv_logs_the_mean_and_std_over_folds(tmp_path, dmatrices):
    db = str(tmp_path / "exp.db")
    dtrain, _ = dmatrices
    result = xgb.cv(
        {"objective": "binary:logistic", "max_depth": 2},
        dtrain,
        4,
        nfold=2,
        metrics="logloss",
        seed=0,
        callbacks=[XetrackCallback(db, log_model=True)],
    )
    run = only_run(db)
    assert (run["status"], run["nfold"], run["num_boost_round"]) == ("finished", 2, 4)
    rows = rows_of(db, run["track_id"])
    assert rows["step"].tolist() == [0, 1, 2, 3]
    for column in ("train-logloss-mean", "test-logloss-mean", "test-logloss-std"):
        assert rows[column.replace("-", "_")].tolist() == pytest.approx(result[column].tolist(), rel=1e-12)
    assert sorted(Reader(db).artifacts()["name"]) == ["model_fold0.json", "model_fold1.json"]


def test_an_error_in_training_marks_the_run_failed_never_finished(tmp_path, dmatrices):
    db = str(tmp_path / "exp.db")
    dtrain, dvalid = dmatrices
    params = {"max_depth": 2, "eval_metric": "logloss"}
    with pytest.raises(ValueError, match="the objective exploded"):
        xgb.train(
            params, dtrain, ROUNDS, evals=[(dvalid, "v")], obj=exploding_objective(3), callbacks=[XetrackCallback(db)]
        )
    # The error is handled: the failed training's booster is gone, and the run marked.
    run = only_run(db)
    assert run["status"] == "failed" and run["events"] == 3
    assert "stopped after 3 of 10 rounds without reaching after_training" in error_of(db, run["track_id"])


def test_with_block_records_the_error_itself(tmp_path, dmatrices):
    db = str(tmp_path / "exp.db")
    dtrain, dvalid = dmatrices
    with pytest.raises(ValueError):
        with XetrackCallback(db) as cb:
            xgb.train(
                {"max_depth": 2}, dtrain, ROUNDS, evals=[(dvalid, "v")], obj=exploding_objective(2), callbacks=[cb]
            )
    run = only_run(db)
    assert run["status"] == "failed" and error_of(db, run["track_id"]) == "ValueError: the objective exploded"


def test_a_kept_error_is_marked_by_the_next_training(tmp_path, dmatrices):
    db = str(tmp_path / "exp.db")
    dtrain, dvalid = dmatrices
    cb = XetrackCallback(db)
    try:
        xgb.train({"max_depth": 2}, dtrain, ROUNDS, obj=exploding_objective(1), callbacks=[cb])
    except ValueError as exc:
        kept = exc  # its traceback keeps the failed booster alive
    first = cb.run.track_id
    assert Reader(db).runs().set_index("track_id").loc[first, "status"] == "running"  # not finished
    xgb.train({"max_depth": 2}, dtrain, 2, evals=[(dvalid, "v")], callbacks=[cb])
    runs = Reader(db).runs().set_index("track_id")
    assert runs.loc[first, "status"] == "failed" and "a new training began" in error_of(db, first)
    assert runs.loc[cb.run.track_id, "status"] == "finished"
    del kept


def test_an_uncaught_error_marks_the_run_failed_when_the_process_ends(tmp_path):
    db = str(tmp_path / "exp.db")
    script = textwrap.dedent(
        f"""
        import numpy as np, xgboost as xgb
        from xetrack.integrations.xgboost import XetrackCallback
        x = np.random.default_rng(0).normal(size=(50, 5))
        d = xgb.DMatrix(x, label=(x[:, 0] > 0).astype(int))

        class Boom(xgb.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log):
                if epoch == 1:
                    raise KeyError("lost")
                return False

        xgb.train({{"max_depth": 2}}, d, 5, callbacks=[XetrackCallback({db!r}), Boom()])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "KeyError: 'lost'" in done.stderr
    run = only_run(db)
    assert run["status"] == "failed" and run["events"] == 2
    assert error_of(db, run["track_id"]) == "KeyError: 'lost'"


def test_bad_input_gets_a_clear_error(tmp_path, dmatrices):
    db = str(tmp_path / "exp.db")
    with pytest.raises(TypeError, match="params must be a dict"):
        XetrackCallback(db, params="exp")
    with pytest.raises(TypeError, match="log_model must be True or False"):
        XetrackCallback(db, log_model="yes")
    with pytest.raises(ValueError):
        XetrackCallback(db, table="no such; table")
    dtrain, _ = dmatrices
    with pytest.raises(ValueError, match=r"params \['max_depth'\] differ"):
        xgb.train({"max_depth": 2}, dtrain, 2, callbacks=[XetrackCallback(db, params={"max_depth": 5})])


def test_missing_xgboost_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "xgboost", None)
    monkeypatch.delitem(sys.modules, "xetrack.integrations.xgboost")
    with pytest.raises(ImportError, match=r"pip install 'xetrack\[xgboost\]'"):
        importlib.import_module("xetrack.integrations.xgboost")
