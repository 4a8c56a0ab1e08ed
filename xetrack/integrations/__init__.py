"""One line from the frameworks people train with (docs/integrations.md).

Each integration is a module of its own that imports its framework only when used; a
missing framework raises an ImportError naming the pip extra to install:

- ``xetrack.integrations.huggingface.XetrackCallback(db)``: ``Trainer(callbacks=[...])``;
- ``xetrack.integrations.lightning.XetrackLogger(db)``: ``Trainer(logger=...)``;
- ``xetrack.integrations.keras.XetrackCallback(db)``: ``model.fit(callbacks=[...])``;
- ``xetrack.integrations.optuna.XetrackCallback(db)``: ``study.optimize(callbacks=[...])``;
- ``xetrack.integrations.xgboost.XetrackCallback(db)``: ``xgb.train(callbacks=[...])``;
- ``xetrack.integrations.lightgbm.xetrack_callback(db)``: ``lgb.train(callbacks=[...])``.

Each takes the database the way :class:`~xetrack.Tracker` does, writes one run per
training (one per trial for Optuna), and marks it ``finished``, or ``failed`` with the
error when training raises (:class:`~xetrack.integrations.common.TrainingRun`).
"""
