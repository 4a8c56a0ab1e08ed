"""xetrack.integrations.keras against real Keras 3 (the torch backend, on the CPU): tiny
models and data made here, a new Reader to check what landed."""

import os
import subprocess
import sys
import textwrap

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported: the backend installed here

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the Keras integration needs keras (pip install 'xetrack[keras]')")
pytest.importorskip("torch", reason="these tests run Keras on its torch backend (pip install torch)")

from xetrack import Reader  # noqa: E402
from xetrack.integrations.keras import XetrackCallback  # noqa: E402

# Keras' own arrays on the torch backend, with NumPy 2: not this integration's to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

EPOCHS, BATCH, SAMPLES, VALIDATION = 3, 8, 40, 0.2
STEPS = int(SAMPLES * (1 - VALIDATION)) // BATCH  # 32 training samples: 4 batches an epoch


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")).astype("float32")
    return x, y


def tiny_model(*middle):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), *middle, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.05), loss="mse", metrics=["mae"])
    return model


def fit(model, data, callbacks, epochs=EPOCHS):
    x, y = data
    return model.fit(x, y, epochs=epochs, batch_size=BATCH, validation_split=VALIDATION, verbose=0, callbacks=callbacks)


def only_run(db):
    runs = Reader(db).runs()
    assert len(runs) == 1, runs
    return runs.iloc[0]


class Explode(keras.layers.Layer):
    """Raises in the training step after ``after`` steps: an error inside the model."""

    def __init__(self, after, **kwargs):
        super().__init__(**kwargs)
        self.after, self.calls = after, 0

    def call(self, inputs, training=None):
        if training:
            self.calls += 1
            if self.calls > self.after:
                raise ValueError("the model exploded")
        return inputs


