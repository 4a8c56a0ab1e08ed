"""The runs workspace of the dashboard: groups of runs, parallel coordinates whose brushed
ranges become the filter, a run's name, tags, description and system metrics, images by
step, names on links, the scatter's log axes, the dark theme and the empty and error
states. Playwright drives Debian's Chromium against `xt ui`'s server on a generated file;
the API is also checked with Starlette's TestClient."""

import math
import os
import re
import struct
import warnings
import zlib
from urllib.parse import urlencode

import pytest

from browser_pages import XSS, check_page, open_page

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install the Debian package 'chromium' (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python: pip install 'xetrack[dev]'")
pytest.importorskip("starlette", reason="the ui extra: pip install 'xetrack[ui]'")

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from xetrack import Reader, Tracker  # noqa: E402
from xetrack.ui.app import create_app  # noqa: E402

expect = sync_api.expect
expect.set_options(timeout=15_000)

MODELS = ("rf", "nn")
LRS = (0.01, 0.1, 0.3)
SEEDS = range(5)
SYSTEM = ("cpu_percent", "ram_percent", "p_memory_percent", "disk_percent")
KINDS = {
    "x.jpg": "image/jpeg",
    "x.JPEG": "image/jpeg",
    "x.gif": "image/gif",
    "x.webp": "image/webp",
    "x.png": "image/png",
}
DESCRIPTION = "Baseline with the default features. " + XSS
LINK = '<a href="https://example.org/">a link</a>'


def png(r, g, b):
    """A valid 2x2 PNG of one colour."""

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + bytes([r, g, b]) * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("workspace") / "workspace.db")
    ids = {}
    for model in MODELS:
        for lr in LRS:
            for seed in SEEDS:
                name = None if seed == 4 else f"{model}-lr{lr}-s{seed}"  # seed 4: no name, shown by id
                with Tracker(db, params={"model": model, "lr": lr, "seed": seed}, run_name=name) as run:
                    for step in range(3):
                        loss = math.exp(-lr * (step + 1) * (seed + 2)) + (0.1 if model == "nn" else 0.0)
                        run.log({"step": step, "loss": loss, "acc": 1 - loss / 2 + seed / 100})
                    ids[(model, lr, seed)] = run.track_id
    pictures = ids[("rf", 0.1, 0)]
    writer = Tracker(db, track_id=pictures)
    for step in range(5):
        writer.log_artifact(png(40 * step, 0, 0), name="plots/pred.png", step=step)
    writer.log_artifact(
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', name="plots/curve.svg", step=0
    )
    writer.log_artifact(png(0, 0, 255), name="summary.png")  # no step: shown in the artifacts list
    # A run whose id, name, tag value and a param are markup; the machine's readings on its rows.
    with Tracker(db, params={"model": XSS, "lr": 0.2, "seed": 0}, track_id=XSS, run_name=XSS) as run:
        for step in range(4):
            run.log({"step": step, "loss": 0.5 - step / 10, "acc": 0.6 + step / 10,
                     **{c: 10.0 + step + i for i, c in enumerate(SYSTEM)}})  # fmt: skip
        run.set_tags({"team": XSS, "mlflow.note.content": DESCRIPTION})
        for step in (0, 2, 4):
            run.log_artifact(png(0, 60 * step, 0), name="plots/pred.png", step=step)
    Tracker(db, table="empty")  # a table without runs
    for i, model in enumerate([LINK, XSS, "plain"]):  # text params whose values are markup
        Tracker(db, table="markup", params={"model": model}, track_id=f"markup-{i}").log({"loss": i / 10})
    with Tracker(db, table="kinds", track_id="kinds") as run:
        run.log({"step": 0})
        for name in KINDS:
            run.log_artifact(b"not really an image " + name.encode(), name=name)
    return {"db": db, "ids": ids, "pictures": pictures}


@pytest.fixture(scope="session")
def client(made):
    return TestClient(create_app(lambda table: Reader(made["db"], table=table, persist_summary=False)))


@pytest.fixture
def dark_page(browser, base):
    context, page = open_page(browser, base, scheme="dark")
    yield page
    check_page(context, page, base)


def run_count(page):
    return int(page.locator("#run-count").inner_text().split()[0])


def pandas_groups(db, by, where=None):
    frame = Reader(db).search(where) if where else Reader(db).runs()
    return frame.groupby(by, dropna=False)[["loss", "acc"]].agg(["mean", "std", "count"])


