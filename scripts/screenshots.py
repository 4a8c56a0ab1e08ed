"""Take the screenshots of docs/ui.md and docs/integrations.md from the example data:
`make screenshots`.

Runs examples/runs.py, examples/artifacts.py, examples/dashboard.py and
examples/integrations.py in a temporary folder, serves each file with the dashboard, and
photographs every page with Playwright
driving Debian's Chromium (`apt-get install chromium`; set CHROMIUM=/path to use another
build). Writes docs/images/ui-*.png.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def example(name: str, folder: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)], cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL
    )


#: docs/integrations.md's pictures: each framework's table of examples/integrations.py and
#: the metric its chart shows (Optuna: the runs page, a run per trial).
INTEGRATIONS = {
    "huggingface": "loss",
    "lightning": "train_loss",
    "keras": "val_loss",
    "optuna": None,
    "xgboost": "valid_logloss",
    "lightgbm": "valid_0_binary_logloss",
    "mlflow_script": "loss",
    "wandb_script": "accuracy",
}


def integration_shots(base: str, db: str) -> list[tuple[str, str, str]]:
    from xetrack import Reader

    shots = []
    for table, metric in INTEGRATIONS.items():
        if table not in set(Reader(db).tables()["table"]):
            continue  # its framework is not installed
        if metric is None:
            shots.append((f"integration-{table}", f"{base}/runs?table={table}&sort=loss", "#runs tbody tr"))
            continue
        run = Reader(db, table=table).runs()["track_id"].iloc[0]
        url = f"{base}/charts?table={table}&run={run}&metric={metric}"
        shots.append((f"integration-{table}", url, "#chart .scatterlayer .trace"))
    run = Reader(db, table="xgboost").runs()["track_id"].iloc[0]
    shots.append(("integration-run", f"{base}/run?table=xgboost&run={run}", "#rows tbody tr"))
    return shots


def main() -> None:
    if not os.path.exists(CHROMIUM):
        sys.exit(f"No Chromium at {CHROMIUM}: install the Debian package 'chromium' or set CHROMIUM=/path")
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import sync_playwright

    from xetrack import Reader
    from xetrack.ui import serve_in_thread

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        example("runs.py", folder)
        example("artifacts.py", folder)
        example("integrations.py", folder)
        example("dashboard.py", folder)
        sweep_db = os.path.join(folder, "dashboard.db")
        runs_db, artifacts_db = os.path.join(folder, "runs.db"), os.path.join(folder, "artifacts_example.db")
        integrations_db = os.path.join(folder, "integrations.db")
        ids = list(Reader(runs_db).search(None, order_by="loss")["track_id"])
        owner = Reader(artifacts_db).search(order_by="-accuracy")["track_id"].iloc[0]
        runs = serve_in_thread(lambda table: Reader(runs_db, table=table, persist_summary=False), port=0)
        artifacts = serve_in_thread(lambda table: Reader(artifacts_db, table=table, persist_summary=False), port=0)
        frameworks = serve_in_thread(lambda table: Reader(integrations_db, table=table, persist_summary=False), port=0)
        sweep = serve_in_thread(lambda table: Reader(sweep_db, table=table, persist_summary=False), port=0)
        a, b, c, d = (server.url.split("/runs")[0] for server in (runs, artifacts, frameworks, sweep))
        swept = Reader(sweep_db).search(None, order_by="loss")["track_id"]
        eight = "&".join(f"run={i}" for i in swept[:8])
        two = "&".join(f"run={i}" for i in swept[:2])
        pair = f"run={ids[0]}&run={ids[1]}"
        shots = [
            ("experiments", f"{a}/", "#tables tbody tr"),
            ("runs", f"{a}/runs?sort=loss&{pair}", "#runs tbody tr"),
            (
                "runs-filtered",
                f"{a}/runs?filter=params.model+%3D+%27linear%27+and+metrics.loss+%3C+1",
                "#runs tbody tr",
            ),
            ("charts", f"{a}/charts?{pair}&run={ids[2]}&metric=loss", "#chart .scatterlayer .trace"),
            ("compare", f"{a}/compare?{pair}&sx=lr&sy=loss", "#scatter .scatterlayer .point"),
            ("run", f"{b}/run?run={owner}", "#rows tbody tr"),
            ("models", f"{b}/models", "#models tbody tr"),
            *integration_shots(c, integrations_db),
            ("panels", f"{d}/charts?{eight}", ".panel .scatterlayer .trace"),
            ("grouped", f"{d}/charts?group=model&group=lr&top=16", ".panel .scatterlayer .trace"),
            ("runs-grouped", f"{d}/runs?group=model&group=lr", "#groups tbody tr"),
            ("parallel", f"{d}/runs", "#runs tbody tr"),
            ("run-system", f"{d}/run?run={swept[0]}", "#system-metrics .scatterlayer .trace"),
            ("images", f"{d}/compare?{two}", "#images-by-step img"),
            ("dark", f"{d}/charts?group=lr&top=16", ".panel .scatterlayer .trace"),
        ]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            light = browser.new_page(viewport={"width": 1280, "height": 760})
            dark = browser.new_page(viewport={"width": 1280, "height": 760}, color_scheme="dark")
            for name, url, ready in shots:
                page = dark if name == "dark" else light
                page.goto(url)
                page.wait_for_selector(ready, state="attached")
                if name == "parallel":  # open the chart and wait for its lines
                    page.get_by_role("button", name="Parallel coordinates").first.click()
                    page.wait_for_selector("#parallel-chart svg path")
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(300)  # plotly's transitions
                tall = ("run", "compare", "integration-run", "run-system", "images", "parallel")
                page.screenshot(path=str(OUT / f"ui-{name}.png"), full_page=name in tall)
                print(f"wrote docs/images/ui-{name}.png")
            browser.close()
        for server in (runs, artifacts, frameworks, sweep):
            server.stop()


if __name__ == "__main__":
    main()
