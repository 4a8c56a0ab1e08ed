"""The error :mod:`xetrack.mlflow` raises where MLflow raises its own: ``except
mlflow.exceptions.MlflowException`` keeps catching it."""

from __future__ import annotations


class MlflowException(Exception):
    """A call MLflow refuses too: a param logged again with another value, a second run
    started while one is active without ``nested=True``, a run id that is not found."""

    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER_VALUE") -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


__all__ = ["MlflowException"]
