"""What a run keeps beside its rows: the asset store (objects by hash), artifacts,
registered models, predictions and tags.

The work is done by xetrack.assets, xetrack.artifacts (docs/artifacts.md),
xetrack.models (docs/models.md), xetrack.runs and xetrack.meta, imported when first used;
:class:`RunOutputs` is the part of :class:`xetrack.tracker.Tracker` that calls them with
the run's engine, table and ``track_id``.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .assets import AssetStore
from .store.base import Engine


class RunOutputs:
    """The part of a Tracker that keeps objects, files, models, predictions and tags
    (``log_predictions`` logs its scores with RowWriter's ``log``)."""

    # Set by Tracker.__init__ (annotations only: the instances hold them).
    _engine: Engine
    table_name: str
    track_id: str
    db: object
    compress: bool
    _stored_assets: set[str]

    if TYPE_CHECKING:  # given by the Tracker's other parts: RowWriter and TableView

        def log(self, data: Mapping[Any, Any]) -> dict[str, Any]: ...

        def _resolve_column(self, key: Any) -> str: ...

    # -- assets -----------------------------------------------------------------
    @property
    def assets(self) -> AssetStore:
        """Every object stored in this file, by hash (a mapping with ``len()``); deleting
        one a registered model version holds is refused."""
        from .models import refuse_model_asset

        return AssetStore(self._engine, guard=refuse_model_asset)

    def get(self, hash: str) -> Any:
        """The object stored under ``hash`` (as logged), or None when there is none.

        >>> from xetrack import Tracker
        >>> t = Tracker(Tracker.IN_MEMORY)
        >>> t.get(t.log({"obj": {1, 2}})["obj"])
        {1, 2}
        """
        return self.assets.get(hash)

    def remove_asset(self, hash: str, column: Hashable) -> int:
        """Delete the object stored under ``hash`` and set ``column`` to NULL in the rows
        of this table that held it (every run). Returns the number of rows changed."""
        from .models import refuse_model_asset

        name = self._resolve_column(column)
        refuse_model_asset(self._engine, hash)
        existed = self._engine.has_asset(hash)
        changed = self._engine.asset_delete(hash, self.table_name, name)
        self._stored_assets.discard(hash)
        if not existed and not changed:
            raise KeyError(f"No asset {hash!r} in {self.db!r}, and no row of {name!r} holds it")
        return changed

    # -- artifacts and models (docs/artifacts.md, docs/models.md) --------------------
    def log_artifact(
        self, path_or_bytes: Any, name: str | None = None, type: str | None = None, step: int | None = None
    ) -> str:
        """Keep a file (a path), bytes, a matplotlib figure (as PNG) or a DataFrame (as
        Parquet) with this run; returns its content hash.

        The bytes go into the database file once, however many runs or names share them;
        ``name`` defaults to the file's name (for bytes, the hash). Logging a name again
        in this run replaces the entry. With ``step`` (an int from 0: a figure each
        epoch), each step of a name is kept: logging the name at the same step again
        replaces that step's entry; ``Reader.artifact(name)`` reads the latest step.

        >>> from xetrack import Tracker
        >>> Tracker(Tracker.IN_MEMORY).log_artifact(b"a,b\\n1,2\\n", name="data.csv")
        'c4c9955cf157700b'
        """
        from .artifacts import record, source_of

        return record(self._engine, self.table_name, self.track_id, source_of(path_or_bytes), name, type, step)

    def log_artifacts(
        self, folder: str | os.PathLike[str], prefix: str | None = None, step: int | None = None
    ) -> dict[str, str]:
        """Keep every file under ``folder`` with this run, named by its path relative to
        the folder (under ``prefix/`` when given), each at ``step`` when given; returns
        ``{name: hash}``.

        >>> tracker.log_artifacts("outputs", prefix="epoch-3")  # doctest: +SKIP
        {'epoch-3/model.pt': '53425a65a40a49f4', 'epoch-3/plots/loss.png': '9c1d0e3b77a2f415'}
        """
        from .artifacts import check_name, check_step, folder_files

        base = None if prefix is None else check_name(prefix)
        check_step(step)  # before any file is stored
        return {
            name: self.log_artifact(path, name=name, step=step)
            for name, path in ((f"{base}/{rel}" if base else rel, path) for rel, path in folder_files(folder))
        }

    def register_model(
        self, name: str, model_or_hash: Any, alias: str | None = None, description: str | None = None
    ) -> int:
        """Record the next version of model ``name`` from this run and return its number.

        ``model_or_hash`` is the model (pickled into the asset store, once) or the hash of
        something stored already (by ``log()`` or ``log_artifact()``). ``alias`` (e.g.
        ``'production'``) is moved to the new version.

        >>> from xetrack import Tracker
        >>> Tracker(Tracker.IN_MEMORY).register_model("iris", {"weights": [0.1, 0.2]})
        1
        """
        from .models import register

        return register(
            self._engine, self.table_name, self.track_id, name, model_or_hash, alias, description, self.compress
        )

    def set_model_alias(self, name: str, version: int, alias: str) -> None:
        """Point ``alias`` of model ``name`` at ``version`` (an alias names one version)."""
        from .models import set_alias

        set_alias(self._engine, name, version, alias)

    # -- predictions ------------------------------------------------------------
    def log_predictions(
        self,
        predictions: Any,
        actuals: Any,
        metrics: Iterable[str] = ("rmse", "mae", "r2"),
        name: str | None = None,
    ) -> dict[str, Any]:
        """Score ``predictions`` against ``actuals``, log the scores as one row of this
        run (``{name}_{metric}`` when ``name`` is given) and keep the pairs, read back
        with ``Reader.predictions(track_id)``. Metrics: mse, rmse, mae, r2, mape,
        max_error, accuracy. Bad input raises before anything is written.

        >>> from xetrack import Tracker
        >>> Tracker(Tracker.IN_MEMORY).log_predictions([1, 2], [1, 4], ["mae"])["mae"]
        1.0
        """
        from .runs import prediction_metrics, store_predictions

        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name must be a non-empty str or None, got {name!r}")
        scores, p, a = prediction_metrics(predictions, actuals, metrics)
        row = self.log({(f"{name}_{k}" if name else k): v for k, v in scores.items()})
        store_predictions(self._engine, self.table_name, self.track_id, name or "", p, a)
        return row

    # -- run metadata: tags (see xetrack.meta) -------------------------------------
    def set_tag(self, key: str, value: Any) -> None:
        """Label this run; tags can change after the run and show in ``runs()`` as ``tags.<key>``.

        >>> from xetrack import Tracker
        >>> t = Tracker(Tracker.IN_MEMORY); t.set_tag("team", "vision")
        >>> t.tags
        {'team': 'vision'}
        """
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags of this run at once (values are kept as text)."""
        from . import meta

        meta.set_tags(self._engine, self.table_name, self.track_id, tags)

    @property
    def tags(self) -> dict[str, str]:
        """This run's tags."""
        from . import meta

        return meta.get_tags(self._engine, self.table_name, self.track_id)
