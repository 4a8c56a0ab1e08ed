"""The dashboard in a real browser: Playwright drives Debian's Chromium against `xt ui`'s
server on a generated file. One browser and one server for the whole file."""

import math
import os
import re
import subprocess
import sys
from urllib.parse import urlencode

import pytest

from browser_pages import XSS

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install the Debian package 'chromium' (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python: pip install 'xetrack[dev]'")

from xetrack import Reader, Tracker  # noqa: E402

expect = sync_api.expect
expect.set_options(timeout=15_000)

ARTIFACT = bytes(range(256)) * 4000 + b"end"


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("browser") / "dash.db")
    ids = {}
    for model, lr in [("rf", 0.1), ("rf", 0.3), ("nn", 0.01), ("nn", 0.05), (XSS, 0.2)]:
        with Tracker(db, params={"model": model, "lr": lr}) as run:
            for step in range(40):
                loss = math.exp(-lr * step * 3)
                run.log({"step": step, "loss": loss, "accuracy": 1 - loss / 2})
            ids[(model, lr)] = run.track_id
    owner = ids[("rf", 0.1)]
    Tracker(db, track_id=owner).log_artifact(ARTIFACT, name="weights.bin")
    with Tracker(db, params={"model": "named", "lr": 0.7}, track_id=XSS) as run:  # a run id that is markup
        for step in range(3):
            run.log({"step": step, "loss": 1.0 / (step + 1), "accuracy": 0.5})
        run.log_artifact(b"x", name=XSS + ".txt")
    live = Tracker(db, params={"model": "live", "lr": 0.5}, track_id="live-run").start()
    live.log({"step": 0, "loss": 1.0, "accuracy": 0.5})
    yield {"db": db, "ids": ids, "owner": owner, "live": live}
    live.end()


# The controls a screen reader could not name: no <label>, no aria-label, no text.
UNLABELED = """() => [...document.querySelectorAll('main input, main select, main button, main textarea')]
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
  .map((e) => e.outerHTML)"""


def run_count(page):
    return int(page.locator("#run-count").inner_text().split()[0])


def test_the_runs_page_shows_every_run(page, base, made):
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    expected = set(Reader(made["db"]).runs()["track_id"])
    shown = set(page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)"))
    assert shown == expected and run_count(page) == len(expected)
    assert page.get_by_label("Filter runs").count() == 1
    link = page.locator(f'#runs a.run-link:text-is("{made["owner"]}")')
    assert link.get_attribute("target") == "_blank" and "/run?" in link.get_attribute("href")


def test_sorting_by_a_column_header(page, base):
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    page.get_by_label("Sort by loss").click()
    expect(page).to_have_url(re.compile(r"sort=loss"))
    page.wait_for_selector('th[aria-sort="ascending"]')
    column = (
        page.locator("#runs thead th")
        .evaluate_all("ths => ths.map(t => t.innerText.replace(/ [▲▼]$/, ''))")
        .index("loss")
    )
    losses = [float(t) for t in page.locator(f"#runs tbody tr td:nth-child({column + 1})").all_inner_texts()]
    assert losses == sorted(losses)
    page.get_by_label("Sort by loss").click()
    page.wait_for_selector('th[aria-sort="descending"]')
    losses = [float(t) for t in page.locator(f"#runs tbody tr td:nth-child({column + 1})").all_inner_texts()]
    assert losses == sorted(losses, reverse=True)


def test_an_mlflow_filter_changes_the_count_and_escape_clears_it(page, base, made):
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    everything = run_count(page)
    box = page.get_by_label("Filter runs")
    box.fill("params.model = 'rf' and metrics.loss < 0.5")
    box.press("Enter")
    expected = len(Reader(made["db"]).search("params.model = 'rf' and metrics.loss < 0.5"))
    expect(page.locator("#run-count")).to_have_text(re.compile(rf"^{expected} runs?$"))
    assert expected < everything and page.locator("#runs tbody tr").count() == expected
    assert "filter=" in page.url  # the URL keeps the view
    page.reload()
    expect(page.locator("#run-count")).to_have_text(re.compile(rf"^{expected} runs?$"))
    box = page.get_by_label("Filter runs")
    assert box.input_value() == "params.model = 'rf' and metrics.loss < 0.5"
    box.fill("metrics.loss >")
    box.press("Enter")
    expect(page.locator("#filter-error")).to_contain_text("expected")
    box.press("Escape")
    expect(page.locator("#run-count")).to_have_text(f"{everything} runs")
    assert page.locator("#filter-error").inner_text() == ""


