"""``mlflow.tracking.MlflowClient``, as MLflow scripts import it."""

from __future__ import annotations

from .client import MlflowClient

__all__ = ["MlflowClient"]
