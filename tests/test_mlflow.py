"""MLflow import and export, against stores the real mlflow package writes and reads."""

import os
import sqlite3
import time

import pytest
from typer.testing import CliRunner

mlflow = pytest.importorskip("mlflow", reason="needs the mlflow package (pip install mlflow-skinny)")

from xetrack import Reader, export_mlflow, import_mlflow  # noqa: E402
from xetrack.cli import app  # noqa: E402
from xetrack.migrate import NotAnMlflowStore  # noqa: E402
from xetrack.migrate.mlflow_import import ms_to_stamp  # noqa: E402

T0 = 1_700_000_000_000  # ms: fixed metric timestamps, so values can be compared exactly


def build(uri, art_base, workdir):
    """Several experiments, params, step metrics, tags, a failed run, nested artifact
    folders and a registered model with two versions, an alias and tags, through MLflow's API.
    Returns what was logged, by run id."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(uri, uri)
    logged = {}
    files = os.path.join(workdir, "src")
    os.makedirs(os.path.join(files, "b", "d"), exist_ok=True)
    contents = {"top.txt": b"top", "b/c.txt": b"nested", "b/d/e.bin": bytes(range(256))}
    for rel, data in contents.items():
        with open(os.path.join(files, rel), "wb") as handle:
            handle.write(data)
    vision = client.create_experiment(
        "Vision models/v1", artifact_location=f"{art_base}/vision", tags={"mlflow.note.content": "resnet sweeps"}
    )
    nlp = client.create_experiment("nlp", artifact_location=f"{art_base}/nlp")
    for i, (exp, lr) in enumerate([(vision, "0.01"), (vision, "0.1"), (vision, "1e-3"), (nlp, "0.5")]):
        run = client.create_run(exp, run_name=f"run-{i}", tags={"team": "vision" if exp == vision else "nlp"})
        rid = run.info.run_id
        params = {"lr": lr, "model": "resnet" if i < 3 else "bert", "a b": str(i)}
        for k, v in params.items():
            client.log_param(rid, k, v)
        history = {}
        for step in range(5):
            ts = T0 + 1000 * i + 10 * step
            points = {"loss": 1.0 / (step + 1 + i), "acc": 0.5 + 0.1 * step, "train/loss": 2.0 - step}
            client.log_batch(rid, metrics=[Metric(k, v, ts, step) for k, v in points.items()])
            for k, v in points.items():
                history.setdefault(k, []).append((step, v, ts))
        client.log_metric(rid, "f1", 0.8 + i / 100, timestamp=T0 + 1000 * i + 500, step=0)
        history["f1"] = [(0, 0.8 + i / 100, T0 + 1000 * i + 500)]
        client.set_tag(rid, "stage", f"s{i}")
        if i == 0:
            client.log_artifacts(rid, files, artifact_path="out")
        status = "FAILED" if i == 1 else "FINISHED"
        client.set_terminated(rid, status)
        logged[rid] = {
            "exp": exp,
            "name": f"run-{i}",
            "params": params,
            "history": history,
            "status": status,
            "artifacts": {f"out/{k}": v for k, v in contents.items()} if i == 0 else {},
        }
    first = next(iter(logged))
    client.create_registered_model("clf", description="classifier", tags={"owner": "ana", "task/kind": "tabular"})
    client.create_model_version(
        "clf", f"runs:/{first}/out", run_id=first, description="v1", tags={"framework": "sklearn"}
    )
    client.create_model_version(
        "clf", f"runs:/{first}/out", run_id=first, description="v2", tags={"framework": "sklearn", "tuned": "yes"}
    )
    client.set_registered_model_alias("clf", "champion", "2")
    return logged


@pytest.fixture(scope="session")
def stores(tmp_path_factory):
    """The file store and (when sqlalchemy and alembic are installed) the sqlite store, built once."""
    root = tmp_path_factory.mktemp("mlflow")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        file_uri = f"file://{root}/mlruns"
        out["file"] = (f"{root}/mlruns", None, build(file_uri, f"file://{root}/file-art", root / "files1"))
        try:
            import alembic  # noqa: F401
            import sqlalchemy  # noqa: F401
        except ImportError:
            pass
        else:
            uri = f"sqlite:///{root}/mlflow.db"
            out["sqlite"] = (uri, f"{root}/sql-art", build(uri, f"{root}/sql-art", root / "files2"))
    return out


@pytest.fixture(scope="session")
def postgres_store(pg_server, tmp_path_factory):
    """An MLflow tracking database on the session's PostgreSQL server, built by MLflow
    itself through SQLAlchemy and psycopg (``postgresql+psycopg://``)."""
    pytest.importorskip(
        "sqlalchemy", reason="MLflow's database store needs sqlalchemy (pip install sqlalchemy alembic)"
    )
    pytest.importorskip("alembic", reason="MLflow's database store needs alembic (pip install sqlalchemy alembic)")
    root = tmp_path_factory.mktemp("mlflow-pg")
    url = pg_server.create_database()
    uri = "postgresql+psycopg://" + url.split("://", 1)[1]
    return uri, f"{root}/pg-art", build(uri, f"{root}/pg-art", root / "files3")


@pytest.fixture(params=["file", "sqlite", "postgres"])
def store(request, stores):
    if request.param == "postgres":
        return request.getfixturevalue("postgres_store")
    if request.param not in stores:
        pytest.skip("the sqlite backend needs sqlalchemy and alembic (pip install sqlalchemy alembic)")
    return stores[request.param]


def read_table(db, table):
    return Reader(db, table=table)


def test_import_maps_experiments_runs_params_metrics_tags_and_artifacts(store, tmp_path):
    src, art_root, logged = store
    db = str(tmp_path / "x.db")
    result = import_mlflow(src, db, artifact_root=art_root, progress=False)
    assert (result.experiments, result.runs, result.skipped, result.warnings) == (2, 4, 0, [])
    assert result.artifacts == 3 and result.models == 2
    points = {rid: {(s, ts) for h in r["history"].values() for s, _, ts in h} for rid, r in logged.items()}
    assert result.rows == sum(len(p) for p in points.values())  # one row per (step, timestamp)
    tables = Reader(db).tables().set_index("table")
    assert sorted(tables.index) == ["Vision_models_v1", "nlp"]
    assert tables.loc["Vision_models_v1", "runs"] == 3 and tables.loc["nlp", "runs"] == 1
    assert tables.loc["Vision_models_v1", "description"] == "MLflow experiment: Vision models/v1\nresnet sweeps"
    for table in ("Vision_models_v1", "nlp"):
        reader = read_table(db, table)
        runs = reader.runs().set_index("track_id")
        for rid, run in logged.items():
            if rid not in runs.index:
                continue
            row = runs.loc[rid]
            assert row["run_name"] == run["name"]
            assert row["status"] == run["status"].lower()
            assert str(row["lr"]) == run["params"]["lr"] or row["lr"] == float(run["params"]["lr"])
            assert row["model"] == run["params"]["model"]
            assert row["a_b"] == int(run["params"]["a b"])
            assert row["tags.team"] == ("vision" if table != "nlp" else "nlp")
            assert row["tags.mlflow.runName"] == run["name"]
            assert row["f1"] == run["history"]["f1"][0][1]  # logged once: still a metric
            for key, column in (("loss", "loss"), ("acc", "acc"), ("train/loss", "train_loss")):
                hist = reader.history(column, track_id=rid)
                assert hist["step"].tolist() == [s for s, _, _ in run["history"][key]]
                assert hist["value"].tolist() == pytest.approx([v for _, v, _ in run["history"][key]], abs=0)
            frame = reader.to_df(track_id=rid)
            assert set(frame["timestamp"]) == {ms_to_stamp(ts) for _, ts in points[rid]}
            arts = reader.artifacts(rid)
            assert sorted(arts["name"]) == sorted(run["artifacts"])
            for name, data in run["artifacts"].items():
                assert reader.artifact(name, track_id=rid) == data
        params, metrics, _ = reader._runs().classify()
        assert set(params) == {"lr", "model", "a_b"} and {"loss", "acc", "train_loss", "f1"} <= set(metrics)
    assert read_table(db, "Vision_models_v1").search("tags.stage = 's2'")["run_name"].tolist() == ["run-2"]
    assert read_table(db, "nlp").search("run_name = 'run-3'").shape[0] == 1
    by_system_tag = read_table(db, "Vision_models_v1").search("tags.`mlflow.runName` = 'run-1'")
    assert by_system_tag["status"].tolist() == ["failed"]
    models = Reader(db).models()
    assert models["version"].tolist() == [1, 2] and models["description"].tolist() == ["v1", "v2"]
    assert models.set_index("version").loc[2, "aliases"] == ["champion"]


def test_a_second_import_adds_nothing(store, tmp_path):
    src, art_root, _ = store
    db = str(tmp_path / "x.db")
    import_mlflow(src, db, artifact_root=art_root, progress=False)
    before = {t: len(read_table(db, t).to_df()) for t in ("Vision_models_v1", "nlp")}
    again = import_mlflow(src, db, artifact_root=art_root, progress=False)
    assert (again.runs, again.rows, again.artifacts, again.models, again.skipped) == (0, 0, 0, 0, 4)
    assert {t: len(read_table(db, t).to_df()) for t in before} == before
    assert len(Reader(db).models()) == 2


def test_an_interrupted_import_resumes_without_duplicates(stores, tmp_path):
    src, _, logged = stores["file"]
    db = str(tmp_path / "x.db")
    full = import_mlflow(src, db, progress=False)
    rid = next(iter(logged))
    conn = sqlite3.connect(db)  # as if killed before the run's last write: rows, no lifecycle row
    conn.execute("DELETE FROM xetrack_runs WHERE track_id = ?", (rid,))
    conn.execute('DELETE FROM "Vision_models_v1" WHERE track_id = ? AND step > 2', (rid,))
    conn.commit()
    conn.close()
    again = import_mlflow(src, db, progress=False)
    assert again.runs == 1 and again.skipped == 3
    assert len(read_table(db, "Vision_models_v1").to_df()) + len(read_table(db, "nlp").to_df()) == full.rows
    assert read_table(db, "Vision_models_v1").history("loss", track_id=rid)["step"].tolist() == [0, 1, 2, 3, 4]


def test_round_trip_mlflow_reads_the_same_values(store, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    src, art_root, logged = store
    db = str(tmp_path / "x.db")
    import_mlflow(src, db, artifact_root=art_root, progress=False)
    out = CliRunner().invoke(app, ["export", "mlflow", db, str(tmp_path / "mlruns")])
    assert out.exit_code == 0, out.output
    assert "Exported 4 runs" in out.stdout
    source_uri = src if "://" in src else f"file://{src}"  # sqlite:/// or postgresql+psycopg://
    dest_uri = f"file://{tmp_path}/mlruns"
    a, b = MlflowClient(source_uri, source_uri), MlflowClient(dest_uri, dest_uri)
    names = lambda c: sorted(e.name for e in c.search_experiments())  # noqa: E731
    assert names(a) == names(b)
    for rid, run in logged.items():
        ra, rb = a.get_run(rid), b.get_run(rid)
        assert rb.data.params == ra.data.params
        assert rb.data.metrics == ra.data.metrics
        assert rb.data.tags == ra.data.tags
        assert (rb.info.status, rb.info.run_name, rb.info.start_time, rb.info.end_time) == (
            ra.info.status,
            ra.info.run_name,
            ra.info.start_time,
            ra.info.end_time,
        )
        for key in run["history"]:
            got = [(m.step, m.value, m.timestamp) for m in b.get_metric_history(rid, key)]
            assert sorted(got) == sorted(run["history"][key])
        if run["artifacts"]:
            folder = mlflow.artifacts.download_artifacts(
                run_id=rid, dst_path=str(tmp_path / rid), tracking_uri=dest_uri
            )
            for name, data in run["artifacts"].items():
                with open(os.path.join(folder, name), "rb") as handle:
                    assert handle.read() == data
    experiment = b.get_experiment_by_name("Vision models/v1")
    assert experiment.tags["mlflow.note.content"] == "resnet sweeps"
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(dest_uri)
    try:
        found = mlflow.search_runs([experiment.experiment_id], filter_string="tags.team = 'vision'")
    finally:
        mlflow.set_tracking_uri(before)
    assert sorted(found["tags.mlflow.runName"]) == ["run-0", "run-1", "run-2"]
    assert found.set_index("tags.mlflow.runName").loc["run-0", "metrics.f1"] == 0.8
    va, vb = a.get_model_version_by_alias("clf", "champion"), b.get_model_version_by_alias("clf", "champion")
    assert (
        (str(vb.version), vb.source, vb.run_id)
        == (str(va.version), va.source, va.run_id)
        == ("2", va.source, va.run_id)
    )
    assert [v.description for v in sorted(b.search_model_versions("name='clf'"), key=lambda v: int(v.version))] == [
        "v1",
        "v2",
    ]
    again = CliRunner().invoke(app, ["export", "mlflow", db, str(tmp_path / "mlruns")])
    assert "Exported 0 runs" in again.stdout and "4 runs already there" in again.stdout


def client_of(uri, monkeypatch):
    """An MlflowClient on a store: an mlruns/ folder, sqlite:/// or postgresql+psycopg://."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = uri if "://" in uri else f"file://{uri}"
    return MlflowClient(uri, uri)


def mlflow_artifacts(client, run_id, path=None):
    """Every artifact path of a run, as MLflow lists them (folders walked), sorted."""
    out = []
    for info in client.list_artifacts(run_id, path):
        out += mlflow_artifacts(client, run_id, info.path) if info.is_dir else [info.path]
    return sorted(out)


def run_tables(db):
    """track_id -> the table holding the run."""
    return {rid: t for t in Reader(db).tables()["table"] for rid in Reader(db, table=t).runs()["track_id"]}


def test_each_imported_run_lists_exactly_mlflows_artifacts(store, tmp_path, monkeypatch):
    src, art_root, logged = store
    db = str(tmp_path / "x.db")
    import_mlflow(src, db, artifact_root=art_root, progress=False)
    client = client_of(src, monkeypatch)
    registering = {v.run_id for v in client.search_model_versions("name='clf'")}
    assert registering and registering <= set(logged)  # a run that registered the versions is among them
    tables = run_tables(db)
    assert set(tables) == set(logged)
    for rid in logged:
        assert sorted(Reader(db, table=tables[rid]).artifacts(rid)["name"]) == mlflow_artifacts(client, rid), rid
    for table in set(tables.values()):  # and no entry of a run MLflow does not have
        assert set(Reader(db, table=table).artifacts()["track_id"]) <= set(logged)


def test_the_registry_survives_the_import_and_the_export(store, tmp_path, monkeypatch):
    import json

    src, art_root, logged = store
    db = str(tmp_path / "x.db")
    import_mlflow(src, db, artifact_root=art_root, progress=False)
    a = client_of(src, monkeypatch)
    model = a.get_registered_model("clf")
    aliases = {k: int(v) for k, v in model.aliases.items()}
    assert aliases == {"champion": 2} and model.tags == {"owner": "ana", "task/kind": "tabular"}
    original = sorted(a.search_model_versions("name='clf'"), key=lambda v: int(v.version))
    reader = Reader(db)
    listed = reader.models().set_index("version")
    assert listed.index.tolist() == [int(v.version) for v in original] == [1, 2]
    for v in original:
        row = listed.loc[int(v.version)]
        assert (row["name"], row["description"], row["track_id"]) == ("clf", v.description, v.run_id)
        assert row["aliases"] == [a for a, n in aliases.items() if n == int(v.version)]
        record = json.loads(reader.load_model(f"clf:{v.version}"))  # the version's record, by the public API
        assert (record["source"], record["run_id"], record["created"], record["status"], record["stage"]) == (
            v.source,
            v.run_id,
            v.creation_timestamp,
            v.status,
            v.current_stage,
        )
        assert record["tags"] == v.tags and v.tags["framework"] == "sklearn"
        assert (record["model_description"], record["model_tags"]) == (model.description, model.tags)
        assert sorted(record["files"]) == sorted(logged[v.run_id]["artifacts"])  # what runs:/<id>/out points at
    assert reader.gc(dry_run=True).artifacts == 0  # the records' bytes are the registry's: not garbage
    dest = tmp_path / "mlruns"
    out = CliRunner().invoke(app, ["export", "mlflow", db, str(dest)])
    assert out.exit_code == 0, out.output
    b = client_of(str(dest), monkeypatch)
    back = b.get_registered_model("clf")
    assert (back.description, back.tags) == (model.description, model.tags)
    assert {k: int(v) for k, v in back.aliases.items()} == aliases
    for va in original:
        vb = b.get_model_version("clf", va.version)
        fields = ("source", "run_id", "description", "tags", "current_stage", "status", "creation_timestamp")
        assert {f: getattr(vb, f) for f in fields} == {f: getattr(va, f) for f in fields}, va.version
    for rid in logged:
        assert mlflow_artifacts(b, rid) == mlflow_artifacts(a, rid), rid


def test_an_artifact_at_the_old_record_path_is_the_runs_and_a_version_without_its_run_has_no_entry(
    tmp_path, monkeypatch
):
    """Earlier builds logged each record as ``mlflow-registry/<model>/version-N.json`` in the run: a run's
    own file at that path was overwritten, and a version whose run was not imported got an
    entry of a run named ``mlflow-registry``."""
    client = client_of(str(tmp_path / "mlruns"), monkeypatch)
    exp = client.create_experiment("e")
    rid = client.create_run(exp).info.run_id
    own = tmp_path / "own" / "mlflow-registry" / "clf"
    own.mkdir(parents=True)
    (own / "version-1.json").write_bytes(b'{"mine": true}')
    client.log_artifacts(rid, str(tmp_path / "own"))
    client.set_terminated(rid)
    client.create_registered_model("clf")
    client.create_model_version("clf", f"runs:/{rid}/mlflow-registry", run_id=rid, tags={"k": "v"})
    client.create_registered_model("elsewhere", tags={"team": "nlp"})
    client.create_model_version("elsewhere", "s3://bucket/model", description="its run is not here")
    db = str(tmp_path / "x.db")
    result = import_mlflow(tmp_path / "mlruns", db, progress=False)
    assert (result.runs, result.models, result.warnings) == (1, 2, [])
    reader = Reader(db, table="e")
    assert reader.artifacts()[["track_id", "name"]].values.tolist() == [[rid, "mlflow-registry/clf/version-1.json"]]
    assert reader.artifact("mlflow-registry/clf/version-1.json", track_id=rid) == b'{"mine": true}'
    models = Reader(db).models().set_index("name")
    assert models.loc["clf", "track_id"] == rid and models["track_id"].isna().tolist() == [False, True]
    CliRunner().invoke(app, ["export", "mlflow", db, str(tmp_path / "back")], catch_exceptions=False)
    b = client_of(str(tmp_path / "back"), monkeypatch)
    assert mlflow_artifacts(b, rid) == ["mlflow-registry/clf/version-1.json"]
    folder = mlflow.artifacts.download_artifacts(
        run_id=rid, dst_path=str(tmp_path / "dl"), tracking_uri=f"file://{tmp_path}/back"
    )
    assert (tmp_path / "dl" / "mlflow-registry" / "clf" / "version-1.json").read_bytes() == b'{"mine": true}', folder
    there = b.get_model_version("elsewhere", "1")
    assert (there.source, there.run_id, there.description) == ("s3://bucket/model", None, "its run is not here")
    assert b.get_registered_model("elsewhere").tags == {"team": "nlp"}
    assert b.get_model_version("clf", "1").tags == {"k": "v"}


def test_a_file_an_earlier_build_imported_exports_mlflows_artifacts_and_is_not_imported_twice(
    stores, tmp_path, monkeypatch
):
    """A file an earlier build imported also holds each record as an artifact entry of its run: the
    export leaves those out, a second import finds the versions by their records, and the
    entries themselves stay listed (they are in the file) until the file is imported anew."""
    from xetrack.artifacts import BytesSource, record

    src, _, logged = stores["file"]
    db = str(tmp_path / "x.db")
    import_mlflow(src, db, progress=False)
    tables = run_tables(db)
    reader = Reader(db)
    legacy = {}
    for _, row in reader.models().iterrows():  # what an earlier build wrote besides the registry's row
        name = f"mlflow-registry/{row['name']}/version-{row['version']}.json"
        engine = Reader(db, table=tables[row["track_id"]])._engine
        assert (
            record(
                engine,
                tables[row["track_id"]],
                row["track_id"],
                BytesSource(reader.load_model(f"{row['name']}:{row['version']}")),
                name,
                None,
            )
            == row["hash"]
        )
        legacy.setdefault(row["track_id"], []).append(name)
    assert legacy
    for rid, names in legacy.items():
        assert set(names) <= set(Reader(db, table=tables[rid]).artifacts(rid)["name"])
    again = import_mlflow(src, db, progress=False)
    assert (again.models, len(Reader(db).models())) == (0, 2)
    CliRunner().invoke(app, ["export", "mlflow", db, str(tmp_path / "back")], catch_exceptions=False)
    a, b = client_of(src, monkeypatch), client_of(str(tmp_path / "back"), monkeypatch)
    for rid in logged:
        assert mlflow_artifacts(b, rid) == mlflow_artifacts(a, rid), rid
    assert [v.tags for v in sorted(b.search_model_versions("name='clf'"), key=lambda v: int(v.version))] == [
        {"framework": "sklearn"},
        {"framework": "sklearn", "tuned": "yes"},
    ]


@pytest.mark.parametrize("page", [None, 2], ids=["one-page", "pages-of-2"])
def test_export_of_a_native_file_keeps_a_metric_logged_once(engine_db, tmp_path, monkeypatch, page):
    from mlflow import MlflowClient

    from xetrack import Tracker
    from xetrack.migrate import mlflow_export

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    if page:  # a run read in several pages gives the same history
        monkeypatch.setattr(mlflow_export, "_PAGE", page)
    db = engine_db  # a SQLite file, and a PostgreSQL store
    with Tracker(db, params={"lr": 0.1}, track_id="run one", run_name="first", table="sweep", description="lr") as t:
        for step in range(3):
            t.log({"step": step, "loss": 1.0 - step / 10})
        t.log({"f1": 0.7})
        t.set_tag("team", "vision")
        t.log_artifact(b"weights", name="model/w.bin")
    result = export_mlflow(db, tmp_path / "mlruns")
    assert result.runs == 1 and result.artifacts == 1
    uri = f"file://{tmp_path}/mlruns"
    client = MlflowClient(uri, uri)
    run = client.search_runs([client.get_experiment_by_name("sweep").experiment_id])[0]
    assert run.info.run_name == "first" and run.data.tags["xetrack.track_id"] == "run one"
    assert run.data.params == {"lr": "0.1"} and run.data.metrics == {"loss": 0.8, "f1": 0.7}
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")] == [
        (0, 1.0),
        (1, 0.9),
        (2, 0.8),
    ]
    assert client.get_experiment_by_name("sweep").tags.get("mlflow.note.content") == "lr"


def test_not_an_mlflow_store_is_one_clear_error_and_creates_nothing(tmp_path):
    db = str(tmp_path / "x.db")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotAnMlflowStore, match="is not an MLflow store: no experiment folder"):
        import_mlflow(tmp_path / "empty", db)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(NotAnMlflowStore, match="it has no experiments, metrics, params, runs, tags table"):
        import_mlflow(f"sqlite:///{other}", db)
    assert not os.path.exists(db)
    out = CliRunner().invoke(app, ["import", "mlflow", str(tmp_path / "nope"), db])
    assert out.exit_code == 1 and "not an MLflow store: no such folder" in str(out.exception or out.output)


def test_an_unreadable_run_is_a_warning_naming_it_and_the_rest_is_imported(stores, tmp_path):
    import shutil

    src, _, logged = stores["file"]
    copy = tmp_path / "mlruns"
    shutil.copytree(src, copy)
    bad = next(iter(logged))
    exp = logged[bad]["exp"]
    with open(copy / exp / bad / "metrics" / "loss", "a") as handle:
        handle.write("not a metric line\n")
    result = import_mlflow(copy, str(tmp_path / "x.db"), progress=False)
    assert result.runs == 3 and len(result.warnings) == 1
    assert bad in result.warnings[0] and "metrics/loss line 6" in result.warnings[0]
    assert bad not in set(read_table(str(tmp_path / "x.db"), "Vision_models_v1").to_df()["track_id"])
    other = next(r for r in logged if r != bad and logged[r]["exp"] == exp)
    (copy / exp / other / "meta.yaml").write_text("run_id: [unclosed\n")
    again = import_mlflow(copy, str(tmp_path / "y.db"), progress=False)
    assert again.runs == 2 and len(again.warnings) == 2
    assert any(other in w and "meta.yaml cannot be read" in w for w in again.warnings)


def test_cli_import_prints_counts_and_rate(stores, tmp_path):
    src, _, _ = stores["file"]
    db = str(tmp_path / "x.db")
    out = CliRunner().invoke(app, ["import", "mlflow", src, db, "--quiet"])
    assert out.exit_code == 0, out.output
    assert "Imported 4 runs" in out.stdout and "2 experiments" in out.stdout and "rows/s" in out.stdout


def test_cli_import_from_postgres_never_prints_the_password(postgres_store, tmp_path, capsys):
    src, art_root, logged = postgres_store
    secret = "pw-never-shown"
    with_password = src.replace("postgres@", f"postgres:{secret}@", 1)  # the test server trusts local users
    assert with_password != src
    db = str(tmp_path / "x.db")
    out = CliRunner().invoke(app, ["import", "mlflow", with_password, db, "--quiet", "--artifact-root", art_root])
    assert out.exit_code == 0, out.output
    assert "Imported 4 runs" in out.stdout and secret not in out.output
    assert set(Reader(db, table="nlp").runs()["track_id"]) | set(
        Reader(db, table="Vision_models_v1").runs()["track_id"]
    ) == set(logged)
    from xetrack.cli import main

    server = with_password.rsplit("/", 1)[0]
    for source, expected in (
        (server + "/no_such_database", 'database "no_such_database" does not exist'),
        (server + "/postgres", "is not an MLflow store: it has no experiments"),
    ):
        with pytest.raises(SystemExit) as stopped:
            main(["import", "mlflow", source, str(tmp_path / "y.db"), "--quiet"])
        said = capsys.readouterr()
        assert stopped.value.code == 1 and expected in said.err, said
        assert secret not in said.err + said.out


@pytest.mark.stress
def test_import_rate_1000_runs_5_metrics_100_steps(tmp_path):
    """Writes the file store layout directly (MLflow's API would take minutes), then imports it."""
    root = tmp_path / "mlruns" / "1"
    (root).mkdir(parents=True)
    (root / "meta.yaml").write_text("experiment_id: '1'\nname: bench\nlifecycle_stage: active\n")
    for r in range(1000):
        run = root / f"{r:032x}"
        for sub in ("params", "metrics", "tags", "artifacts"):
            (run / sub).mkdir(parents=True)
        (run / "meta.yaml").write_text(
            f"run_id: {r:032x}\nrun_name: r{r}\nstatus: 3\nstart_time: {T0}\nend_time: {T0 + 1}\n"
        )
        (run / "params" / "lr").write_text(str(r / 1000))
        for m in range(5):
            (run / "metrics" / f"m{m}").write_text("".join(f"{T0 + s} {s / 100} {s}\n" for s in range(100)))
    started = time.perf_counter()
    result = import_mlflow(tmp_path / "mlruns", str(tmp_path / "x.db"), progress=False)
    took = time.perf_counter() - started
    print(f"\n{result.rows} rows in {took:.1f}s: {result.rows / took:,.0f} rows/s ({500_000 / took:,.0f} points/s)")
    assert result.runs == 1000 and result.rows == 100_000


def test_meta_yaml_reads_the_same_without_pyyaml(stores):
    """The import reads meta.yaml without PyYAML too: the fallback agrees with PyYAML on
    every meta.yaml MLflow wrote."""
    import glob

    yaml = pytest.importorskip("yaml", reason="needs PyYAML to compare against")
    from xetrack.migrate.mlflow_store import _flat_yaml

    paths = glob.glob(os.path.join(stores["file"][0], "**", "meta.yaml"), recursive=True)
    assert len(paths) >= 9  # 3 experiments, 4 runs, a model and its 2 versions
    for path in paths:
        with open(path) as handle:
            text = handle.read()
        assert _flat_yaml(text) == yaml.safe_load(text), path
