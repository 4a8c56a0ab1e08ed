"""The read side: a Reader is a whole table, every run in it."""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import Any

from .assets import AssetStore
from .frames import to_backend
from .schema import TRACK_ID, coerce, column_name, validate_table_name
from .store import IN_MEMORY, SKIP_INSERT, open_engine, shown
from .store.base import Engine
from .view import TableView, check_count


class Reader(TableView):
    """Every run of one table, as DataFrames. Never creates a database.

    >>> df = Reader("database.db").to_df()  # doctest: +SKIP

    Args:
        db: path of an existing SQLite file.
        engine: ``'sqlite'`` or ``'duckdb'``.
        table: the experiment table.
        persist_summary: whether ``runs()``, ``search()``, ``compare()`` and
            ``aggregate()`` may write the run summary into the file, to answer later
            calls faster (docs/runs.md). False leaves the file as it is: the summary is
            used only when already up to date (``xt`` and the dashboard read this way).
    """

    def __init__(
        self,
        db: str | os.PathLike[str],
        engine: str = "sqlite",
        table: str = "default",
        *,
        persist_summary: bool = True,
    ) -> None:
        path = os.fspath(db) if isinstance(db, os.PathLike) else db
        if path in (IN_MEMORY, SKIP_INSERT):
            raise ValueError(f"A Reader needs a database file; {path!r} stores nothing to read")
        self.table_name = validate_table_name(table)
        self.db = shown(path)  # a PostgreSQL URL without its password
        self._source = path  # as given: what the dashboard reopens (never shown)
        self.engine = engine
        self._engine = open_engine(path, engine, create=False)
        self._persist_summary = bool(persist_summary)

    @classmethod
    def read_db(
        cls,
        db: str | os.PathLike[str],
        engine: str = "sqlite",
        table: str = "default",
        track_id: str | None = None,
        head: int | None = None,
        tail: int | None = None,
    ) -> Any:
        """Open, read and close in one call: ``Reader.read_db('exp.db', head=100)``."""
        reader = cls(db, engine=engine, table=table)
        try:
            return reader.to_df(track_id=track_id, head=head, tail=tail)
        finally:
            reader.close()

    @property
    def conn(self) -> Any:
        """The engine's connection: ``sqlite3.Connection``, or DuckDB with the file as ``db``."""
        return self._engine.conn

    @property
    def store(self) -> Engine:
        """The open store this Reader reads through: the engine interface of
        docs/architecture.md (``tables()``, ``declared_types(table)``, ``run_sql(query)``,
        ``asset_listing()``, a run's rows by cursor...), which ``xt`` and the dashboard
        use for what the Reader has no call of its own for. Read-only.

        >>> from xetrack import Tracker
        >>> Tracker("exp.db").log({"loss": 0.5}) and None
        >>> Reader("exp.db").store.tables()
        ['default']
        """
        return self._engine

    @property
    def assets(self) -> AssetStore:
        """Every object stored in this file, by hash: ``reader.assets[hash]`` unpickles one.
        Deleting one that a registered model version holds is refused.

        Unpickling runs code: only open database files you trust.
        """
        from .models import refuse_model_asset

        return AssetStore(self._engine, guard=refuse_model_asset)

    def to_df(self, track_id: str | None = None, head: int | None = None, tail: int | None = None) -> Any:
        """Rows oldest first: all of them, one run's, the first ``head`` or the last ``tail``."""
        check_count("head", head)
        check_count("tail", tail)
        if head is not None and tail is not None:
            raise ValueError("Pass head or tail, not both")
        where = None if track_id is None else {TRACK_ID: track_id}
        return to_backend(self._engine.read(self.table_name, where, head=head, tail=tail))

    def latest(self) -> Any:
        """The rows of the most recent run, oldest first, as a DataFrame (as in 0.7.0).

        The most recent run is the one that logged the table's last row, whatever its
        ``track_id``. An empty table gives an empty frame. ``Tracker.latest`` is the
        run's last row as a dict.

        >>> Reader("exp.db").latest().to_dict("records")[0]  # doctest: +SKIP
        {'timestamp': '2026-11-22 11:02:35.162360', 'track_id': 'fierce-pudu-1649', ...}
        """
        last = self._engine.last_row(self.table_name)
        if last is None:
            return to_backend(self._engine.read(self.table_name, head=0))
        return to_backend(self._engine.read(self.table_name, {TRACK_ID: last[TRACK_ID]}))

    def __getitem__(self, key: str) -> Any:
        """``reader['col']``: that column over every run."""
        if not isinstance(key, str):
            raise TypeError(f"Use reader['column'], not {key!r}")
        return self._column(key)

    def set_value(self, key: Hashable, value: Any, track_id: str | None = None) -> int:
        """Set ``key`` on every row, or on one run's rows; returns the number changed."""
        where = None if track_id is None else {TRACK_ID: track_id}
        return self._engine.update(self.table_name, {column_name(key): coerce(value, key)}, where)

    def set_where(
        self, key: Hashable, value: Any, where_key: Hashable, where_value: Any, track_id: str | None = None
    ) -> int:
        """Set ``key`` on the rows whose ``where_key`` equals ``where_value``."""
        where = {self._resolve_column(where_key): coerce(where_value, where_key)}
        if track_id is not None:
            where[TRACK_ID] = track_id
        return self._engine.update(self.table_name, {column_name(key): coerce(value, key)}, where)

    def delete_run(self, track_id: str) -> int:
        """Delete one run's rows and side rows in one transaction; returns how many rows."""
        from .prune import delete_run

        return delete_run(self._engine, self.table_name, track_id)  # its bytes stay until gc()

    def __repr__(self) -> str:
        return f"Reader(db={self.db!r}, table={self.table_name!r})\n" + self._preview_text()

    def backup(self, dest: str | os.PathLike[str], overwrite: bool = False) -> str:
        """Copy the whole file (every table, side table and asset) to ``dest``, safely
        while other processes keep logging; returns ``dest``.

        Uses SQLite's online backup API: the copy holds every row committed before the
        call, including those still in the ``-wal`` file that ``cp`` would miss. The copy
        is one self-contained file (rollback journal, no ``-wal``), written to a temporary
        file and renamed, so a half backup never appears under ``dest``. An existing
        ``dest`` is refused unless ``overwrite=True``.

        >>> Reader("exp.db").backup("exp-backup.db")  # doctest: +SKIP
        'exp-backup.db'
        """
        from .store import backup

        return backup(self._engine, dest, overwrite)

    # -- runs: one row per track_id, computed in SQL (see docs/runs.md) -------------
    def _runs(self) -> Any:
        from .run_queries import RunQueries

        queries = RunQueries(self._engine, self.table_name)
        queries.persist = self._persist_summary
        return queries

    def classify(self) -> tuple[list[str], list[str], dict[str, str]]:
        """(params, metrics, logical types): which columns ``runs()`` shows as params
        (one value inside every run) and which as metrics (numbers that vary inside a
        run), as recorded when they were logged or else found from the values; the types
        are every column's, in table order.

        >>> from xetrack import Tracker
        >>> with Tracker("exp.db", params={"lr": 0.1}) as run:
        ...     _ = run.log_batch([{"loss": 0.9}, {"loss": 0.4}])
        >>> params, metrics, types = Reader("exp.db").classify()
        >>> params, metrics, types["loss"]
        (['lr'], ['loss'], 'REAL')
        """
        return self._runs().classify_all()  # keys past the table's columns too

    def runs(self, agg: str = "last") -> Any:
        """One row per run: track_id, status, start, end, duration (s), events, every
        param, and every metric's ``last`` value (or ``first``/``min``/``max``/``mean``).

        A run whose writer process died shows status ``dead``.

        >>> Reader("exp.db").runs(agg="max")  # doctest: +SKIP
        """
        return to_backend(self._runs().runs(agg))

    def history(self, metric: str, track_id: str | None = None, step: str | None = None) -> Any:
        """A metric over steps, long format: track_id, step, value (NULLs left out).

        The step is ``step`` or ``epoch`` when the table has one, else the row order (0, 1, ...).

        >>> Reader("exp.db").history("loss", track_id="fierce-pudu-1649")  # doctest: +SKIP
        """
        return to_backend(self._runs().history(metric, track_id, step))

    def search(
        self, where: str | None = None, order_by: Any = None, limit: int | None = None, agg: str = "last"
    ) -> Any:
        """Runs of the ``runs()`` summary matching ``where``, sorted by ``order_by``.

        ``where``: ``"accuracy > 0.9 AND model = 'rf'"`` or MLflow's
        ``"metrics.accuracy > 0.9 and params.model = 'rf'"``. ``order_by``:
        ``'accuracy DESC'`` or ``['-accuracy', 'loss']``. Unknown names list close matches.

        >>> Reader("exp.db").search("metrics.acc > 0.9", order_by="-acc", limit=5)  # doctest: +SKIP
        """
        return to_backend(self._runs().search(where, order_by, limit, agg))

    def compare(self, track_ids: Any, only_diff: bool = False, agg: str = "last") -> Any:
        """Fields as rows and runs as columns; ``only_diff`` keeps the fields that differ."""
        return to_backend(self._runs().compare(track_ids, only_diff, agg).reset_index())

    def aggregate(
        self, metric: str, by: Any = (), agg: Any = ("mean", "std", "min", "max", "count"), run_agg: str = "last"
    ) -> Any:
        """A metric over runs, grouped by params: each run counts once with its
        ``run_agg`` value (``last`` by default).

        >>> Reader("exp.db").aggregate("accuracy", by=["model"])  # doctest: +SKIP
        """
        return to_backend(self._runs().aggregate(metric, by, agg, run_agg))

    def tables(self) -> Any:
        """The experiment tables of the file, with their row and run counts (and a
        ``description`` column once a table has one)."""
        from .runs import tables

        return to_backend(tables(self._engine))

    # -- run metadata: tags, run names, descriptions (see xetrack.meta) ---------------
    def _known_run(self, track_id: str) -> str:
        if not isinstance(track_id, str) or not track_id:
            raise TypeError(f"track_id must be a non-empty str, got {track_id!r}")
        if not self._engine.count(self.table_name, {TRACK_ID: track_id}):  # through the index
            raise KeyError(f"Run {track_id!r} not found in table {self.table_name!r}")
        return track_id

    def set_tag(self, track_id: str, key: str, value: Any) -> None:
        """Set a tag of a logged run (shown by ``runs()`` as ``tags.<key>``).

        >>> Reader("exp.db").set_tag("fierce-pudu-1649", "team", "vision")  # doctest: +SKIP
        """
        self.set_tags(track_id, {key: value})

    def set_tags(self, track_id: str, tags: Any) -> None:
        """Set several tags of a logged run."""
        from . import meta

        meta.set_tags(self._engine, self.table_name, self._known_run(track_id), tags)

    def delete_tag(self, track_id: str, key: str) -> bool:
        """Remove a tag of a run; True when it was there."""
        from . import meta

        return meta.delete_tag(self._engine, self.table_name, track_id, key)

    def tags(self, track_id: str) -> dict[str, str]:
        """The tags of one run, by key."""
        from . import meta

        return meta.get_tags(self._engine, self.table_name, track_id)

    def span_id(self, track_id: str) -> str | None:
        """The tracing span a run is linked to (``Tracker.set_span_id``, or the OpenTelemetry
        span current when it was made; its trace: ``tags(track_id)['trace_id']``), or None."""
        return self.tags(track_id).get("span_id")

    def set_run_name(self, track_id: str, run_name: str) -> None:
        """Give a logged run a display name (shown by ``runs()`` as ``run_name``)."""
        from . import meta

        meta.set_run_name(self._engine, self.table_name, self._known_run(track_id), run_name)

    def describe_table(self, table: str, text: str | None) -> None:
        """Keep a description of ``table`` (None removes it), shown by ``tables()``.

        >>> Reader("exp.db").describe_table("default", "lr sweep, May")  # doctest: +SKIP
        """
        from . import meta

        if table not in self._engine.tables():
            from .store.base import close_matches

            raise KeyError(f"Table {table!r} not found.{close_matches(table, self._engine.tables())}")
        meta.describe_table(self._engine, table, text)

    def predictions(self, track_id: str, name: str | None = None) -> Any:
        """The pairs ``Tracker.log_predictions`` kept: idx, prediction, actual."""
        return to_backend(self._runs().predictions(track_id, name))

    # -- artifacts (docs/artifacts.md) ------------------------------------------------
    def artifacts(self, track_id: str | None = None) -> Any:
        """The artifacts of this table's runs (or of one run): track_id, name, type, hash,
        size (bytes), created, step (<NA>: none); names oldest first, then by step."""
        from .artifacts import listing

        return to_backend(listing(self._engine, self.table_name, track_id))

    def artifact(self, hash_or_name: str, track_id: str | None = None, step: int | None = None) -> bytes:
        """An artifact's bytes, by hash or by name (the latest logged under that name, or the
        one of run ``track_id``; its latest step, or ``step``), checked against their hash.

        >>> Reader("exp.db").artifact("confusion.png", track_id="fierce-pudu-1649")  # doctest: +SKIP
        """
        from .artifacts import chunks, find

        return b"".join(chunks(self._engine, find(self._engine, self.table_name, hash_or_name, track_id, step)))

    def open_artifact(self, hash_or_name: str, track_id: str | None = None, step: int | None = None) -> Any:
        """An artifact as a read-only binary file that streams it chunk by chunk, for
        files too big for memory. The hash is checked when the end is read.

        >>> with Reader("exp.db").open_artifact("data.parquet") as f:  # doctest: +SKIP
        ...     frame = pandas.read_parquet(f)
        """
        from .artifacts import find, open_stream

        return open_stream(self._engine, find(self._engine, self.table_name, hash_or_name, track_id, step))

    def download_artifacts(self, track_id: str, dest: str | os.PathLike[str]) -> list[str]:
        """Write every artifact of run ``track_id`` under folder ``dest`` at its name
        (sub-folders included); returns the paths written. Each file appears only once
        its bytes are verified.
        """
        from .artifacts import download

        return download(self._engine, self.table_name, track_id, dest)

    # -- the model registry (docs/models.md) ---------------------------------------------
    def models(self) -> Any:
        """Every registered model version: name, version, aliases, hash, kind, size,
        track_id, description and created."""
        from .models import listing

        return to_backend(listing(self._engine))

    def load_model(self, spec: str) -> Any:
        """The model ``'iris'`` (latest version), ``'iris:3'`` or ``'iris@production'``.

        Unpickling runs code: only load models from files you trust. A model registered
        from an artifact's hash comes back as bytes.
        """
        from .models import load

        return load(self._engine, spec)

    def export_model(self, spec: str, path: str | os.PathLike[str]) -> int:
        """Write a model version's stored bytes (its cloudpickle, or the artifact's bytes)
        to ``path``, verified; returns the size."""
        from .artifacts import write_verified
        from .models import model_bytes, resolve

        return write_verified(model_bytes(self._engine, resolve(self._engine, spec)), os.fspath(path))

    def open_model(self, spec: str) -> Any:
        """A model version's stored bytes as a read-only binary file: the cloudpickle of an
        object, or a registered artifact's bytes, streamed (checked when the end is read).

        >>> with Reader("exp.db").open_model("iris@production") as f:  # doctest: +SKIP
        ...     shutil.copyfileobj(f, sys.stdout.buffer)
        """
        from .models import open_stream

        return open_stream(self._engine, spec)

    def set_model_alias(self, name: str, version: int, alias: str) -> None:
        """Point ``alias`` of model ``name`` at ``version``, moving it if it named another."""
        from .models import set_alias

        set_alias(self._engine, name, version, alias)

    def delete_model_alias(self, name: str, alias: str) -> bool:
        """Remove an alias of model ``name``; returns whether it existed."""
        from .models import delete_alias

        return delete_alias(self._engine, name, alias)

    def gc(self, dry_run: bool = False, vacuum: bool = False) -> Any:
        """Remove stored objects and artifact bytes nothing points at any more (no row, no
        artifact entry, no model version). Returns what went: ``assets``, ``artifacts``,
        ``bytes`` and their ``hashes``. ``dry_run`` only reports; ``vacuum`` also shrinks
        the file (``file_bytes``: by how much).

        >>> Reader("exp.db").gc(dry_run=True).bytes  # doctest: +SKIP
        73401929
        """
        from .garbage import gc

        return gc(self._engine, dry_run, vacuum)

    def prune(self, **rules: Any) -> Any:
        """Delete runs by ``older_than``, ``status``, ``keep_best``/``by``/``mode``, ``keep_tags``,
        ``force``, ``dry_run``, ``vacuum`` (docs/runs.md, Pruning; :func:`xetrack.prune.prune`)."""
        from .prune import prune

        return prune(self._engine, self.table_name, self._runs, **rules)

    # -- the dashboard (docs/ui.md) ------------------------------------------------
    def ui(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the dashboard of this file in a background thread and return its URL; in
        a notebook it also shows in an IFrame. Needs ``pip install 'xetrack[ui]'``.

        >>> Reader("exp.db").ui()  # doctest: +SKIP
        'http://127.0.0.1:41737/runs?table=default'
        """
        from .ui import serve_in_thread

        source = self._source

        def open_table(table: str) -> Reader:  # each a Reader of its own, that leaves the file as it is
            return Reader(source, table=table, persist_summary=False)

        dashboard = serve_in_thread(open_table, self.table_name, host=host, port=port)
        self._dashboards = [*getattr(self, "_dashboards", []), dashboard]
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is not None and getattr(get_ipython(), "kernel", None) is not None:
                display(dashboard)
        except ImportError:
            pass
        return dashboard.url

    # -- logs written by a Tracker's sinks ----------------------------------------
    @staticmethod
    def read_logs(path: str | os.PathLike[str]) -> Any:
        """Every tracked event of a log file, or of a ``logs_path`` folder (rotated files
        oldest first), as a DataFrame with one row per event. Messages (info, warnings)
        are left out; a corrupt line is skipped with a warning naming file and line.

        >>> Reader.read_logs("logs")  # doctest: +SKIP
           accuracy                   timestamp          track_id
        0       0.9  2026-11-22 21:47:48.375258  fierce-pudu-1649
        """
        from .logs import read_logs

        return read_logs(path)

    @staticmethod
    def read_jsonl(path: str | os.PathLike[str]) -> Any:
        """Every line of a JSONL file (``Tracker(jsonl=...)``) as a DataFrame, one row per
        event; numbers stay numbers. A corrupt line is skipped with a warning.

        >>> Reader.read_jsonl("logs/data.jsonl")  # doctest: +SKIP
        """
        from .logs import read_jsonl

        return read_jsonl(path)

    # -- the result cache of tracked calls ---------------------------------------
    @staticmethod
    def read_cache(directory: str | os.PathLike[str], key: str) -> dict[str, Any] | None:
        """The entry ``{"result": ..., "cache": track_id}`` stored under ``key``, or None.

        ``track_id`` is the run that computed the result. Raises FileNotFoundError when
        ``directory`` holds no cache.

        >>> key = tracker._generate_cache_key(pow, [2, 10], {}, {})  # doctest: +SKIP
        >>> Reader.read_cache("cache_dir", key)  # doctest: +SKIP
        {'result': 1024, 'cache': 'fierce-pudu-1649'}
        """
        from .cache import read_entry

        return read_entry(directory, key)

    @staticmethod
    def scan_cache(directory: str | os.PathLike[str]) -> Any:
        """An iterator of ``(key, {"result": ..., "cache": track_id})``, in key order.

        >>> for key, entry in Reader.scan_cache("cache_dir"):  # doctest: +SKIP
        ...     print(key, entry["result"], entry["cache"])
        """
        from .cache import scan

        return scan(directory)

    @staticmethod
    def delete_cache_by_track_id(directory: str | os.PathLike[str], track_id: str) -> int:
        """Delete the cache entries run ``track_id`` computed; returns how many.

        >>> Reader.delete_cache_by_track_id("cache_dir", "fierce-pudu-1649")  # doctest: +SKIP
        1
        """
        from .cache import delete_by_track_id

        return delete_by_track_id(directory, track_id)