def close(a, b):
    if a is None or b is None or (isinstance(b, float) and math.isnan(b)):
        return (a is None) and (b is None or math.isnan(b))
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# ------------------------------------------------------------------ groups
def test_the_groups_api_equals_pandas_over_a_new_reader(client, made):
    body = client.get("/api/runs/groups", params=[("group", "model"), ("group", "lr")]).json()
    expected = pandas_groups(made["db"], ["model", "lr"])
    assert body["total"] == len(expected) == len(MODELS) * len(LRS) + 1 and body["metrics"] == ["loss", "acc"]
    for group in body["groups"]:
        row = expected.loc[tuple(group["values"])]
        assert group["count"] == row[("loss", "count")]
        for metric in ("loss", "acc"):
            assert close(group["stats"][metric]["mean"], row[(metric, "mean")])
            assert close(group["stats"][metric]["std"], row[(metric, "std")])
        runs = client.get("/api/runs", params={"filter": group["filter"]}).json()
        assert runs["total"] == group["count"]  # the group's condition picks its runs
    # Over the runs of a filter, sorted by a metric's mean (descending).
    where = "params.lr >= 0.1"
    body = client.get("/api/runs/groups", params={"group": "model", "filter": where, "sort": "-acc"}).json()
    expected = pandas_groups(made["db"], ["model"], where)
    assert [g["values"][0] for g in body["groups"]] == list(
        expected[("acc", "mean")].sort_values(ascending=False).index
    )
    assert [g["count"] for g in body["groups"]] == [
        expected.loc[g["values"][0], ("acc", "count")] for g in body["groups"]
    ]
    assert body["runs"] == len(Reader(made["db"]).search(where))


def test_no_page_allows_eval(client):
    # The parallel coordinates are plain SVG: no page needs 'unsafe-eval', nor inline script.
    for path in ("/", "/runs", "/run", "/charts", "/compare", "/models", "/api/runs", "/static/runs.js"):
        policy = client.get(path).headers["content-security-policy"]
        assert "unsafe-eval" not in policy and "script-src 'self';" in policy, path
        assert "'unsafe-inline'" not in policy.split("style-src")[0], path
    module = client.get("/static/parallel.js")
    assert module.status_code == 200 and module.headers["content-type"].startswith("application/javascript")
    assert "unsafe-eval" not in module.headers["content-security-policy"]


def test_the_groups_api_refuses_bad_input_by_name(client):
    bad = {
        "unknown param": ([("group", "nope")], "nope"),
        "no group": ([], "group by"),
        "metric as group": ([("group", "acc")], "acc"),
        "sort by another column": ([("group", "model"), ("sort", "start")], "start"),
        "bad filter": ([("group", "model"), ("filter", "lr >")], "expected"),
    }
    for what, (params, word) in bad.items():
        answer = client.get("/api/runs/groups", params=params)
        assert answer.status_code == 400, what
        assert word.lower() in answer.json()["error"].lower(), (what, answer.json())
    assert client.get("/api/runs/parallel", params={"color": "model"}).status_code == 400


def test_grouping_rows_in_the_runs_table(page, base, made):
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    page.get_by_label("Group by").select_option(["model", "lr"])
    expect(page).to_have_url(re.compile(r"group=model&group=lr"))
    expected = pandas_groups(made["db"], ["model", "lr"])
    rows = page.locator("#groups tbody tr.group")
    expect(rows).to_have_count(len(expected))
    expect(page.locator("#run-count")).to_have_text(f"{len(Reader(made['db']).runs())} runs in {len(expected)} groups")
    for row in rows.all():
        cells = row.locator("td").all_inner_texts()
        model, lr = cells[1], float(cells[2])
        model_key = XSS if model == XSS else model
        stats = expected.loc[(model_key, lr)]
        assert int(cells[3]) == stats[("acc", "count")]
        for metric in ("loss", "acc"):
            shown = row.locator(f'td[data-metric="{metric}"]').inner_text()
            mean, _, std = shown.partition(" ± ")
            assert math.isclose(float(mean), stats[(metric, "mean")], rel_tol=1e-3, abs_tol=1e-4)
            if math.isnan(stats[(metric, "std")]):
                assert std == ""  # a group of one run has no std
            else:
                assert math.isclose(float(std), stats[(metric, "std")], rel_tol=1e-3, abs_tol=1e-4)
    # Sorting by a metric sorts the groups by its mean.
    page.get_by_label("Sort by acc").click()
    expect(page).to_have_url(re.compile(r"sort=acc"))
    expect(page.locator('th[aria-sort="ascending"]')).to_have_count(1)
    means = [float(t.split(" ± ")[0]) for t in page.locator('#groups td[data-metric="acc"]').all_inner_texts()]
    assert means == sorted(means) and len(means) == len(expected)
    # A group opens to its runs.
    page.get_by_label("Show runs of model=rf, lr=0.1").click()
    nested = page.get_by_role("table", name="Runs of model=rf, lr=0.1")
    expect(nested.locator("tbody tr")).to_have_count(len(SEEDS))
    shown = set(nested.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)"))
    assert shown == {made["ids"][("rf", 0.1, s)] for s in SEEDS}
    # The URL keeps the grouping.
    page.reload()
    expect(page.locator("#groups tbody tr.group")).to_have_count(len(expected))
    assert sorted(
        o for o in page.get_by_label("Group by").evaluate("s => [...s.selectedOptions].map(o => o.value)")
    ) == [
        "lr",
        "model",
    ]
    page.get_by_label("Stop grouping").click()
    expect(page.locator("#runs tbody tr")).to_have_count(len(Reader(made["db"]).runs()))