class FailAtEpochEnd(keras.callbacks.Callback):
    """Another callback that raises: an error outside the model's steps."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("another callback broke")


def test_a_fit_lands_its_params_one_row_per_epoch_and_finishes(tmp_path, data):
    db = str(tmp_path / "exp.db")
    model = tiny_model()
    history = fit(model, data, [XetrackCallback(db, params={"batch_size": BATCH}, run_name="tiny", tags={"k": "v"})])

    reader = Reader(db)
    df = reader.to_df()
    assert len(df) == EPOCHS
    assert df["epoch"].tolist() == history.epoch == [0, 1, 2]  # 0-based, as Keras' History
    for metric in ("loss", "val_loss", "mae", "val_mae"):
        assert df[metric].tolist() == pytest.approx(history.history[metric], rel=1e-6)
    assert "step" not in df.columns  # epoch rows only
    last = df.iloc[-1]
    assert last["optimizer_name"] == "adam"
    assert last["optimizer_learning_rate"] == pytest.approx(0.05)
    assert last["epochs"] == EPOCHS and last["steps"] == STEPS and last["batch_size"] == BATCH
    assert "verbose" not in df.columns and "optimizer_clipnorm" not in df.columns  # None params left out
    run = only_run(db)
    assert run["status"] == "finished"
    assert run["run_name"] == "tiny"
    assert run["loss"] == pytest.approx(history.history["loss"][-1], rel=1e-6)
    assert reader.tags(run["track_id"]) == {"k": "v"}


def test_log_batches_adds_a_row_per_batch_and_log_model_stores_the_model(tmp_path, data):
    db = str(tmp_path / "exp.db")
    model = tiny_model()
    fit(model, data, [XetrackCallback(db, log_batches=True, log_model=True)], epochs=2)

    df = Reader(db).to_df()
    batches = df[df["batch_loss"].notna()]
    epochs = df[df["loss"].notna()]
    assert len(df) == len(batches) + len(epochs) == 2 * STEPS + 2
    assert batches["step"].astype(int).tolist() == list(range(2 * STEPS))
    assert batches["epoch"].astype(int).tolist() == [0] * STEPS + [1] * STEPS
    assert batches["batch_mae"].notna().all() and batches["mae"].isna().all()
    assert epochs["epoch"].astype(int).tolist() == [0, 1]
    assert epochs["step"].astype(int).tolist() == [STEPS - 1, 2 * STEPS - 1]  # its epoch's last batch
    # Keras' batch logs are running means over the epoch: the last batch's is the epoch's
    assert batches["batch_loss"].iloc[[STEPS - 1, -1]].tolist() == pytest.approx(epochs["loss"].tolist())

    reader = Reader(db)
    track_id = only_run(db)["track_id"]
    artifacts = reader.artifacts(track_id)
    assert artifacts["name"].tolist() == ["model.keras"] and artifacts["type"].tolist() == ["model"]
    path = tmp_path / "restored.keras"
    path.write_bytes(reader.artifact("model.keras", track_id=track_id))
    restored = keras.saving.load_model(path)
    x = data[0][:5]
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_an_error_in_a_training_step_marks_the_run_failed(tmp_path, data):
    db = str(tmp_path / "exp.db")
    model = tiny_model(Explode(after=STEPS + 1))  # the second epoch's second batch
    callback = XetrackCallback(db)
    with pytest.raises(ValueError, match="the model exploded"):
        fit(model, data, [callback])

    run = only_run(db)
    assert run["status"] == "failed"
    error = Reader(db).store.run_error("default", run["track_id"])
    assert error.startswith("ValueError: ") and "the model exploded" in error and "\x1b" not in error
    assert Reader(db).to_df()["epoch"].tolist() == [0]  # what was logged before stays
    assert not getattr(model.train_function, "__name__", "").startswith("watched")  # the step is given back


def test_an_error_outside_the_steps_is_marked_by_with_or_by_the_next_fit(tmp_path, data):
    db = str(tmp_path / "exp.db")
    callback = XetrackCallback(db)
    with pytest.raises(RuntimeError, match="another callback broke"):
        with callback:
            fit(tiny_model(), data, [callback, FailAtEpochEnd()])
    first = callback.run.track_id
    assert Reader(db).store.run_error("default", first) == "RuntimeError: another callback broke"

    with pytest.raises(RuntimeError):  # no with: Keras says nothing, the run stays open...
        fit(tiny_model(), data, [callback, FailAtEpochEnd()])
    second = callback.run.track_id
    fit(tiny_model(), data, [callback], epochs=1)  # ...until the callback's next fit
    third = callback.run.track_id

    runs = Reader(db).runs().set_index("track_id")
    assert len({first, second, third}) == 3
    assert runs.loc[first, "status"] == "failed" and runs.loc[second, "status"] == "failed"
    assert "without on_train_end" in Reader(db).store.run_error("default", second)
    assert runs.loc[third, "status"] == "finished"
    assert runs.loc[[first, second, third], "events"].tolist() == [2, 2, 1]


def test_an_uncaught_error_marks_the_run_failed_when_the_process_ends(tmp_path):
    db = str(tmp_path / "exp.db")
    script = textwrap.dedent(
        f"""
        import os
        os.environ["KERAS_BACKEND"] = "torch"
        import numpy as np, keras
        from xetrack.integrations.keras import XetrackCallback

        class Broken(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                raise KeyError("lost")

        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        x = np.ones((8, 2), dtype="float32")
        model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[XetrackCallback({db!r}), Broken()])
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "KeyError" in out.stderr
    run = only_run(db)
    assert run["status"] == "failed"
    assert Reader(db).store.run_error("default", run["track_id"]) == "KeyError: 'lost'"


def test_bad_arguments_are_refused_before_training(tmp_path):
    with pytest.raises(TypeError, match="params must be a dict"):
        XetrackCallback(str(tmp_path / "exp.db"), params=["lr"])
    with pytest.raises(TypeError, match="track_id"):
        XetrackCallback(str(tmp_path / "exp.db"), track_id=7)
    with pytest.raises(ValueError):
        XetrackCallback(str(tmp_path / "exp.db"), table="bad name; drop")


def test_params_that_keras_sets_are_not_overwritten(tmp_path, data):
    db = str(tmp_path / "exp.db")
    with pytest.raises(ValueError, match="epochs"):
        fit(tiny_model(), data, [XetrackCallback(db, params={"epochs": 99})], epochs=1)
