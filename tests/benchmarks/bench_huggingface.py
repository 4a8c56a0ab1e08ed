"""The cost of XetrackCallback in a transformers Trainer, against the floor and a CSV logger.

Run with ``.venv/bin/python tests/benchmarks/bench_huggingface.py`` (under a minute on an
idle machine: nine trainings of about 2 s; ``--steps N``, ``--repeats N``).

The same training three ways, on the CPU, ``logging_steps=1`` (a row every step):

- floor: ``report_to='none'``, no callback of ours;
- csv: the floor plus a minimal TrainerCallback that writes each ``on_log`` dict as CSV
  lines (step, key, value) to a file, as Python buffers it (transformers ships no CSV
  logger: its loggers report to services or to TensorBoard);
- xetrack: the floor plus ``XetrackCallback(db)``.

The model is two linear layers on 4 numbers, so that a step is as cheap as a Trainer step
gets and the loggers' cost shows. The Trainer's progress and printer callbacks are
removed from all three (the printer prints every log). Each way runs ``--repeats`` times,
alternating; the best time is kept.

Two measures of a logger's overhead:

- wall: its training's seconds minus the floor's. On a shared machine the spread between
  repeats of the same training is often larger than a logger's whole cost, so this one
  is printed for the record;
- in hooks: the seconds spent inside the logger's own callback methods during the
  training (each ``on_*`` timed with ``perf_counter``), which no other process's load
  inflates much. ``rows/s`` is the rows logged per second of those. The target, ours <=
  the CSV logger's, is judged on it, per row (``on_log``, where a row is written) and in
  total (with creating, opening and closing the database or the file: a new one each
  training, after a warm-up training of each way has done the imports). When it is missed, a
  cProfile of a shorter run prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import functools
import os
import pstats
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
import transformers

from xetrack import Reader
from xetrack.integrations.huggingface import XetrackCallback

transformers.logging.set_verbosity_error()
WAYS = ("floor", "csv", "xetrack")


class Tiny(torch.nn.Module):
    """Two linear layers on 4 numbers; returns the loss the Trainer expects."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": torch.nn.functional.mse_loss(self.net(x).squeeze(-1), labels)}


class CsvLogger(transformers.TrainerCallback):
    """The comparison: every logged dict as CSV lines ``step,key,value``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.file = None
        self.writer = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.file = open(self.path, "w", newline="")  # noqa: SIM115 - closed at on_train_end
        self.writer = csv.writer(self.file)
        self.writer.writerow(["step", "key", "value"])

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            step = state.global_step
            self.writer.writerows([(step, key, value) for key, value in logs.items()])

    def on_train_end(self, args, state, control, **kwargs):
        self.file.close()


def timed(callback: transformers.TrainerCallback) -> dict[str, float]:
    """Time every ``on_*`` method ``callback``'s class defines (the others are
    TrainerCallback's empty ones) as instance attributes, which the Trainer's
    CallbackHandler calls; returns the seconds spent, by method, filled as it runs."""
    spent: dict[str, float] = {}
    base = transformers.TrainerCallback
    for name in dir(callback):
        if name.startswith("on_") and getattr(type(callback), name) is not getattr(base, name, None):
            method = getattr(callback, name)

            @functools.wraps(method)
            def clocked(*args, _method=method, _name=name, **kwargs):
                start = time.perf_counter()
                try:
                    return _method(*args, **kwargs)
                finally:
                    spent[_name] = spent.get(_name, 0.0) + time.perf_counter() - start

            setattr(callback, name, clocked)
    return spent


def make_data(n: int = 64) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=generator)
    y = x.sum(dim=1)
    return [{"x": x[i], "labels": y[i]} for i in range(n)]


def trainer_for(folder: str, steps: int, callbacks: list) -> transformers.Trainer:
    torch.manual_seed(0)
    args = transformers.TrainingArguments(
        output_dir=os.path.join(folder, "out"),
        max_steps=steps,
        per_device_train_batch_size=4,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        eval_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = transformers.Trainer(model=Tiny(), args=args, train_dataset=make_data(), callbacks=callbacks)
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    trainer.remove_callback(transformers.trainer_callback.ProgressCallback)
    return trainer


def run(way: str, folder: str, steps: int) -> tuple[float, dict[str, float], int]:
    """Seconds of ``trainer.train()``, the seconds in the logger's hooks, and the rows."""
    db = os.path.join(folder, "xetrack.db")
    for name in ("log.csv", "xetrack.db", "xetrack.db-wal", "xetrack.db-shm"):
        if os.path.exists(os.path.join(folder, name)):
            os.remove(os.path.join(folder, name))
    callbacks: list = []
    spent: dict[str, float] = {}
    if way == "csv":
        callbacks = [CsvLogger(os.path.join(folder, "log.csv"))]
    elif way == "xetrack":
        callbacks = [XetrackCallback(db)]
    if callbacks:
        spent = timed(callbacks[0])
    trainer = trainer_for(folder, steps, callbacks)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    rows = len(trainer.state.log_history)
    if way == "xetrack":
        stored = len(Reader(db).to_df())
        assert stored == rows, f"xetrack stored {stored} rows, the Trainer logged {rows}"
    return seconds, spent, rows