# --------------------------------------------------- parallel coordinates
def test_the_parallel_api_gives_the_filtered_runs_as_axes(client, made):
    where = "params.model = 'nn' and metrics.acc > 0.5"
    body = client.get("/api/runs/parallel", params={"filter": where, "color": "acc"}).json()
    expected = Reader(made["db"]).search(where)
    assert body["total"] == body["shown"] == len(expected) and body["track_id"] == list(expected["track_id"])
    axes = {d["name"]: d for d in body["dimensions"]}
    assert [d["name"] for d in body["dimensions"]] == ["model", "lr", "seed", "acc"]
    assert axes["model"]["kind"] == "category" and axes["lr"]["kind"] == axes["seed"]["kind"] == "number"
    assert axes["lr"]["values"] == list(expected["lr"]) and axes["acc"]["values"] == list(expected["acc"])
    assert "cpu_percent" not in body["metrics"]  # the machine's readings are not the model's metrics
    from xetrack.ui.groups import parallel

    capped = parallel(Reader(made["db"]), None, None, limit=10)
    assert capped["shown"] == 10 and capped["total"] == len(Reader(made["db"]).runs()) and capped["color"] == "loss"


def axis(page, name):
    return page.get_by_label(f"Brush {name}", exact=True)


def axis_line(page, name):
    """The x of an axis and the page y of its top and bottom ends (where the line is drawn)."""
    target = axis(page, name)
    target.scroll_into_view_if_needed()
    return target.locator(".pc-domain").evaluate(
        """(line) => { const r = line.ownerSVGElement.getBoundingClientRect();
          return [r.left + line.x1.baseVal.value, r.top + line.y1.baseVal.value, r.top + line.y2.baseVal.value] }"""
    )


def value_y(page, name, value):
    """The page y of `value` on a number axis (its minimum at the bottom, its maximum at the top)."""
    x, top, bottom = axis_line(page, name)
    low, high = (float(axis(page, name).get_attribute(a)) for a in ("data-min", "data-max"))
    return x, top + (bottom - top) * (high - value) / (high - low)


def drag(page, x, y0, y1):
    page.mouse.move(x, y0)
    page.mouse.down()
    page.mouse.move(x, (y0 + y1) / 2, steps=4)
    page.mouse.move(x, y1, steps=4)
    page.mouse.up()


def drag_range(page, name, low, high):
    """Press on `low` of a number axis, drag to `high`, release."""
    x, y0 = value_y(page, name, low)
    _, y1 = value_y(page, name, high)
    drag(page, x, y0, y1)


def drag_category(page, name, category):
    """Drag across one category's tick of a category axis."""
    ticks = axis(page, name).locator(".tick")
    names = ticks.locator("text").all_text_contents()
    box = ticks.nth(names.index(category)).locator("line").bounding_box()
    x, _, _ = axis_line(page, name)
    y = box["y"] + box["height"] / 2
    drag(page, x, y - 15, y + 15)


def active_runs(page):
    """The runs whose lines are not dimmed by a brushed range."""
    return set(page.locator("#parallel-chart path.pc-line:not(.dim)").evaluate_all("ps => ps.map(p => p.dataset.run)"))


