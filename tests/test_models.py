"""The model registry: named versions and aliases on the content-addressed store."""

import multiprocessing

import cloudpickle
import pytest

from pg_server import raw_sql
from xetrack import Reader, Tracker
from xetrack.errors import IntegrityError, NotFoundError


class Classifier:
    """A model whose behaviour lives in a lambda, so only cloudpickle can store it."""

    def __init__(self, threshold):
        self.threshold = threshold
        self.predict = lambda xs: [int(x > self.threshold) for x in xs]


def test_versions_count_up_and_load_by_name_version_and_alias(engine_db, engine):
    tracker = Tracker(engine_db, engine=engine)
    assert tracker.register_model("iris", Classifier(0.3), description="first try") == 1
    assert tracker.register_model("iris", Classifier(0.5), alias="production") == 2
    assert tracker.register_model("iris", Classifier(0.7)) == 3
    assert tracker.register_model("wine", Classifier(0.1)) == 1
    reader = Reader(engine_db, engine=engine)
    assert reader.load_model("iris").threshold == 0.7
    assert reader.load_model("iris:1").threshold == 0.3
    assert reader.load_model("iris@production").threshold == 0.5
    assert reader.load_model("iris@latest").threshold == 0.7
    assert reader.load_model("iris@production").predict([0.4, 0.6]) == [0, 1]
    models = reader.models()
    assert models.columns.tolist()[:4] == ["name", "version", "aliases", "hash"]
    assert list(zip(models["name"], models["version"])) == [("iris", 1), ("iris", 2), ("iris", 3), ("wine", 1)]
    assert models["aliases"].tolist() == [[], ["production"], [], []]
    assert set(models["track_id"]) == {tracker.track_id}
    assert models["description"].tolist()[0] == "first try"
    assert (models["size"] > 0).all() and set(models["kind"]) == {"asset"}
    assert models["created"].is_monotonic_increasing


def test_the_same_model_twice_is_two_versions_of_one_stored_object(engine_db):
    tracker = Tracker(engine_db)
    model = Classifier(0.5)
    tracker.register_model("iris", model)
    tracker.register_model("iris", model)
    models = Reader(engine_db).models()
    assert models["version"].tolist() == [1, 2] and models["hash"].nunique() == 1
    assert len(Reader(engine_db).assets) == 1


def test_register_by_the_hash_of_a_logged_object_or_an_artifact(engine_db):
    tracker = Tracker(engine_db)
    digest = tracker.log({"model": Classifier(0.4)})["model"]
    assert tracker.register_model("from-log", digest) == 1
    onnx = tracker.log_artifact(b"ONNX-bytes", name="model.onnx")
    assert tracker.register_model("from-file", onnx, alias="production") == 1
    reader = Reader(engine_db)
    assert reader.load_model("from-log").threshold == 0.4
    assert reader.load_model("from-file@production") == b"ONNX-bytes"
    kinds = dict(zip(reader.models()["name"], reader.models()["kind"]))
    assert kinds == {"from-file": "artifact", "from-log": "asset"}
    assert len(reader.assets) == 1  # registering by hash stored nothing again


@pytest.mark.parametrize("bad", ["not-a-hash", "0123456789abcdef"])
def test_a_str_must_be_the_hash_of_something_stored(engine_db, bad):
    tracker = Tracker(engine_db)
    with pytest.raises(ValueError, match="not the hash of an object or artifact stored"):
        tracker.register_model("iris", bad)
    assert Reader(engine_db).models().empty


def test_an_alias_points_at_exactly_one_version_and_moves(engine_db):
    tracker = Tracker(engine_db)
    for threshold in (0.1, 0.2, 0.3):
        tracker.register_model("iris", Classifier(threshold), alias="staging")
    reader = Reader(engine_db)
    assert reader.models()["aliases"].tolist() == [[], [], ["staging"]]  # registering moved it
    tracker.set_model_alias("iris", 1, "production")
    assert reader.load_model("iris@production").threshold == 0.1
    reader.set_model_alias("iris", 2, "production")  # the reader can move it too
    assert reader.load_model("iris@production").threshold == 0.2
    assert reader.models()["aliases"].tolist() == [[], ["production"], ["staging"]]
    assert reader.delete_model_alias("iris", "staging") is True
    assert reader.delete_model_alias("iris", "staging") is False
    assert reader.models()["aliases"].tolist() == [[], ["production"], []]


def test_unknown_names_versions_and_aliases_list_what_exists(engine_db):
    tracker = Tracker(engine_db)
    tracker.register_model("iris", Classifier(0.1))
    tracker.register_model("iris", Classifier(0.2), alias="production")
    reader = Reader(engine_db)
    with pytest.raises(NotFoundError, match=r"No model named 'irsi'\. Did you mean: iris\? Models: iris"):
        reader.load_model("irsi")
    with pytest.raises(NotFoundError, match=r"no version 7\. Versions: 1, 2; aliases: production -> 2"):
        reader.load_model("iris:7")
    with pytest.raises(NotFoundError, match=r"no alias 'prod'\. Did you mean: production\?"):
        reader.load_model("iris@prod")
    with pytest.raises(NotFoundError, match="no version 9"):
        tracker.set_model_alias("iris", 9, "production")
    with pytest.raises(KeyError):  # NotFoundError is a KeyError
        reader.load_model("wine")
    assert reader.load_model("iris@production").threshold == 0.2  # nothing moved


