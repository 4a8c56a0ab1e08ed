"""Assets: a model object logged with the metrics is stored once (deduplicated) and the row
keeps its hash; get() returns it, `xt assets export` writes it for production, and
`xt assets delete` removes it."""

import os
import subprocess
import sys

import cloudpickle

from xetrack import Reader, Tracker

XT = os.path.join(os.path.dirname(sys.executable), "xt")


class NearestCentroid:
    """A tiny picklable classifier, standing in for a scikit-learn model."""

    def fit(self, X, y):
        self.centroids = {}
        for label in sorted(set(y)):
            points = [x for x, t in zip(X, y) if t == label]
            self.centroids[label] = [sum(c) / len(points) for c in zip(*points)]
        return self

    def predict(self, X):
        def distance(a, b):
            return sum((p - q) ** 2 for p, q in zip(a, b))

        return [min(self.centroids, key=lambda label: distance(x, self.centroids[label])) for x in X]

    def score(self, X, y):
        return sum(p == t for p, t in zip(self.predict(X), y)) / len(y)


X_train = [[0, 0], [0, 1], [1, 0], [5, 5], [5, 6], [6, 5]]
y_train = ["a", "a", "a", "b", "b", "b"]
X_test, y_test = [[0.5, 0.5], [5.5, 5.5], [4, 4]], ["a", "b", "b"]

tracker = Tracker("models/database.db", params={"model": "nearest centroid", "dataset": "toy"})
lr = NearestCentroid().fit(X_train, y_train)
row = tracker.log({"accuracy": float(lr.score(X_test, y_test)), "lr": lr})
print("logged", row)
model_hash = row["lr"]
assert isinstance(model_hash, str) and len(model_hash) == 16, model_hash
int(model_hash, 16)  # a hex digest
assert row["accuracy"] == 1.0

# the same object again: the same hash, stored once
again = tracker.log({"accuracy": 1.0, "lr": lr, "epoch": 2})
assert again["lr"] == model_hash
# a list and a dict are values, not assets
plain = tracker.log({"layers": [1, 2, 3], "config": {"k": 1}})
print("plain", plain)
assert plain["layers"] in ([1, 2, 3], "[1, 2, 3]"), plain

model = tracker.get(model_hash)  # retrieve the object
print("get ->", model, model.centroids)
assert model.score(X_test, y_test) == 1.0
assert model.centroids == lr.centroids
assert Reader("models/database.db").to_df()["lr"].dropna().tolist() == [model_hash, model_hash]

# the command line, for production: only the model, in a cloudpickle file
done = subprocess.run(
    [XT, "assets", "export", "models/database.db", model_hash, "model.cloudpickle"], capture_output=True, text=True
)
print(done.stdout, done.stderr)
assert done.returncode == 0, done.stderr
assert os.path.isfile("model.cloudpickle")
with open("model.cloudpickle", "rb") as f:
    exported = cloudpickle.loads(f.read())
assert exported.predict([[0.1, 0.2], [6, 6]]) == ["a", "b"]

# a second model, then remove the first from the assets
other = NearestCentroid().fit([[0, 0], [9, 9]], ["x", "y"])
other_hash = tracker.log({"accuracy": 0.5, "lr": other})["lr"]
assert other_hash != model_hash

done = subprocess.run([XT, "assets", "delete", "models/database.db", model_hash], capture_output=True, text=True)
print(done.stdout, done.stderr)
assert done.returncode == 0, done.stderr
try:
    gone = Tracker("models/database.db").get(model_hash)
except Exception as error:  # noqa: BLE001 - a missing object may raise as well, whatever the version
    gone = None
    print("get of a deleted asset raised", type(error).__name__)
assert gone is None, gone
assert Tracker("models/database.db").get(other_hash).predict([[8, 8]]) == ["y"]
print("assets ok")