def profile(folder: str, steps: int) -> None:
    profiler = cProfile.Profile()
    trainer = trainer_for(folder, steps, [XetrackCallback(os.path.join(folder, "profile.db"))])
    profiler.enable()
    trainer.train()
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print(f"\nWhere the time goes ({steps} steps, cProfile, top 20 by cumulative time, xetrack frames):")
    stats.sort_stats("cumulative").print_stats("xetrack/", 20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    wall: dict[str, list[float]] = {way: [] for way in WAYS}
    hooks: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    rows = 0
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-hf-") as folder:
        for way in WAYS:
            run(way, folder, 20)  # warm-up: imports, first allocations
        for _ in range(options.repeats):
            for way in WAYS:
                seconds, spent, rows = run(way, folder, options.steps)
                wall[way].append(seconds)
                hooks[way].append(spent)
        best = {way: min(seconds) for way, seconds in wall.items()}
        in_hooks = {way: min(sum(s.values()) for s in hooks[way]) for way in WAYS}
        per_row = {way: min(s.get("on_log", 0.0) for s in hooks[way]) / rows * 1e6 for way in WAYS}
        floor = best["floor"]
        print(f"transformers {transformers.__version__}, torch {torch.__version__}, {options.steps} steps, ", end="")
        print(f"logging_steps=1, {rows} rows logged, best of {options.repeats}\n")
        print(
            f"{'way':<9}{'seconds':>9}{'x floor':>9}{'wall +s':>9}{'in hooks s':>12}{'rows/s':>11}"
            f"{'on_log µs/row':>15}  every repeat (s)"
        )
        for way in WAYS:
            seconds, spent = best[way], in_hooks[way]
            rate = f"{rows / spent:>11.0f}" if spent else f"{'-':>11}"
            row_cost = f"{per_row[way]:>15.1f}" if spent else f"{'-':>15}"
            each = " ".join(f"{t:.2f}" for t in wall[way])
            print(f"{way:<9}{seconds:>9.2f}{seconds / floor:>9.3f}{seconds - floor:>+9.2f}{spent:>12.4f}", end="")
            print(f"{rate}{row_cost}  {each}")
        per_row_met = per_row["xetrack"] <= per_row["csv"]
        total_met = in_hooks["xetrack"] <= in_hooks["csv"]
        print("\ntarget, xetrack's overhead <= the CSV logger's, in hooks:")
        print(f"  per row (on_log): {'met' if per_row_met else 'MISS'}", end=" ")
        print(f"({per_row['xetrack']:.1f} vs {per_row['csv']:.1f} µs)")
        print(f"  in total:         {'met' if total_met else 'MISS'}", end=" ")
        print(f"({in_hooks['xetrack'] * 1e3:.1f} vs {in_hooks['csv'] * 1e3:.1f} ms)")
        slowest = max(hooks["xetrack"], key=lambda s: sum(s.values()))
        print("  xetrack's hooks, slowest repeat (ms):", end=" ")
        print(", ".join(f"{name} {t * 1e3:.1f}" for name, t in sorted(slowest.items(), key=lambda kv: -kv[1]) if t))
        if not (per_row_met and total_met):
            profile(folder, min(options.steps, 300))
    print(f"\n(the benchmark took {time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
