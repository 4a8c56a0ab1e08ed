"""Moving experiments between xetrack and other trackers: MLflow import and export.

>>> from xetrack.migrate import import_mlflow, export_mlflow  # doctest: +SKIP
"""

from __future__ import annotations

from .mlflow_export import ExportResult, export_mlflow
from .mlflow_import import ImportResult, import_mlflow
from .mlflow_store import NotAnMlflowStore

__all__ = ["import_mlflow", "export_mlflow", "ImportResult", "ExportResult", "NotAnMlflowStore"]
