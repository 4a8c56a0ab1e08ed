"""A SQLite file's signature: it changes whenever a commit could have changed what the
file holds, for any connection of any process, and it is read without a connection.

Two reads of an unchanged file give equal signatures, so a frame computed from the file
can be cached by it and served to every later Reader of the process, however new its
connection is (a connection's own ``PRAGMA data_version`` only compares with itself).

It is made of:

- the file's device, inode, size and modification time (a replaced or rewritten file);
- the database header's file change counter (bytes 24-27), which every commit in a
  rollback-journal mode increments;
- in WAL mode, what the WAL holds: the WAL index header's last valid frame, its
  checksum and the salts (bytes 16-47 of ``-shm``), which move with every commit. An
  empty WAL adds nothing: a checkpoint that only truncates it, or the ``-shm`` that the
  first opener makes and the last closer removes, leave the signature as it was. With no
  ``-shm`` (no connection open), the size of a leftover ``-wal`` stands in for it.

A read that races a commit sees either side or a mix of them; a mix differs from both,
which only costs a recomputation. A signature read before the data it guards can only
be older than that data, never newer, so a cached answer never hides a commit.

>>> signature("/no/such.db") is None
True
"""

from __future__ import annotations

import os
from typing import Any

_HEADER = 100  # the database header
_WAL_INDEX = 48  # one copy of the WAL index header


def _head(path: str, size: int) -> bytes:
    try:
        with open(path, "rb", buffering=0) as handle:
            return handle.read(size)
    except OSError:
        return b""


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def signature(path: str) -> tuple[Any, ...] | None:
    """The file's signature (see the module's docstring); None when the file is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    header = _head(path, _HEADER)
    index = _head(path + "-shm", _WAL_INDEX)
    frames: Any
    if len(index) == _WAL_INDEX:
        frames = index[16:48] if index[16:20] != b"\0\0\0\0" else None  # mxFrame 0: an empty WAL
    else:
        wal = _stat(path + "-wal")
        frames = None if wal is None or wal[0] == 0 else ("wal", wal)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, header[24:28], frames)


__all__ = ["signature"]