def test_brushing_an_axis_filters_the_runs(page, base, made):
    every_run = Reader(made["db"]).runs()
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    page.get_by_role("button", name="Parallel coordinates").click()
    page.wait_for_selector("#parallel-chart .axis-title")
    assert page.get_by_label("Color by").input_value() == "loss"
    titles = page.locator("#parallel-chart .axis-title").all_text_contents()
    assert titles == ["model", "lr", "seed", "loss (metric)"]
    expect(page.locator("#parallel-chart path.pc-line")).to_have_count(len(every_run))
    assert active_runs(page) == set(every_run["track_id"])
    box = page.get_by_label("Filter runs")
    # A range dragged on the lr axis becomes two conditions of the filter grammar.
    drag_range(page, "lr", 0.05, 0.25)
    expect(box).to_have_value(re.compile(r"^params\.lr >= [\d.]+ and params\.lr <= [\d.]+$"))
    where = box.input_value()
    low, high = map(float, re.findall(r"[\d.]+$|(?<=>= )[\d.]+", where))
    assert abs(low - 0.05) < 0.003 and abs(high - 0.25) < 0.003, where
    expected = Reader(made["db"]).search(where)
    assert len(expected) == len(MODELS) * len(SEEDS) + 1  # lr 0.1, and the markup run's 0.2
    expect(page.locator("#run-count")).to_have_text(f"{len(expected)} runs")
    shown = set(page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)"))
    assert shown == set(expected["track_id"]) == active_runs(page)
    assert "filter=" in page.url
    expect(axis(page, "lr").locator(".pc-brush")).to_be_visible()
    # A category axis: the categories under the drag become an equality (or an IN list).
    drag_category(page, "model", "rf")
    expect(box).to_have_value(re.compile(r"^params\.model = 'rf' and params\.lr >= "))
    expected = Reader(made["db"]).search(box.input_value())
    assert len(expected) == len(SEEDS) and set(expected["model"]) == {"rf"}
    expect(page.locator("#run-count")).to_have_text(f"{len(expected)} runs")
    assert active_runs(page) == set(expected["track_id"])
    # A click on an axis, without a drag, clears its range.
    x, top, bottom = axis_line(page, "lr")
    page.mouse.click(x, (top + bottom) / 2)
    expect(box).to_have_value("params.model = 'rf'")
    expected = Reader(made["db"]).search("params.model = 'rf'")
    expect(page.locator("#run-count")).to_have_text(f"{len(expected)} runs")
    expect(axis(page, "lr").locator(".pc-brush")).to_be_hidden()
    # Clearing the ranges gives the filter back.
    page.get_by_label("Clear the brushed ranges").click()
    expect(box).to_have_value("")
    expect(page.locator("#run-count")).to_have_text(f"{len(every_run)} runs")
    expect(page.locator("#parallel-chart path.pc-line.dim")).to_have_count(0)


def test_the_parallel_chart_keeps_a_typed_filter_and_colours_by_a_chosen_metric(page, base, made):
    typed = "params.model = 'nn'"
    nn = Reader(made["db"]).search(typed)
    page.goto(base + "/runs?" + urlencode({"filter": typed, "pc": "1"}))
    page.wait_for_selector("#parallel-chart .axis-title")
    page.get_by_label("Color by").select_option("acc")
    expect(page).to_have_url(re.compile(r"color=acc"))
    expect(page.locator("#parallel-chart .axis-title").last).to_have_text("acc (metric)")
    expect(page.locator("#parallel-note")).to_contain_text(f"{len(nn)} runs")
    # The legend spans the metric's range; the best run is yellow, the worst purple (viridis).
    legend = [float(page.locator(f"#parallel-chart .pc-legend-{end}").text_content()) for end in ("min", "max")]
    assert math.isclose(legend[0], nn["acc"].min(), rel_tol=1e-3) and math.isclose(
        legend[1], nn["acc"].max(), rel_tol=1e-3
    )
    line = "#parallel-chart path.pc-line[data-run='{}']"
    assert (
        page.locator(line.format(nn.loc[nn["acc"].idxmax(), "track_id"])).get_attribute("stroke") == "rgb(253, 231, 37)"
    )
    assert page.locator(line.format(nn.loc[nn["acc"].idxmin(), "track_id"])).get_attribute("stroke") == "rgb(68, 1, 84)"
    # A range on seed (past the top end: kept at the axis's maximum) joins the typed filter.
    drag_range(page, "seed", 1.5, 4.3)
    box = page.get_by_label("Filter runs")
    expect(box).to_have_value(
        re.compile(r"^\(params\.model = 'nn'\) and params\.seed >= [\d.]+ and params\.seed <= 4$")
    )
    where = box.input_value()
    expected = Reader(made["db"]).search(where)
    assert set(expected["seed"]) == {2, 3, 4} and len(expected) == len(LRS) * 3, where
    expect(page.locator("#run-count")).to_have_text(f"{len(expected)} runs")
    # Another colour redraws the same runs, the range kept.
    page.get_by_label("Color by").select_option("loss")
    expect(page.locator("#parallel-chart .axis-title").last).to_have_text("loss (metric)")
    expect(axis(page, "seed").locator(".pc-brush")).to_be_visible()
    expect(page.locator("#parallel-chart path.pc-line")).to_have_count(len(nn))
    assert active_runs(page) == set(expected["track_id"])
    assert box.input_value() == where


