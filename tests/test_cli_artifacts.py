"""`xt artifacts`, `xt models` and `xt assets gc`, run as a user runs them (a subprocess).

Reads must leave the file as it was; bytes that come out must be the bytes logged, and
bytes that no longer match their hash must never land in an output file.
"""

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess

import cloudpickle
import pytest

from test_cli import XT, fails, fingerprint, ok
from xetrack import Reader, Tracker
from xetrack.store.chunks import CHUNK_SIZE

CSV_A = b"epoch,loss\n1,0.9\n2,0.5\n"
CSV_B = b"epoch,loss\n1,0.7\n"
BLOB = bytes(range(256)) * (CHUNK_SIZE // 256 * 2 + 1000)  # three chunks, not UTF-8


def make_db(path):
    """run-a: loss.csv and a three-chunk weights/model.bin; run-b: another loss.csv.
    Model iris: v1 (object, production), v2 (object, staging), v3 (run-a's model.bin)."""
    first = Tracker(path, params={"model": "rf"})
    first.track_id = "run-a"
    first.log({"acc": 0.8})
    first.log_artifact(CSV_A, name="loss.csv")
    blob = first.log_artifact(BLOB, name="weights/model.bin", type="weights")
    first.register_model("iris", {"w": [1, 2]}, alias="production", description="first try")
    first.close()
    second = Tracker(path, params={"model": "lr"})
    second.track_id = "run-b"
    second.log({"acc": 0.9})
    second.log_artifact(CSV_B, name="loss.csv")
    second.register_model("iris", {"w": [3, 4]}, alias="staging")
    second.register_model("iris", blob, description="raw weights")
    second.close()
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_db(str(tmp_path_factory.mktemp("template") / "results.db"))


@pytest.fixture
def db(template, tmp_path):
    """A fresh copy in a folder of its own (outputs go elsewhere, so the folder check holds)."""
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "results.db"
    shutil.copy(template, path)
    return str(path)


def raw(*args):
    """Run xt and keep stdout as bytes."""
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("XT_TRACEBACK", None)
    return subprocess.run([XT, *map(str, args)], capture_output=True, env=env, timeout=120)


def key(data):
    """An artifact's hash: the first 16 hex characters of its BLAKE2b-256 digest."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()[:16]


def corrupt(db, key, seq=0):
    """Rotate one chunk's bytes by one: same size, different content."""
    conn = sqlite3.connect(db)
    with conn:
        (data,) = conn.execute("SELECT data FROM xetrack_chunks WHERE hash = ? AND seq = ?", (key, seq)).fetchone()
        conn.execute("UPDATE xetrack_chunks SET data = ? WHERE hash = ? AND seq = ?", (data[1:] + data[:1], key, seq))
    conn.close()


# -- xt artifacts ---------------------------------------------------------------------
def test_artifacts_ls_table_json_and_one_run(db):
    before = fingerprint(db)
    table = ok("artifacts", "ls", db)
    lines = table.splitlines()
    assert re.match(r"\| track_id\s+\| name\s+\| type\s+\| hash\s+\|\s+size \| created", lines[0]), lines[0]
    assert len(lines) == 5 and re.search(
        rf"\| run-a\s+\| weights/model.bin \| weights \| \w{{16}} \|\s+{len(BLOB)} \|", table
    )

    listing = json.loads(ok("artifacts", "ls", db, "--json"))
    assert [(a["track_id"], a["name"], a["size"]) for a in listing] == [
        ("run-a", "loss.csv", len(CSV_A)),
        ("run-a", "weights/model.bin", len(BLOB)),
        ("run-b", "loss.csv", len(CSV_B)),
    ]
    assert listing[1]["type"] == "weights" and listing[0]["type"] == "bytes"
    assert [a["hash"] for a in listing] == [key(CSV_A), key(BLOB), key(CSV_B)]

    only_b = json.loads(ok("artifacts", "ls", db, "--track-id", "run-b", "--json"))
    assert [a["name"] for a in only_b] == ["loss.csv"] and only_b[0]["size"] == len(CSV_B)
    assert ok("artifacts", "ls", db, "-r", "run-z") == f"No artifacts in {db} for run run-z\n"
    assert json.loads(ok("artifacts", "ls", db, "-r", "run-z", "--json")) == []
    assert fingerprint(db) == before  # listing changed nothing


def test_artifacts_ls_empty_and_bad_table(tmp_path):
    path = str(tmp_path / "plain.db")
    with Tracker(path) as tracker:
        tracker.log({"acc": 1})
    assert ok("artifacts", "ls", path) == f"No artifacts in {path}\n"
    assert ok("models", "ls", path) == f"No models in {path}\n"
    assert json.loads(ok("models", "ls", path, "--json")) == []
    fails("artifacts", "ls", path, "--table", "defualt", match=r"Table 'defualt' not found.*Tables: default")


def test_artifacts_get_to_files_and_stdout(db, tmp_path):
    before = fingerprint(db)
    out = tmp_path / "out"
    # by name: the latest logged under it (run-b's), or one run's
    assert ok("artifacts", "get", db, "loss.csv", out / "b.csv") == f"Wrote {len(CSV_B)} bytes to {out / 'b.csv'}\n"
    assert (out / "b.csv").read_bytes() == CSV_B
    assert ok("artifacts", "get", db, "loss.csv", out / "a.csv", "--track-id", "run-a").startswith(
        f"Wrote {len(CSV_A)} bytes"
    )
    assert (out / "a.csv").read_bytes() == CSV_A
    # by hash, several chunks, over an existing file
    (out / "model.bin").write_bytes(b"old")
    blob = key(BLOB)
    assert ok("artifacts", "get", db, blob, out / "model.bin") == f"Wrote {len(BLOB)} bytes to {out / 'model.bin'}\n"
    assert (out / "model.bin").read_bytes() == BLOB
    assert sorted(os.listdir(out)) == ["a.csv", "b.csv", "model.bin"]  # no temporary file left

    streamed = raw("artifacts", "get", db, "weights/model.bin", "-")
    assert streamed.returncode == 0 and streamed.stderr == b"" and streamed.stdout == BLOB
    assert raw("artifacts", "get", db, "loss.csv", "-", "-r", "run-a").stdout == CSV_A
    piped = subprocess.run(
        f"{XT} artifacts get {db} weights/model.bin - | wc -c", shell=True, capture_output=True, text=True
    )
    assert piped.stdout.strip() == str(len(BLOB))
    assert fingerprint(db) == before  # getting changed nothing


def test_artifacts_get_errors_are_one_line(db, tmp_path):
    message = fails(
        "artifacts", "get", db, "loss.cvs", tmp_path / "x.csv", match=r"No artifact 'loss.cvs' in table 'default'"
    )
    assert "Did you mean: loss.csv?" in message and "Artifacts: loss.csv, weights/model.bin" in message
    fails(
        "artifacts",
        "get",
        db,
        "weights/model.bin",
        "-",
        "-r",
        "run-b",
        match=r"No artifact .* in run 'run-b'.*Artifacts: loss.csv",
    )
    fails("artifacts", "get", db, "0" * 16, "-", match="No artifact '0000000000000000'")
    fails("artifacts", "get", db, "loss.csv", tmp_path, match="is a folder: give the file to write, e.g. .*loss.csv")
    fails(
        "artifacts",
        "get",
        db,
        "loss.csv",
        "-",
        "--table",
        "serving",
        match="No artifact 'loss.csv' in table 'serving'.*none",
    )
    assert not (tmp_path / "x.csv").exists()


def test_a_corrupt_artifact_leaves_no_output_file(db, tmp_path):
    corrupt(db, key(CSV_A))
    target = tmp_path / "out" / "loss.csv"
    fails("artifacts", "get", db, "loss.csv", target, "-r", "run-a", match=r"Artifact 'loss.csv' \(\w{16}\) is corrupt")
    assert not target.parent.exists() or os.listdir(target.parent) == []
    out = raw("artifacts", "get", db, "loss.csv", "-", "-r", "run-a")
    assert out.returncode == 1 and out.stdout == b"" and b"is corrupt" in out.stderr
    # the intact one still comes out
    assert raw("artifacts", "get", db, "loss.csv", "-").stdout == CSV_B


def test_a_corrupt_last_chunk_on_stdout_says_to_discard_what_went_out(db, tmp_path):
    blob = key(BLOB)
    corrupt(db, blob, seq=2)
    out = raw("artifacts", "get", db, blob, "-")
    lines = out.stderr.decode().strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and "Traceback" not in lines[0]
    assert re.search(
        rf"Artifact 'weights/model.bin' \({blob}\) is corrupt.*; "
        rf"{2 * CHUNK_SIZE} bytes already went to stdout: discard them",
        lines[0],
    )
    assert out.stdout == BLOB[: 2 * CHUNK_SIZE]  # the two good chunks, never the bad one
    fails("artifacts", "get", db, blob, tmp_path / "model.bin", match="is corrupt")
    assert not (tmp_path / "model.bin").exists() and os.listdir(tmp_path) == ["data"]
    fails("models", "export", db, "iris:3", tmp_path / "m.bin", match=r"Model iris:3 .* is corrupt")
    assert os.listdir(tmp_path) == ["data"]


# -- xt models --------------------------------------------------------------------------
def test_models_ls_table_and_json(db):
    before = fingerprint(db)
    table = ok("models", "ls", db)
    lines = table.splitlines()
    assert re.match(
        r"\| name\s+\|\s+version \| aliases\s+\| hash\s+\| kind\s+\|\s+size \| track_id\s+\| description", lines[0]
    )
    assert len(lines) == 5
    assert re.search(r"\| iris\s+\|\s+1 \| production\s+\| \w{16} \| asset\s+\|\s+\d+ \| run-a\s+\| first try", table)
    assert re.search(rf"\| iris\s+\|\s+3 \|\s+\| \w{{16}} \| artifact \|\s+{len(BLOB)} \| run-b", table)

    versions = json.loads(ok("models", "ls", db, "--json"))
    assert [(v["version"], v["aliases"], v["kind"], v["track_id"]) for v in versions] == [
        (1, ["production"], "asset", "run-a"),
        (2, ["staging"], "asset", "run-b"),
        (3, [], "artifact", "run-b"),
    ]
    assert versions[2]["hash"] == key(BLOB) and versions[2]["size"] == len(BLOB)
    assert versions[1]["description"] is None and versions[2]["description"] == "raw weights"
    assert fingerprint(db) == before


def test_models_alias_moves_and_unalias(db):
    assert ok("models", "alias", db, "iris", 2, "production") == "iris@production -> version 2 (was 1)\n"
    assert ok("models", "alias", db, "iris", 2, "production") == "iris@production -> version 2 (unchanged)\n"
    assert ok("models", "alias", db, "iris", 3, "candidate") == "iris@candidate -> version 3 (new)\n"
    table = ok("models", "ls", db)
    assert re.search(r"\| iris\s+\|\s+2 \| production, staging ", table), table
    assert re.search(r"\| iris\s+\|\s+1 \|\s+\|", table) and re.search(r"\| iris\s+\|\s+3 \| candidate ", table)
    assert [v["aliases"] for v in json.loads(ok("models", "ls", db, "--json"))] == [
        [],
        ["production", "staging"],
        ["candidate"],
    ]
    assert Reader(db).load_model("iris@production") == {"w": [3, 4]}

    assert ok("models", "unalias", db, "iris", "staging") == "Removed iris@staging (was version 2)\n"
    assert [v["aliases"] for v in json.loads(ok("models", "ls", db, "--json"))] == [[], ["production"], ["candidate"]]
    fails(
        "models",
        "unalias",
        db,
        "iris",
        "staging",
        match=r"Model 'iris' has no alias 'staging'.*Aliases: candidate -> 3, production -> 2",
    )


def test_models_alias_errors_list_what_exists(db):
    before = fingerprint(db)
    fails(
        "models",
        "alias",
        db,
        "irsi",
        1,
        "production",
        match=r"No model named 'irsi'. Did you mean: iris\? Models: iris",
    )
    fails("models", "alias", db, "iris", 7, "production", match=r"Model 'iris' has no version 7. Versions: 1, 2, 3")
    fails("models", "alias", db, "iris", 1, "latest", match="'latest' cannot be an alias")
    fails("models", "alias", db, "iris", 0, "production", match="VERSION", code=2)
    fails("models", "unalias", db, "irsi", "production", match=r"No model named 'irsi'.*Models: iris")
    fails("models", "unalias", db, "iris", "prod", match=r"has no alias 'prod'. Did you mean: production\?")
    assert fingerprint(db)[0] == before[0]  # a refused change writes nothing


def test_models_export_to_files_and_stdout(db, tmp_path):
    before = fingerprint(db)
    latest = tmp_path / "latest.bin"
    assert ok("models", "export", db, "iris", latest) == f"Wrote {len(BLOB)} bytes to {latest}\n"
    assert latest.read_bytes() == BLOB  # v3 is the artifact's bytes, as they were logged
    pickled = tmp_path / "production.cloudpickle"
    assert ok("models", "export", db, "iris@production", pickled).startswith("Wrote ")
    assert cloudpickle.loads(pickled.read_bytes()) == {"w": [1, 2]}
    assert cloudpickle.loads(raw("models", "export", db, "iris:2", "-").stdout) == {"w": [3, 4]}
    assert raw("models", "export", db, "iris@latest", "-").stdout == BLOB
    assert fingerprint(db) == before

    fails("models", "export", db, "iris:x", tmp_path / "x", match=r"'iris:x': the version after ':' must be a number")
    fails(
        "models",
        "export",
        db,
        "iris:9",
        "-",
        match=r"Model 'iris' has no version 9. Versions: 1, 2, 3; aliases: production -> 1, staging -> 2",
    )
    fails(
        "models",
        "export",
        db,
        "iris@prod",
        "-",
        match=r"has no alias 'prod'. Did you mean: production\? Aliases: production -> 1",
    )
    fails("models", "export", db, "cat", tmp_path / "x", match=r"No model named 'cat'. Models: iris")
    fails("models", "export", db, "iris", tmp_path, match="is a folder")
    assert sorted(os.listdir(tmp_path)) == ["data", "latest.bin", "production.cloudpickle"]


# -- xt assets gc -------------------------------------------------------------------------
def test_gc_after_delete_frees_exactly_the_run_only_bytes(db):
    only_a = key(CSV_A)
    assert ok("assets", "gc", db) == "Removed 0 assets and 0 artifacts: 0 bytes freed\n"  # all in use
    assert ok("delete", db, "run-a") == "Deleted 1\n"
    assert json.loads(ok("artifacts", "ls", db, "--json"))[0]["track_id"] == "run-b"

    assert ok("assets", "gc", db, "--dry-run") == f"Would remove 0 assets and 1 artifact: {len(CSV_A)} bytes\n"
    dry = json.loads(ok("assets", "gc", db, "--dry-run", "--json"))
    assert dry == {
        "dry_run": True,
        "assets": 0,
        "artifacts": 1,
        "bytes": len(CSV_A),
        "file_bytes": 0,
        "hashes": [only_a],
    }
    assert Reader(db).artifact(only_a) == CSV_A  # the dry run removed nothing

    assert ok("assets", "gc", db) == f"Removed 0 assets and 1 artifact: {len(CSV_A)} bytes freed\n"
    fails("artifacts", "get", db, only_a, "-", match=f"No artifact '{only_a}'")
    # model versions keep run-a's object and its weights; run-b keeps its own csv
    assert (
        Reader(db).load_model("iris:1") == {"w": [1, 2]} and raw("models", "export", db, "iris:3", "-").stdout == BLOB
    )
    assert raw("artifacts", "get", db, "loss.csv", "-").stdout == CSV_B
    assert json.loads(ok("assets", "gc", db, "--json"))["bytes"] == 0


def test_gc_removes_an_unreferenced_object_and_vacuum_shrinks_the_file(tmp_path):
    path = str(tmp_path / "objects.db")
    with Tracker(path) as tracker:
        tracker.track_id = "big-run"
        tracker.log({"weights": set(range(1000))})  # not a plain value: an asset
        tracker.log_artifact(BLOB, name="model.bin")
    (asset,) = json.loads(ok("assets", "ls", path, "--json"))
    assert asset["references"] == 1 and asset["models"] == 0
    ok("delete", path, "big-run")
    size = os.path.getsize(path)

    report = json.loads(ok("assets", "gc", path, "--vacuum", "--json"))
    assert report["assets"] == 1 and report["artifacts"] == 1 and report["bytes"] == asset["bytes"] + len(BLOB)
    assert report["hashes"][0] == asset["hash"] and report["file_bytes"] >= len(BLOB)
    assert os.path.getsize(path) < min(size, len(BLOB))
    assert ok("assets", "ls", path) == f"No assets in {path}\n"
    out = ok("assets", "gc", path, "--vacuum")
    assert out.startswith("Removed 0 assets and 0 artifacts: 0 bytes freed\nThe file is ") and out.endswith(
        " bytes smaller\n"
    )
    fails("assets", "gc", path, "--vacuum", "--dry-run", match="--dry-run removes nothing", code=2)


def test_assets_ls_counts_model_versions(db):
    listing = json.loads(ok("assets", "ls", db, "--json"))
    assert [(a["references"], a["models"]) for a in listing] == [(0, 1), (0, 1)]
    assert re.search(r"\|\s+references \|\s+models \|", ok("assets", "ls", db))
