"""xetrack: a local-first experiment tracker on one SQLite file.

>>> from xetrack import Tracker, Reader
>>> tracker = Tracker(Tracker.IN_MEMORY, params={"model": "resnet18"})
>>> tracker.log({"accuracy": 0.9})["model"]
'resnet18'
"""

from .errors import ColumnLimitError, ColumnNotFoundError, DatabaseError, TableNotFoundError, XetrackError
from .frames import get_backend, set_backend
from .reader import Reader
from .tracker import Tracker

__version__ = "0.1.0"

__all__ = [
    "Tracker",
    "Reader",
    "set_backend",
    "get_backend",
    "XetrackError",
    "TableNotFoundError",
    "ColumnNotFoundError",
    "DatabaseError",
    "ColumnLimitError",
    "__version__",
]