def test_an_empty_registry_says_so(engine_db):
    Tracker(engine_db).log({"a": 1})
    with pytest.raises(NotFoundError, match="none is registered"):
        Reader(engine_db).load_model("iris")
    assert Reader(engine_db).models().empty


@pytest.mark.parametrize(
    "spec, error",
    [("iris:x", ValueError), ("iris:0", ValueError), ("", ValueError), ("iris@", ValueError), (3, TypeError)],
)
def test_malformed_specs_get_a_clear_error(engine_db, spec, error):
    Tracker(engine_db).register_model("iris", Classifier(0.1))
    with pytest.raises(error):
        Reader(engine_db).load_model(spec)


@pytest.mark.parametrize(
    "name, alias",
    [("ir:is", None), ("iris@x", None), (" iris", None), ("iris", "latest"), ("iris", "3"), ("iris", "a:b")],
)
def test_bad_names_and_aliases_write_nothing(engine_db, name, alias):
    tracker = Tracker(engine_db)
    with pytest.raises(ValueError):
        tracker.register_model(name, Classifier(0.1), alias=alias)
    assert Reader(engine_db).models().empty


def test_export_writes_the_stored_bytes(engine_db, tmp_path):
    tracker = Tracker(engine_db)
    tracker.register_model("iris", Classifier(0.25))
    size = Reader(engine_db).export_model("iris:1", tmp_path / "iris.pkl")
    data = (tmp_path / "iris.pkl").read_bytes()
    assert size == len(data) and cloudpickle.loads(data).threshold == 0.25


def test_a_corrupt_model_is_not_loaded(engine_db, tmp_path):
    tracker = Tracker(engine_db)
    tracker.register_model("iris", Classifier(0.25))
    digest = Reader(engine_db).models()["hash"].iloc[0]
    raw_sql(engine_db, "UPDATE assets SET value = ? WHERE key = ?", (cloudpickle.dumps("evil"), digest))
    with pytest.raises(IntegrityError, match=f"Model iris:1 \\({digest}\\) is corrupt"):
        Reader(engine_db).load_model("iris")
    with pytest.raises(IntegrityError):
        Reader(engine_db).export_model("iris", tmp_path / "iris.pkl")
    assert not (tmp_path / "iris.pkl").exists()


def test_a_registered_model_outlives_its_run_and_gc(engine_db):
    tracker = Tracker(engine_db)
    tracker.log({"accuracy": 0.9})
    tracker.register_model("iris", Classifier(0.6))
    reader = Reader(engine_db)
    reader.delete_run(tracker.track_id)
    assert reader.gc().assets == 0
    assert reader.load_model("iris").threshold == 0.6
    assert reader.models()["track_id"].tolist() == [tracker.track_id]  # lineage is kept


def test_skip_insert_registers_nothing(db):
    assert Tracker(Tracker.SKIP_INSERT).register_model("iris", Classifier(0.1)) == 0


def _register(args):
    db, threshold = args
    return Tracker(db).register_model("iris", Classifier(threshold))


def test_processes_registering_at_once_get_distinct_versions(engine_db):
    Tracker(engine_db).log({"ready": 1})
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        versions = pool.map(_register, [(engine_db, t / 10) for t in range(8)])
    assert sorted(versions) == list(range(1, 9))
    models = Reader(engine_db).models()
    assert models["version"].tolist() == list(range(1, 9))


def test_open_model_streams_the_stored_bytes(engine_db):
    tracker = Tracker(engine_db)
    tracker.register_model("iris", Classifier(0.25))
    tracker.register_model("onnx", tracker.log_artifact(b"ONNX" * 1000, name="m.onnx"))
    reader = Reader(engine_db)
    with reader.open_model("iris") as stream:
        assert cloudpickle.loads(stream.read()).threshold == 0.25
    with reader.open_model("onnx:1") as stream:
        assert stream.read(4) == b"ONNX" and len(stream.read()) == 3996


def test_an_object_a_model_version_points_at_cannot_be_deleted(engine_db):
    tracker = Tracker(engine_db)
    digest = tracker.log({"model": Classifier(0.5)})["model"]
    tracker.register_model("iris", digest)
    with pytest.raises(ValueError, match="model version iris:1"):
        Reader(engine_db).assets.delete(digest)
    with pytest.raises(ValueError, match="iris:1"):
        tracker.remove_asset(digest, "model")
    assert Reader(engine_db).load_model("iris").threshold == 0.5
    assert Reader(engine_db).to_df()["model"].tolist() == [digest]
