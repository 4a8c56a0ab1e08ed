"""Run a child process that meets file permission bits as a user does, even as root.

CI runs as root, and root ignores permission bits, so a "read-only file" test would
prove nothing. The child stays root (it can still run a Python under /root) but drops
the two capabilities that override permission bits before it execs.
"""

import ctypes
import os
import sys

import pytest

_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _PR_CAPBSET_DROP = 1, 2, 24


def _drop_file_permission_override():
    """In the child before exec: root loses the capabilities that ignore permission bits
    (it stays root, so it can still run a Python that lives under /root)."""
    libc = ctypes.CDLL(None, use_errno=True)
    caps = (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH)
    for cap in caps:  # the bounding set: exec must not give them back
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    keep = ~sum(1 << cap for cap in caps) & 0xFFFFFFFF
    for name in ("effective", "permitted", "inheritable"):
        setattr(data[0], name, getattr(data[0], name) & keep)
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def as_a_user():
    """subprocess arguments that make the child meet permission bits as a user does."""
    if os.geteuid() != 0:
        return {}
    if not sys.platform.startswith("linux"):
        pytest.skip("running as root, and dropping root's permission override needs Linux capabilities")
    return {"preexec_fn": _drop_file_permission_override}