def test_an_axis_brushes_from_the_keyboard(page, base, made):
    page.goto(base + "/runs?pc=1")
    page.wait_for_selector("#parallel-chart .axis-title")
    seed = axis(page, "seed")
    expect(seed).to_have_attribute("role", "slider")
    seed.focus()
    seed.press("ArrowDown")  # a tenth of the axis at its top
    box = page.get_by_label("Filter runs")
    expect(box).to_have_value("params.seed >= 3.6 and params.seed <= 4")
    expect(seed).to_have_attribute("aria-valuetext", "seed from 3.6 to 4")
    expected = Reader(made["db"]).search(box.input_value())
    expect(page.locator("#run-count")).to_have_text(f"{len(expected)} runs")
    assert len(expected) == len(MODELS) * len(LRS)
    seed.press("Shift+ArrowDown")  # its top end down: no seed left
    expect(box).to_have_value("params.seed >= 3.6 and params.seed <= 3.6")
    expect(page.get_by_text("No runs match the filter params.seed >= 3.6")).to_be_visible()
    seed.press("Escape")
    expect(box).to_have_value("")
    expect(page.locator("#run-count")).to_have_text(f"{len(Reader(made['db']).runs())} runs")


def test_five_thousand_runs_draw_fast(page, base):
    n = 5000
    body = {
        "track_id": [f"run-{i}" for i in range(n)],
        "dimensions": [
            {
                "name": "model",
                "prefix": "params",
                "kind": "category",
                "values": [("a", "b", XSS)[i % 3] for i in range(n)],
            },
            {"name": "lr", "prefix": "params", "kind": "number", "values": [(i % 100) / 100 for i in range(n)]},
            {
                "name": "seed",
                "prefix": "params",
                "kind": "number",
                "values": [i % 7 if i % 11 else None for i in range(n)],
            },
            {"name": "acc", "prefix": "metrics", "kind": "number", "values": [i / n for i in range(n)]},
        ],
        "color": "acc",
    }
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    took = page.evaluate(
        """async (body) => {
          const { drawParallel } = await import("/static/parallel.js");
          const box = document.createElement("div");
          box.className = "chart";
          box.id = "big-chart";
          document.querySelector("main").prepend(box);
          const start = performance.now();
          drawParallel(box, body, { onBrush: (brushes) => { box.dataset.brushed = JSON.stringify(brushes); } });
          box.getBoundingClientRect();
          await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));  // laid out and painted
          return performance.now() - start;
        }""",
        body,
    )
    print(f"\n{n} runs drawn in {took:.0f} ms")
    chart = page.locator("#big-chart")
    expect(chart.locator("path.pc-line")).to_have_count(n)
    assert XSS in chart.locator(".tick text").all_text_contents()
    assert took < 5000, took
    # A drag on the lr axis dims every run outside its range.
    line = chart.get_by_label("Brush lr", exact=True).locator(".pc-domain")
    x, top, bottom = line.evaluate(
        """(l) => { const r = l.ownerSVGElement.getBoundingClientRect();
          return [r.left + l.x1.baseVal.value, r.top + l.y1.baseVal.value, r.top + l.y2.baseVal.value] }"""
    )
    drag(page, x, top + (bottom - top) * (1 - 0.2 / 0.99), top + (bottom - top) * (1 - 0.4 / 0.99))
    expect(chart).to_have_attribute("data-brushed", re.compile("lo"))
    brushed = page.evaluate("() => JSON.parse(document.getElementById('big-chart').dataset.brushed)")
    assert brushed[0] is None and brushed[2] is None and brushed[3] is None
    low, high = brushed[1]["lo"], brushed[1]["hi"]
    assert abs(low - 0.2) < 0.01 and abs(high - 0.4) < 0.01
    inside = sum(low <= v <= high for v in body["dimensions"][1]["values"])
    expect(chart.locator("svg")).to_have_attribute("data-active", str(inside))
    assert chart.locator("path.pc-line:not(.dim)").count() == inside


