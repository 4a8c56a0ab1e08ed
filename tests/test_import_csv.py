"""``xetrack.import_csv`` and ``xt import csv``: a CSV file's lines as rows, grouped into runs."""

import csv
import os
import subprocess
import sys

import pytest

from xetrack import Reader, import_csv

XT = os.path.join(os.path.dirname(sys.executable), "xt")
LINES = [
    ["run", "epoch", "train/loss", "acc", "model", "good", "note"],
    ["lr-0.1", "0", "0.9", "1", "resnet", "true", "first"],
    ["lr-0.1", "1", "0.5", "2", "resnet", "false", ""],
    ["lr-0.1", "2", "0.25", "3", "resnet", "true", "007"],
    ["lr-0.01", "0", "1.5", "4", "vit", "false", ""],
    ["lr-0.01", "1", "1e-1", "", "vit", "", "x"],
]


def write(path, lines):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(lines)
    return str(path)


@pytest.fixture
def results(tmp_path):
    return write(tmp_path / "results.csv", LINES)


def frame_of(db, table="default"):
    with Reader(db, table=table) as reader:
        runs = reader.runs()
        frame = reader.to_df()
    names = dict(zip(runs["track_id"], runs["run_name"]))
    frame["run"] = frame["track_id"].map(names)
    return runs, frame


def test_lines_become_rows_grouped_into_runs(results, tmp_path):
    db = str(tmp_path / "exp.db")
    result = import_csv(results, db, run_column="run", step_column="epoch")
    assert (result.runs, result.rows, result.skipped, result.warnings) == (2, 5, 0, [])
    runs, frame = frame_of(db)
    assert sorted(runs["run_name"]) == ["lr-0.01", "lr-0.1"] and set(runs["status"]) == {"finished"}
    assert "run" not in runs.columns and "epoch" not in frame.columns  # the run's name; the step
    first = frame[frame["run"] == "lr-0.1"]
    assert first["step"].tolist() == [0, 1, 2]
    assert first["train_loss"].tolist() == [0.9, 0.5, 0.25]  # the key rules: train/loss -> train_loss
    assert first["acc"].tolist() == [1, 2, 3] and frame["acc"].dtype.kind == "i"  # ints
    assert frame["acc"].isna().tolist() == [False] * 4 + [True]  # the empty cell
    assert first["good"].tolist() == [True, False, True]
    assert first["note"].tolist()[::2] == ["first", "007"]  # text stays text ("007" too)
    second = frame[frame["run"] == "lr-0.01"]
    assert second["step"].tolist() == [0, 1] and second["train_loss"].tolist() == [1.5, 0.1]
    assert second["model"].tolist() == ["vit", "vit"]
    assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique  # file order
    row = runs.set_index("run_name").loc["lr-0.1"]
    assert row["start"] == first["timestamp"].iloc[0] and row["end"] == first["timestamp"].iloc[-1]
    with Reader(db) as reader:
        tags = reader.tags(runs["track_id"].iloc[0])
    assert tags["import.source"] == "csv" and tags["import.path"] == os.path.abspath(results)


def test_a_second_import_adds_nothing_and_a_changed_run_is_new(results, tmp_path):
    db = str(tmp_path / "exp.db")
    import_csv(results, db, run_column="run", step_column="epoch")
    again = import_csv(results, db, run_column="run", step_column="epoch")
    assert (again.runs, again.rows, again.skipped) == (0, 0, 2)
    write(results, LINES + [["lr-0.01", "2", "0.05", "5", "vit", "true", ""]])
    grown = import_csv(results, db, run_column="run", step_column="epoch")
    assert (grown.runs, grown.rows, grown.skipped) == (1, 3, 1)
    runs, frame = frame_of(db)
    assert sorted(runs["run_name"]) == ["lr-0.01", "lr-0.01", "lr-0.1"] and len(frame) == 8


def test_timestamps_and_reserved_column_names(tmp_path):
    path = write(
        tmp_path / "export.csv",
        [
            ["timestamp", "track_id", "name", "step", "loss"],
            ["2024-05-01 10:00:00.250000", "abc", "a", "9", "0.5"],
            ["2024-05-01T10:00:01", "abc", "a", "8", "0.4"],
        ],
    )
    db = str(tmp_path / "exp.db")
    import_csv(path, db, run_column="name", table="imported")
    runs, frame = frame_of(db, "imported")
    assert frame["timestamp"].tolist() == ["2024-05-01 10:00:00.250000", "2024-05-01 10:00:01.000000"]
    assert frame["track_id_csv"].tolist() == ["abc", "abc"] and frame["step_csv"].tolist() == [9, 8]
    assert runs["start"].iloc[0] == "2024-05-01 10:00:00.250000" and runs["end"].iloc[0] == "2024-05-01 10:00:01.000000"


@pytest.mark.parametrize(
    "lines, kwargs, error, match",
    [
        (None, {"run_column": "nope"}, ValueError, r"no column 'nope' \(the run column\); its columns: run, epoch"),
        (None, {"run_column": "run", "step_column": "nope"}, ValueError, "no column 'nope' \\(the step column\\)"),
        (
            None,
            {"run_column": "run", "step_column": "model"},
            ValueError,
            "line 2: the step column 'model' holds 'resnet'",
        ),
        ([["run", "x"], ["a", "1", "2"]], {"run_column": "run"}, ValueError, "line 2: 3 cells, but the header names 2"),
        ([["run", "x"], ["", "1"]], {"run_column": "run"}, ValueError, "line 2: the run column 'run' is empty"),
        ([["run", "x", "x"], ["a", "1", "2"]], {"run_column": "run"}, ValueError, "'x' appear more than once"),
        ([["", "run"], ["0", "a"]], {"run_column": "run"}, ValueError, "column 1 has no name"),
        ([], {"run_column": "run"}, ValueError, "is empty"),
    ],
)
def test_bad_input_is_a_clear_error(results, tmp_path, lines, kwargs, error, match):
    path = results if lines is None else write(tmp_path / "bad.csv", lines)
    db = str(tmp_path / "exp.db")
    with pytest.raises(error, match=match):
        import_csv(path, db, **kwargs)
    assert not os.path.exists(db)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file"):
        import_csv(tmp_path / "missing.csv", str(tmp_path / "exp.db"), run_column="run")


def xt(*args):
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("XT_TRACEBACK", None)
    return subprocess.run([XT, *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def test_the_cli_command(results, tmp_path):
    db = tmp_path / "exp.db"
    out = xt("import", "csv", results, db, "--run-column", "run", "--step-column", "epoch", "-t", "csv")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"Imported 2 runs (5 rows) from {results}; 0 runs already there"
    runs, frame = frame_of(str(db), "csv")
    assert sorted(runs["run_name"]) == ["lr-0.01", "lr-0.1"] and frame["step"].tolist() == [0, 1, 2, 0, 1]
    again = xt("import", "csv", results, db, "--run-column", "run", "-t", "csv", "--step-column", "epoch")
    assert again.stdout.strip() == f"Imported 0 runs (0 rows) from {results}; 2 runs already there"
    bad = xt("import", "csv", results, db, "--run-column", "nope")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip() == (
        f"Error: {results!r} has no column 'nope' (the run column); its columns: "
        "run, epoch, train/loss, acc, model, good, note"
    )
