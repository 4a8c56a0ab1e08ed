"""Store a model as an asset, find the best run, and load its model back.

Run from the examples/ folder: `python assets.py`. It writes `assets_example.db`.
"""

import os

import numpy as np

from xetrack import Reader, Tracker

DB = "assets_example.db"
if os.path.exists(DB):
    os.remove(DB)


class RidgeModel:
    """A tiny ridge regression, standing in for any fitted model."""

    def __init__(self, alpha):
        self.alpha = alpha

    def fit(self, x, y):
        eye = np.eye(x.shape[1])
        self.coef_ = np.linalg.solve(x.T @ x + self.alpha * eye, x.T @ y)
        return self

    def predict(self, x):
        return x @ self.coef_


rng = np.random.default_rng(0)
x = rng.normal(size=(200, 3))
y = x @ np.array([1.5, -2.0, 0.5]) + rng.normal(scale=0.1, size=200)
x_train, x_test, y_train, y_test = x[:150], x[150:], y[:150], y[150:]

for alpha in (0.01, 1.0, 100.0):
    tracker = Tracker(DB, params={"model": "ridge", "alpha": alpha})
    model = RidgeModel(alpha).fit(x_train, y_train)
    rmse = float(np.sqrt(np.mean((model.predict(x_test) - y_test) ** 2)))
    row = tracker.log({"rmse": rmse, "model_asset": model})
    print(f"alpha={alpha:<6} rmse={rmse:.4f} stored as asset {row['model_asset']}")

reader = Reader(DB)
frame = reader.to_df()
best = frame.loc[frame["rmse"].idxmin()]
print(f"\nbest run {best['track_id']} (alpha={best['alpha']}); {len(reader.assets)} assets stored")

model = reader.assets[best["model_asset"]]
print("its coefficients:", np.round(model.coef_, 3))
print("prediction for [1, 1, 1]:", round(float(model.predict(np.ones(3))), 3))
