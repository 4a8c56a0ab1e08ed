"""What the tests check of a database file after a fault or a race."""

import sqlite3


def integrity(path: str) -> str:
    """SQLite's ``PRAGMA integrity_check`` of the file: 'ok', or what is damaged."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