# ---------------------------------------------------------------- one run
def test_the_run_page_shows_name_tags_description_and_system_metrics(page, base, made):
    page.goto(f"{base}/run?{urlencode({'run': XSS})}")
    page.wait_for_selector("#rows tbody tr")
    assert page.locator("h1 #run-name").inner_text() == XSS
    assert page.locator("h1 #run-id").inner_text() == XSS
    assert page.locator("#run-description").inner_text() == DESCRIPTION
    tags = page.get_by_role("table", name="Tags")
    assert tags.locator("tr", has_text="team").locator("td").inner_text() == XSS
    assert "mlflow.note.content" not in tags.inner_text()  # shown as the description
    shown = page.get_by_role("table", name="Last metrics").locator("th").all_inner_texts()
    assert sorted(shown) == ["acc", "loss"]  # no system columns, no step
    system = page.get_by_role("region", name="System metrics")
    charts = system.locator(".chart")
    expect(charts).to_have_count(len(SYSTEM))
    assert sorted(charts.evaluate_all("cs => cs.map(c => c.dataset.metric)")) == sorted(SYSTEM)
    page.wait_for_function(
        "n => document.querySelectorAll('#system-metrics .scatterlayer .trace path.js-line').length === n",
        arg=len(SYSTEM),
    )
    ys = page.evaluate("() => document.querySelector('#system-metrics [data-metric=cpu_percent]').data[0].y")
    assert ys == [10.0, 11.0, 12.0, 13.0]
    # Markup stays text: every <img> on the page is an artifact of the run.
    sources = page.locator("main img").evaluate_all("imgs => imgs.map(i => i.getAttribute('src'))")
    assert sources and all(s.startswith("/api/artifact?") for s in sources)


def test_a_run_without_system_columns_or_a_name_shows_its_id(page, base, made):
    plain = made["ids"][("nn", 0.3, 4)]
    page.goto(f"{base}/run?run={plain}")
    page.wait_for_selector("#rows tbody tr")
    assert page.locator("h1").inner_text().startswith(f"Run {plain}")
    assert page.locator("#run-name").count() == 0 and page.locator("#system-metrics").inner_text() == ""
    expect(page.get_by_text("No tags.")).to_be_visible()


# ----------------------------------------------------------- images by step
def test_the_images_api_lists_steps_and_serves_safe_types(client, made):
    a = made["pictures"]
    body = client.get("/api/images", params=[("run", a), ("run", XSS)]).json()
    assert body["runs"] == [{"track_id": a, "name": "rf-lr0.1-s0"}, {"track_id": XSS, "name": XSS}]
    listed = {(i["track_id"], i["name"], i["step"]) for i in body["images"]}
    assert listed == {(a, "plots/pred.png", s) for s in range(5)} | {(XSS, "plots/pred.png", s) for s in (0, 2, 4)} | {
        (a, "plots/curve.svg", 0)
    }
    svg = next(i for i in body["images"] if i["name"].endswith(".svg"))
    assert svg["inline"] is False
    served = client.get("/api/artifact", params={"run": a, "hash": svg["hash"], "inline": 1})
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment")
    for name, kind in KINDS.items():
        served = client.get("/api/artifact", params={"table": "kinds", "run": "kinds", "name": name, "inline": 1})
        assert served.headers["content-type"] == kind and served.headers["content-disposition"].startswith("inline")
    assert client.get("/api/images", params=[("run", "nope")]).status_code == 404
    many = client.get("/api/images", params=[("run", f"r{i}") for i in range(51)])
    assert many.status_code == 400 and "50" in many.json()["error"]
    assert client.get("/api/images").status_code == 400


def test_images_by_step_side_by_side(page, base, made):
    a = made["pictures"]
    page.goto(f"{base}/compare?{urlencode([('run', a), ('run', XSS)])}")
    group = page.locator('.image-group[data-name="plots/pred.png"]')
    slider = page.get_by_label("Step of plots/pred.png")
    expect(slider).to_have_value("4")
    figures = group.locator("figure")
    expect(figures).to_have_count(2)
    listing = Reader(made["db"]).artifacts()
    hashes = {(r.track_id, r.step): r.hash for r in listing[listing["name"] == "plots/pred.png"].itertuples()}
    slider.fill("3")
    expect(group.locator(f'figure[data-run="{a}"]')).to_have_attribute("data-step", "3")
    expect(group.locator('figure[data-run="' + XSS.replace('"', '\\"') + '"]')).to_have_attribute("data-step", "2")
    sources = group.locator("img").evaluate_all("imgs => imgs.map(i => new URL(i.src).searchParams.get('hash'))")
    assert sources == [hashes[(a, 3)], hashes[(XSS, 2)]]
    captions = group.locator("figcaption .image-run").all_inner_texts()
    assert captions == ["rf-lr0.1-s0", XSS]  # the runs' names, the markup one as text
    group.scroll_into_view_if_needed()
    page.wait_for_function(
        """() => [...document.querySelectorAll('.image-group[data-name="plots/pred.png"] img')]
          .every((i) => i.complete && i.naturalWidth === 2)"""
    )  # served as PNG and drawn
    # The SVG is a download, never drawn.
    svg = page.locator('.image-group[data-name="plots/curve.svg"]')
    expect(svg.get_by_role("link", name="Download plots/curve.svg at step 0")).to_have_count(1)
    assert svg.locator("img, svg image, object, iframe").count() == 0
    # The run page shows them too, for its run.
    page.goto(f"{base}/run?run={a}")
    expect(page.get_by_label("Step of plots/pred.png")).to_have_value("4")
    page.get_by_label("Step of plots/pred.png").fill("1")
    src = page.locator('.image-group[data-name="plots/pred.png"] img').get_attribute("src")
    assert f"hash={hashes[(a, 1)]}" in src
    expect(page.locator('.artifact[data-name="summary.png"] img')).to_have_count(1)


