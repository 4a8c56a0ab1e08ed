"""xetrack: a local-first experiment tracker on one SQLite file.

>>> from xetrack import Tracker, Reader
>>> tracker = Tracker(Tracker.IN_MEMORY, params={"model": "resnet18"})
>>> tracker.log({"accuracy": 0.9})["model"]
'resnet18'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .copy import copy  # the function, over the package xetrack/copy/ (its docstring says why)
from .errors import (
    ColumnLimitError,
    ColumnNotFoundError,
    DatabaseBusyError,
    DatabaseError,
    DiskFullError,
    IntegrityError,
    NotFoundError,
    TableNotFoundError,
    XetrackError,
)

# Tracker, Reader and the backend switch pull in pandas; they load on first use, so
# that `import xetrack` (and `xt --help`) stays fast.
_LAZY = {
    "Tracker": ".tracker",
    "Reader": ".reader",
    "set_backend": ".frames",
    "get_backend": ".frames",
    "duckdb_extension_path": ".store.duckdb.extension",
    "import_mlflow": ".migrate",
    "export_mlflow": ".migrate",
    "import_tensorboard": ".migrate.tensorboard",
    "import_csv": ".migrate.csv_import",
}

if TYPE_CHECKING:
    __version__: str
    from .frames import get_backend, set_backend
    from .migrate import export_mlflow, import_mlflow
    from .migrate.csv_import import import_csv
    from .migrate.tensorboard import import_tensorboard
    from .reader import Reader
    from .store.duckdb.extension import duckdb_extension_path
    from .tracker import Tracker


def _version() -> str:
    """The installed distribution's version: pyproject.toml's ``version``, the one place it is set."""
    from importlib import metadata

    try:
        return metadata.version("xetrack")
    except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":  # looked up on first use: reading the metadata costs milliseconds
        value = globals()[name] = _version()
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xetrack' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Tracker",
    "Reader",
    "copy",
    "set_backend",
    "get_backend",
    "duckdb_extension_path",
    "import_mlflow",
    "export_mlflow",
    "import_tensorboard",
    "import_csv",
    "XetrackError",
    "TableNotFoundError",
    "ColumnNotFoundError",
    "DatabaseError",
    "ColumnLimitError",
    "NotFoundError",
    "IntegrityError",
    "DiskFullError",
    "DatabaseBusyError",
    "__version__",
]
