"""The DuckDB engines: reads and ``tracker.conn`` through DuckDB, over a SQLite file
(``engine.py``, DuckDB's sqlite scanner from its wheel, ``extension.py``) or a
PostgreSQL server (``postgres.py``, DuckDB's postgres scanner). Writes, side tables and
everything else are the SQLite or the PostgreSQL engine's, which these extend.
"""
