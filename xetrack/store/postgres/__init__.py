"""The PostgreSQL engine (docs/postgres.md): ``engine.py`` on psycopg 3, with the
connection (``connect``), the SQL it builds (``sql``), how values fit PostgreSQL's
types (``values``), a batch streamed into ``COPY`` (``stream``), and one module per
side-table feature, named as in the SQLite package: ``models``, ``meta``,
``artifacts``, ``runs_side``, ``gc``, ``copy``, ``copy_side``.
"""
