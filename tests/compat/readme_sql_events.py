"""The README's SQL, word for word: "The sqlite database is attached as db and the table is
events", with engine='duckdb', in Python and with `xt sql`."""

import os
import subprocess
import sys

from xetrack import Tracker

XT = os.path.join(os.path.dirname(sys.executable), "xt")

tracker = Tracker("database.db", params={"model": "resnet18"}, engine="duckdb")
tracker.log({"accuracy": 0.9, "loss": 0.1, "epoch": 1})
tracker.log({"accuracy": 0.7, "loss": 0.3, "epoch": 2})

rows = tracker.conn.execute("SELECT * FROM db.events WHERE accuracy > 0.8").fetchall()
print(rows)
assert len(rows) == 1 and 0.9 in tuple(rows[0])

done = subprocess.run([XT, "sql", "database.db", "SELECT * FROM db.events;"], capture_output=True, text=True)
print(done.stdout, done.stderr)
assert done.returncode == 0, done.stderr
assert "resnet18" in done.stdout and "0.7" in done.stdout
print("readme sql ok")
