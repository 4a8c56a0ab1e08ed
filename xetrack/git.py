"""The commit a run's code came from: ``git rev-parse HEAD`` of the caller's repository."""

from __future__ import annotations

import os
import re
import subprocess

#: The column that holds the commit hash in every row of a Tracker made with ``git_root``.
GIT_COMMIT_HASH = "git_commit_hash"

_HASH = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")  # SHA-1, or SHA-256 repositories

# These would point git at another repository than the one under ``root`` (git sets
# them for hooks, for instance); the caller asked about ``root``.
_LOCATION_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)


def commit_hash(root: str | os.PathLike[str] = ".") -> str | None:
    """The full hash of HEAD in the repository that holds ``root``, or None.

    None when ``root`` is in no repository, the repository has no commit yet, ``root``
    does not exist, or git is not installed: asking never fails.

    >>> commit_hash(".")  # doctest: +SKIP
    '1b2b28c0e6b4a5f1d07c9e1f0a3c2d4b5e6f7a8b'
    """
    env = {k: v for k, v in os.environ.items() if k not in _LOCATION_VARIABLES}
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
            cwd=os.fspath(root),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    text = done.stdout.strip()
    return text if done.returncode == 0 and _HASH.match(text) else None
