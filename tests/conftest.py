"""Fixtures shared by the test files. A file may define its own ``db`` to name its file."""

import pytest


@pytest.fixture(params=["sqlite", "duckdb"])
def engine(request):
    """Both engines, for tests of anything that touches storage."""
    return request.param


@pytest.fixture
def db(tmp_path):
    """A path for a fresh database file."""
    return str(tmp_path / "exp.db")