def test_selecting_two_runs_and_comparing_them(page, base, made):
    a, b = made["ids"][("rf", 0.1)], made["ids"][("rf", 0.3)]
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    page.get_by_label(f"Select run {a}").check()
    page.get_by_label(f"Select run {b}").check()
    assert "run=" in page.url
    page.get_by_label("Compare the selected runs").click()
    page.wait_for_selector("#compare tbody tr")
    heads = page.locator("#compare thead th").all_inner_texts()
    assert heads[1:] == [a, b]
    assert "diff" in page.locator('#compare tr[data-field="lr"]').get_attribute("class")
    assert "diff" not in (page.locator('#compare tr[data-field="model"]').get_attribute("class") or "")
    page.wait_for_selector("#scatter .scatterlayer .point")


def test_a_curve_is_drawn(page, base, made):
    a, b = made["ids"][("nn", 0.01)], made["ids"][("nn", 0.05)]
    page.goto(f"{base}/charts?run={a}&run={b}&metric=loss")
    page.wait_for_selector("#chart .scatterlayer .trace path.js-line")
    paths = page.locator("#chart .scatterlayer .trace path.js-line").evaluate_all(
        "ps => ps.map(p => p.getAttribute('d'))"
    )
    assert len(paths) == 2 and all(d and d.startswith("M") and d.count("L") >= 5 for d in paths)
    assert page.locator("#chart-status").inner_text() == "80 of 80 points drawn"
    legend = page.locator("#chart .legendtext").evaluate_all("ts => ts.map(t => t.textContent)")
    assert sorted(legend) == sorted([a, b])


def test_opening_a_run_and_downloading_its_artifact(page, base, made):
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    with page.context.expect_page() as opened:
        page.locator(f'#runs a.run-link:text-is("{made["owner"]}")').click()
    run_page = opened.value
    run_page.wait_for_selector("#rows tbody tr")
    assert run_page.locator("#run-id").inner_text() == made["owner"]
    assert run_page.locator("#run-status").inner_text() == "finished"
    with run_page.expect_download() as download:
        run_page.get_by_label("Download weights.bin").click()
    with open(download.value.path(), "rb") as f:
        assert f.read() == ARTIFACT
    run_page.close()


def test_a_new_row_appears_after_another_process_logs_it(page, base, made):
    page.goto(base + "/run?run=live-run")
    page.wait_for_selector("#rows tbody tr")
    assert page.locator("#run-status").inner_text() == "running"
    assert page.locator("#rows tbody tr").count() == 1
    code = (
        "import sys; from xetrack import Tracker\n"
        "t = Tracker(sys.argv[1], params={'model': 'live', 'lr': 0.5}, track_id='live-run')\n"
        "t.log({'step': 1, 'loss': 0.25, 'accuracy': 0.875})\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([sys.executable, "-c", code, made["db"]], check=True, env=env, timeout=60)
    expect(page.locator("#rows tbody tr")).to_have_count(2)
    assert page.locator("#row-count").inner_text() == "2 rows"
    assert "0.875" in page.locator("#rows tbody tr").nth(1).inner_text()
    fetched = [u for u in page.requests if "/api/rows" in u and "after=" in u]
    assert fetched, "the page never asked for the rows after its cursor"


def test_the_xss_string_shows_as_text(page, base, made):
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    assert page.locator(f'#runs td:text-is("{XSS}")').count() == 1  # the param (the id is a link)
    assert page.locator(f'#runs a.run-link:text-is("{XSS}")').count() == 1
    assert page.locator("#runs img").count() == 0
    xss_run = made["ids"][(XSS, 0.2)]
    page.goto(f"{base}/run?run={xss_run}")
    page.wait_for_selector("#params tr")
    assert page.locator("#params td").first.inner_text() == XSS
    assert page.locator("main img").count() == 0
    page.goto(f"{base}/compare?run={xss_run}&run={made['owner']}")
    page.wait_for_selector("#compare tbody tr")
    assert XSS in page.locator('#compare tr[data-field="model"]').inner_text()
    assert page.locator("main img").count() == 0
    page.goto(f"{base}/run?{urlencode({'run': XSS})}")
    page.wait_for_selector("#rows tbody tr")
    assert page.locator("#run-id").inner_text() == XSS
    assert page.locator(".artifact-download").inner_text() == XSS + ".txt"
    assert page.locator("main img").count() == 0
    page.goto(f"{base}/charts?{urlencode({'run': XSS, 'metric': 'loss'})}")
    page.wait_for_selector("#chart .legendtext")
    assert page.locator("#chart .legendtext").evaluate_all("ts => ts.map(t => t.textContent)") == [XSS]
    assert page.locator("#chart image, #chart img").count() == 0
    # page fixture: no dialog fired and no script broke


def test_every_page_stays_on_the_server(page, base, made):
    a = made["owner"]
    unlabeled = {}
    for path in ["/", "/runs", f"/run?run={a}", f"/charts?run={a}", f"/compare?run={a}", "/models"]:
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        unlabeled[path] = page.evaluate(UNLABELED)
    assert len(page.requests) >= 12
    assert unlabeled == {path: [] for path in unlabeled}, "every input and button has a label"
    # page fixture: every request went to the server
