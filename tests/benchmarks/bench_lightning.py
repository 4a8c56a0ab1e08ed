"""XetrackLogger's cost in a Lightning training, against no logger and Lightning's CSVLogger.

Run with ``.venv/bin/python tests/benchmarks/bench_lightning.py``.

The same tiny training (a Linear(4, 1) on random tensors, on the CPU, one ``self.log``
a step and ``log_every_n_steps=1``) is fitted for ``--steps`` steps (default 2,000) with:

- ``logger=False``: the floor, Lightning itself without a logger;
- ``CSVLogger``: Lightning's own file logger (it appends to its CSV file on every
  ``save()``, which Lightning calls after every ``log_metrics``);
- ``XetrackLogger``: one SQLite row a step, committed as it is logged.

Each is run ``--repeats`` times (default 3), the three alternating, after a short warm-up
fit of each. The table shows, best of the repeats: steps/s and seconds of the fit (wall
clock) with the ratio to the floor; this process's CPU seconds with theirs; and the time
spent inside the logger's methods a step (each call Lightning makes to ``log_metrics``,
``save``, ``log_hyperparams``, ``finalize``... timed around it), wall clock and CPU time
of the thread. The last is the logger's own cost, and the one a machine shared with other
work measures well: a fit of 2,000 tiny steps lasts seconds, and a busy neighbour moves
its wall time by more than the loggers cost. Target: the CPU time inside XetrackLogger at
most the CPU time inside CSVLogger. The exit status is 0 when the target is missed (this
reports, it does not gate), and non-zero when a logger lost or duplicated a row.

``--profile`` also runs our logger once under cProfile and prints where its time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import gc
import os
import pstats
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.loggers import CSVLogger

from xetrack import Reader
from xetrack.integrations.lightning import XetrackLogger


class Tiny(L.LightningModule):
    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader(steps: int) -> Any:
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(
        torch.randn(steps * 4, 4, generator=g), torch.randn(steps * 4, 1, generator=g)
    )
    return torch.utils.data.DataLoader(data, batch_size=4)


#: The Logger methods Lightning calls during a fit: their time is the logger's own cost.
HOOKS = ("log_metrics", "save", "log_hyperparams", "log_graph", "finalize", "after_save_checkpoint")


class Timing:
    """One fit's seconds: wall clock, this process's CPU time, and time inside the logger's
    methods (timed around each call Lightning makes)."""

    def __init__(self) -> None:
        self.wall = self.cpu = self.in_logger = self.in_logger_cpu = 0.0

    def instrument(self, logger: Any) -> None:
        if logger is False:
            return
        for hook in HOOKS:
            method = getattr(logger, hook)

            def timed(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
                start, start_cpu = time.perf_counter(), time.thread_time()
                try:
                    return _method(*args, **kwargs)
                finally:
                    self.in_logger += time.perf_counter() - start
                    self.in_logger_cpu += time.thread_time() - start_cpu

            setattr(logger, hook, timed)  # an instance attribute: what Lightning calls


def fit(steps: int, logger: Any, root: str) -> Timing:
    """Time ``trainer.fit`` for ``steps`` steps (the Trainer and data are made before)."""
    trainer = L.Trainer(
        max_steps=steps,
        max_epochs=1,
        log_every_n_steps=1,
        logger=logger,
        accelerator="cpu",
        devices=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
    )
    model, data = Tiny(), loader(steps)
    timing = Timing()
    timing.instrument(logger)
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, data)
    timing.wall, timing.cpu = time.perf_counter() - wall, time.process_time() - cpu
    return timing


def floor_logger(root: str) -> Any:
    return False


def csv_logger(root: str) -> Any:
    return CSVLogger(root, name="csv")


def xetrack_logger(root: str) -> Any:
    return XetrackLogger(os.path.join(root, "bench.db"))


def csv_rows(logger: Any) -> int:
    with open(os.path.join(logger.log_dir, "metrics.csv"), newline="") as file:
        return sum(1 for _ in csv.DictReader(file))


def xetrack_rows(logger: Any) -> int:
    frame = Reader(logger.db).to_df(track_id=logger.version)
    return len(frame) if frame["step"].is_unique else -1  # a duplicated step: a row twice


ROWS: dict[str, Callable[[Any], int]] = {"CSVLogger": csv_rows, "XetrackLogger": xetrack_rows}
LOGGERS: dict[str, Callable[[str], Any]] = {
    "no logger (floor)": floor_logger,
    "CSVLogger": csv_logger,
    "XetrackLogger": xetrack_logger,
}


def profile(steps: int, root: str, top: int = 25) -> None:
    logger = xetrack_logger(root)
    profiler = cProfile.Profile()
    profiler.enable()
    fit(steps, logger, root)
    profiler.disable()
    print(f"\ncProfile of one fit with XetrackLogger ({steps} steps), by cumulative time:")
    stats = pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative")
    stats.print_stats("xetrack|sqlite3", top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile our logger with cProfile")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)

    best: dict[str, dict[str, float]] = {name: {} for name in LOGGERS}
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as root:
        for make in LOGGERS.values():  # warm-up: imports, first-fit caches
            fit(20, make(os.path.join(root, "warm")), os.path.join(root, "warm"))
        for repeat in range(args.repeats):
            for number, (name, make) in enumerate(LOGGERS.items()):
                folder = os.path.join(root, f"{repeat}-{number}")
                logger = make(folder)
                timing = fit(args.steps, logger, folder)
                for measure in ("wall", "cpu", "in_logger", "in_logger_cpu"):
                    best[name][measure] = min(getattr(timing, measure), best[name].get(measure, float("inf")))
                if name in ROWS and (rows := ROWS[name](logger)) != args.steps:
                    failures.append(f"{name}: {rows} rows for {args.steps} steps")
        if args.profile:
            profile(args.steps, os.path.join(root, "profile"))

    floor = best["no logger (floor)"]
    steps = args.steps
    print(f"\nLightning fit, {steps} steps, one metric a step, best of {args.repeats} (torch threads: 1)")
    print(
        f"{'logger':<20}{'steps/s':>9}{'seconds':>9}{'x floor':>9}{'CPU s':>8}{'x floor':>9}"
        f"{'in logger/step':>16}{'(CPU)':>9}"
    )
    for name, measures in best.items():
        wall, cpu = measures["wall"], measures["cpu"]
        print(
            f"{name:<20}{steps / wall:>9.0f}{wall:>9.3f}{wall / floor['wall']:>9.3f}"
            f"{cpu:>8.3f}{cpu / floor['cpu']:>9.3f}"
            f"{measures['in_logger'] / steps * 1e6:>14.1f}us{measures['in_logger_cpu'] / steps * 1e6:>7.1f}us"
        )
    ours, theirs = best["XetrackLogger"], best["CSVLogger"]
    verdict = "PASS" if ours["in_logger_cpu"] <= theirs["in_logger_cpu"] else "MISS"
    print(
        f"target: CPU time in XetrackLogger <= in CSVLogger: {verdict} "
        f"({ours['in_logger_cpu'] / steps * 1e6:.1f}us vs {theirs['in_logger_cpu'] / steps * 1e6:.1f}us a step; "
        f"wall over the floor: {ours['wall'] - floor['wall']:+.3f}s vs {theirs['wall'] - floor['wall']:+.3f}s)"
    )
    for failure in failures:
        print(f"ROWS LOST: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
