"""The SQLite engine: Python's ``sqlite3`` on one file in WAL mode (and in memory).

``engine.py`` is the engine; ``guard.py`` and ``idle.py`` keep its connections (one
guard per file per process, idle connections handed on between owners); ``busy.py`` and
``faults.py`` its transactions and errors. One module per side-table feature, with the
same name in every engine package: ``models``, ``meta``, ``artifacts``, ``runs_side``,
``gc``, ``copy``, ``copy_side``, ``run_copy``.
"""
