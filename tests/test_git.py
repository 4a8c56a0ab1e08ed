"""git_root=: every row carries the commit the code came from; no repository, no column."""

import subprocess

import pytest

from xetrack import Reader, Tracker


@pytest.fixture(params=["sqlite", "duckdb"])
def engine(request):
    return request.param


@pytest.fixture(autouse=True)
def no_repository_above(tmp_path, monkeypatch):
    # tmp_path may itself sit inside a repository: git must not look above it.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    git(path, "config", "user.name", "Test User")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "commit.gpgsign", "false")
    (path / "train.py").write_text("print('hi')\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    (path / "src").mkdir()
    return path


def test_rows_carry_the_head_commit(repo, tmp_path, engine):
    head = git(repo, "rev-parse", "HEAD")
    db = str(tmp_path / "exp.db")
    tracker = Tracker(db, engine=engine, git_root=repo / "src")  # any folder inside the repository
    assert len(head) == 40 and tracker.params["git_commit_hash"] == head
    tracker.log({"accuracy": 0.9})
    tracker.track(lambda: 1)
    assert Reader(db, engine=engine).to_df()["git_commit_hash"].tolist() == [head, head]


def test_the_hash_is_read_once_at_construction(repo, tmp_path):
    tracker = Tracker(str(tmp_path / "exp.db"), git_root=str(repo))
    first = git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text("print('changed')\n")
    git(repo, "commit", "-q", "-am", "second")
    assert tracker.log({"a": 1})["git_commit_hash"] == first
    assert Tracker(Tracker.IN_MEMORY, git_root=repo).params["git_commit_hash"] == git(repo, "rev-parse", "HEAD")


def test_outside_a_repository_there_is_no_column(tmp_path, engine):
    plain = tmp_path / "plain"
    plain.mkdir()
    db = str(tmp_path / "exp.db")
    tracker = Tracker(db, engine=engine, git_root=plain)
    assert tracker.log({"a": 1}) == {"a": 1, "timestamp": tracker.latest["timestamp"], "track_id": tracker.track_id}
    assert "git_commit_hash" not in Reader(db, engine=engine).columns
    for root in (tmp_path / "missing", tmp_path / "exp.db"):  # not even a folder
        assert "git_commit_hash" not in Tracker(Tracker.IN_MEMORY, git_root=root).params


def test_a_repository_without_commits_has_no_column(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert "git_commit_hash" not in Tracker(Tracker.IN_MEMORY, git_root=empty).params


def test_git_variables_of_the_environment_do_not_redirect(repo, tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))  # as inside a git hook
    assert "git_commit_hash" not in Tracker(Tracker.IN_MEMORY, git_root=plain).params


def test_without_git_root_there_is_no_column(repo, monkeypatch):
    monkeypatch.chdir(repo)
    assert "git_commit_hash" not in Tracker(Tracker.IN_MEMORY).log({"a": 1})