# ----------------------------------------------------- names, scatter, theme
def test_names_on_links_and_compare_headers(page, base, made):
    named, unnamed = made["ids"][("rf", 0.3, 1)], made["ids"][("rf", 0.3, 4)]
    page.goto(f"{base}/compare?{urlencode([('run', named), ('run', unnamed), ('run', XSS)])}")
    heads = page.locator("#compare thead th a.run-link")
    expect(heads).to_have_count(3)
    assert heads.all_inner_texts() == ["rf-lr0.3-s1", unnamed, XSS]
    assert heads.evaluate_all("as => as.map(a => a.title)") == [named, unnamed, XSS]
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    link = page.locator(f'#runs tr[data-run="{named}"] a.run-link')
    assert link.inner_text() == named and link.get_attribute("title") == named  # the id column keeps ids


def test_the_scatter_has_log_axes(page, base, made):
    page.goto(f"{base}/compare?sx=lr&sy=loss")
    page.wait_for_selector("#scatter .scatterlayer .point")
    axis = "() => ['xaxis', 'yaxis'].map((a) => document.getElementById('scatter')._fullLayout[a].type)"
    page.get_by_label("Log x").check()
    expect(page).to_have_url(re.compile(r"sxl=1"))
    page.wait_for_function("() => document.getElementById('scatter')._fullLayout.xaxis.type === 'log'")
    page.get_by_label("Log y").check()
    page.wait_for_function("() => document.getElementById('scatter')._fullLayout.yaxis.type === 'log'")
    assert page.evaluate(axis) == ["log", "log"]
    page.reload()
    page.wait_for_function("() => document.getElementById('scatter')?._fullLayout?.xaxis.type === 'log'")
    assert page.get_by_label("Log x").is_checked() and page.get_by_label("Log y").is_checked()
    page.get_by_label("Log x").uncheck()
    page.wait_for_function("() => document.getElementById('scatter')._fullLayout.xaxis.type === 'linear'")


LUMA = """(color) => { const m = color.match(/[\\d.]+/g).map(Number);
  return (0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]) / 255 }"""


def luma(page, css_color):
    return page.evaluate(LUMA, css_color)


def test_the_dark_theme_follows_the_system(dark_page, page, base):
    for p, dark in ((dark_page, True), (page, False)):
        p.goto(f"{base}/compare?sx=lr&sy=loss")
        p.wait_for_selector("#scatter .xtick text")
        background = luma(p, p.evaluate("() => getComputedStyle(document.body).backgroundColor"))
        tick = luma(p, p.locator("#scatter .xtick text").first.evaluate("t => getComputedStyle(t).fill"))
        if dark:
            assert background < 0.2 and tick > 0.7, (background, tick)
        else:
            assert background > 0.9 and tick < 0.3, (background, tick)
    dark_page.goto(f"{base}/runs?pc=1")
    dark_page.wait_for_selector("#parallel-chart .axis-title")
    label = dark_page.locator("#parallel-chart .axis-title").first.evaluate("t => getComputedStyle(t).fill")
    assert luma(dark_page, label) > 0.7


# ------------------------------------------------------------------ states
def test_empty_and_error_states_say_what_is_missing(page, base):
    page.goto(base + "/runs?table=empty")
    expect(page.get_by_text("This table has no runs yet")).to_be_visible()
    assert run_count(page) == 0
    page.goto(base + "/runs?" + urlencode({"filter": "params.lr > 100"}))
    expect(page.get_by_text("No runs match the filter params.lr > 100")).to_be_visible()
    page.get_by_label("Group by").select_option(["model"])
    expect(page.get_by_text("No runs match the filter params.lr > 100")).to_be_visible()
    box = page.get_by_label("Filter runs")
    box.fill("params.nope = 1")
    box.press("Enter")
    expect(page.locator("#filter-error")).to_contain_text("nope")
    page.goto(base + "/run?run=no-such-run")
    expect(page.get_by_role("alert")).to_contain_text("no-such-run")


HOLD = """() => {  // the page's requests for /api/runs wait until the test lets each go
  window.held = [];
  const real = window.fetch;
  window.fetch = (url, options) => {
    if (!String(url).includes("/api/runs?")) return real(url, options);
    return new Promise((resolve) => window.held.push(async () => {
      const response = await real(url, options);
      const read = response.json.bind(response);
      let parsed;
      const done = new Promise((d) => { parsed = d; });
      // done: once the page has read the answer and run what follows (its next task)
      response.json = () => read().then((body) => { setTimeout(parsed, 0); return body; });
      resolve(response);
      await done;
    }));
  };
}"""


def test_a_column_change_during_a_reload_is_kept(page, base):
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    page.evaluate(HOLD)
    page.locator("details.columns summary").click()
    page.get_by_label("Show column loss").uncheck()
    page.wait_for_function("() => window.held.length === 1")
    page.get_by_label("Show column acc").uncheck()  # while the first reload is in flight
    page.wait_for_function("() => window.held.length === 2")
    chosen = dict(re.findall(r"([a-z]+)=([^&]*)", page.url))["columns"].split("%2C")
    assert "loss" not in chosen and "acc" not in chosen and "lr" in chosen
    page.evaluate("() => window.held[1]()")  # the later answer first,
    expect(page.locator("#runs-box")).not_to_have_attribute("aria-busy", "true")
    page.evaluate("() => window.held[0]()")  # then the stale one, read and dropped
    heads = page.locator("#runs thead th").all_inner_texts()
    assert "lr" in heads and not any(h.startswith(("loss", "acc")) for h in heads), heads
    assert not page.get_by_label("Show column loss").is_checked()
    assert not page.get_by_label("Show column acc").is_checked()


def test_markup_stays_text_on_the_workspace_pages(page, base, made):
    page.goto(base + "/runs?" + urlencode([("group", "model"), ("pc", "1")]))
    page.wait_for_selector("#parallel-chart .axis-title")
    expect(page.locator("#groups td", has_text=XSS)).to_have_count(1)
    ticks = page.locator("#parallel-chart .tick text").evaluate_all("ts => ts.map(t => t.textContent)")
    assert XSS in ticks
    page.get_by_label(f"Show runs of model={XSS}").click()
    expect(page.get_by_role("table", name=f"Runs of model={XSS}").locator("tbody tr")).to_have_count(1)
    assert page.locator("main img, #parallel-chart image").count() == 0
    page.goto(f"{base}/compare?{urlencode([('run', XSS), ('run', made['pictures'])])}")
    expect(page.locator("#compare thead a.run-link").first).to_have_text(XSS)
    # page fixture: no dialog fired, no script broke, no request for "x"


def test_text_values_on_the_scatter_stay_text(page, base, made):
    """A text param on an axis: its values are tick labels and hover text, which Plotly
    reads as markup unless escaped (an <img> tag would vanish, a link become clickable)."""
    page.goto(f"{base}/compare?table=markup&sx=model&sy=loss")
    page.wait_for_selector("#scatter .scatterlayer .point")
    ticks = page.locator("#scatter .xtick text").evaluate_all("ts => ts.map(t => t.textContent)")
    assert sorted(ticks) == sorted([LINK, XSS, "plain"])
    assert page.locator("#scatter a, #scatter img").count() == 0


def test_a_page_left_before_its_answer_never_draws_over_the_next(page, base, made):
    """Chart selected, then Back before the charts page has its runs: the runs page stays,
    and the charts page's answer, arriving late, draws nothing and polls nothing."""
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    page.get_by_label(f"Select run {made['ids'][('rf', 0.1, 0)]}").check()
    page.evaluate("() => { document.getElementById('chart-selected').click(); history.back(); }")
    expect(page).to_have_url(re.compile(r"/runs"))
    page.wait_for_function("() => !location.pathname.startsWith('/charts')")
    page.wait_for_timeout(1500)  # the charts page's answers have all come by now
    expect(page.get_by_role("heading", name="Charts")).to_have_count(0)
    expect(page.locator("#runs tbody tr").first).to_be_visible()
    asked = len([u for u in page.requests if "/api/curves" in u])
    page.wait_for_timeout(2500)
    assert len([u for u in page.requests if "/api/curves" in u]) == asked
