"""The charts page as a workspace (xetrack/ui/static/charts.js, xetrack/ui/curves.py):
a panel per metric, runs grouped by params with a band, zoom that brings the range's
detail from the store, run names, and the time from "Chart selected" to a drawn chart.
Playwright drives Debian's Chromium against a server on a generated file; the API is
also asked directly (TestClient) and checked against pandas."""

import math
import os
import re
import time
import warnings
from urllib.parse import urlencode

import numpy as np
import pytest

from browser_pages import XSS

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install the Debian package 'chromium' (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python: pip install 'xetrack[dev]'")
pytest.importorskip("starlette", reason="the ui extra: pip install 'xetrack[ui]'")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from xetrack import Reader, Tracker  # noqa: E402
from xetrack.ui import curves  # noqa: E402
from xetrack.ui.app import create_app  # noqa: E402

expect = sync_api.expect
expect.set_options(timeout=15_000)

BIG = 1_000_000
STEPS = 60
#: (model, lr) of the small runs: 5 seeds each.
GROUPS = [("rf", 0.1), ("nn", 0.01), ("nn", 0.05)]


def big_values():
    """The long run's loss: a slow wave with noise, and two spikes (its extremes)."""
    rng = np.random.default_rng(7)
    values = np.sin(np.arange(BIG) / 5000.0) + rng.normal(0, 0.1, BIG)
    values[123_457] = 9.0
    values[876_543] = -9.0
    return values


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("charts") / "charts.db")
    ids = {}
    for model, lr in GROUPS:
        for seed in range(5):
            name = f"{model}-{lr}-s{seed}" if model == "rf" else None  # rf runs have names, nn runs none
            rng = np.random.default_rng(seed)
            with Tracker(db, params={"model": model, "lr": lr, "seed": seed}, run_name=name) as run:
                rows = []
                for step in range(STEPS):
                    loss = math.exp(-lr * step * 3) + float(rng.normal(0, 0.05))
                    row = {"step": step, "loss": loss, "accuracy": 1 - loss / 2}
                    if step % 10 == 0 and model == "rf":  # the machine's readings on some rows
                        row.update(cpu_percent=10.0 + step, ram_percent=40.0 + seed)
                    rows.append(row)
                run.log_batch(rows)
                ids[(model, lr, seed)] = run.track_id
    with Tracker(db, params={"model": XSS, "lr": 0.2, "seed": 0}, track_id=XSS) as run:  # markup as an id
        run.log_batch([{"step": s, "loss": 1.0 / (s + 1), "accuracy": 0.5} for s in range(5)])
    with Tracker(db, params={"model": "named", "lr": 0.2, "seed": 0}, run_name=XSS) as run:  # markup as a name
        run.log_batch([{"step": s, "loss": 2.0 / (s + 1), "accuracy": 0.4} for s in range(5)])
        named_xss = run.track_id
    values = big_values()
    with Tracker(db, params={"model": "big", "lr": 0.1, "seed": 0}, run_name="the long one") as run:
        run.log_batch([{"step": s, "loss": v} for s, v in enumerate(values.tolist())])
        big = run.track_id
    wide = {}
    for k in range(2):  # a table of 60 metrics: more panels than one page shows
        with Tracker(db, table="wide", params={"seed": k}) as run:
            run.log_batch([{"step": s, **{f"m{j:02d}": s * j + k for j in range(60)}} for s in range(4)])
            wide[k] = run.track_id
    live = Tracker(db, params={"model": "live", "lr": 0.5, "seed": 0}, track_id="live-run").start()
    live.log_batch([{"step": s, "loss": 1.0 / (s + 1)} for s in range(10)])
    yield {"db": db, "ids": ids, "big": big, "values": values, "named_xss": named_xss, "wide": wide, "live": live}
    live.end()


@pytest.fixture(scope="session")
def client(made):
    app = create_app(lambda table: Reader(made["db"], table=table, persist_summary=False))
    with TestClient(app) as c:
        yield c


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def charts_url(base, **params):
    return f"{base}/charts?{urlencode(params, doseq=True)}"


def panel(page, metric):
    return page.locator(f'.panel[data-metric="{metric}"]')


def trace_data(page, metric):
    """The traces Plotly drew in a panel: name, x, y, fill of each."""
    return (
        panel(page, metric)
        .locator(".panel-chart")
        .evaluate(
            "el => el.data.map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y), fill: t.fill || null}))"
        )
    )


def drawn(page, metric):
    page.wait_for_selector(f'.panel[data-metric="{metric}"][data-drawn="1"] .scatterlayer .trace')


def legend(page, metric):
    return panel(page, metric).locator(".legendtext").evaluate_all("ts => ts.map(t => t.textContent)")


def group_ids(made, model, lr):
    return [made["ids"][(model, lr, s)] for s in range(5)]


# ------------------------------------------------------------------ the grid
def test_the_grid_has_a_panel_per_metric_and_a_system_group(page, base, made):
    rf, nn = group_ids(made, "rf", 0.1), group_ids(made, "nn", 0.01)
    page.goto(charts_url(base, run=rf[:3] + nn[:2]))
    panels = page.get_by_label("Panels")
    expect(panels.locator(".panel")).to_have_count(4)
    groups = panels.locator("section.panel-group")
    assert groups.evaluate_all("ss => ss.map(s => s.dataset.group)") == ["Metrics", "System"]
    metrics = groups.nth(0).locator(".panel").evaluate_all("ps => ps.map(p => p.dataset.metric)")
    system = groups.nth(1).locator(".panel").evaluate_all("ps => ps.map(p => p.dataset.metric)")
    assert sorted(metrics) == ["accuracy", "loss"] and sorted(system) == ["cpu_percent", "ram_percent"]
    expect(page.get_by_role("img", name="loss over step for 5 runs")).to_have_count(1)
    drawn(page, "loss")
    # Names where the run has one (rf), else the track_id (nn): legend and links.
    names = [f"rf-0.1-s{s}" for s in range(3)] + nn[:2]
    assert legend(page, "loss") == names
    assert page.locator("#chart-runs a.run-link").all_inner_texts() == names
    # The legend sits above the plot: it never covers the x axis's title.
    boxes = panel(page, "loss").evaluate(
        """p => [p.querySelector('.legend'), p.querySelector('.g-xtitle')].map(e => {
             const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })"""
    )
    (l1, t1, r1, b1), (l2, t2, r2, b2) = boxes
    assert b1 <= t2 or b2 <= t1 or r1 <= l2 or r2 <= l1, f"legend {boxes[0]} overlaps the x title {boxes[1]}"
    # Expand: the panel spans the row.
    width = panel(page, "loss").bounding_box()["width"]
    page.get_by_role("button", name="Expand loss").click()
    expect(page.get_by_role("button", name="Expand loss")).to_have_attribute("aria-pressed", "true")
    assert panel(page, "loss").bounding_box()["width"] > 1.5 * width


def test_without_runs_the_top_runs_of_the_filter_and_sort(page, base, made):
    where, sort = "params.model = 'nn'", "-seed"
    expected = Reader(made["db"]).search(where, order_by=[sort])["track_id"].tolist()
    page.goto(charts_url(base, filter=where, sort=sort, top=3))
    expect(page.locator("#chart-runs a.run-link")).to_have_count(3)
    assert page.locator("#chart-runs a.run-link").all_inner_texts() == expected[:3]
    expect(page.locator("#chart-runs")).to_contain_text(f"The first 3 of {len(expected)} runs")
    box = page.get_by_label("Runs shown")
    box.fill("4")
    box.press("Enter")
    box.dispatch_event("change")
    expect(page.locator("#chart-runs a.run-link")).to_have_count(4)
    assert "top=4" in page.url


def test_more_than_50_panels_are_paged_and_drawn_when_seen(page, base, made):
    page.goto(charts_url(base, table="wide", run=list(made["wide"].values())))
    panels = page.get_by_label("Panels").locator(".panel")
    expect(panels).to_have_count(50)
    drawn(page, "m01")
    last = panel(page, "m49")
    assert last.get_attribute("data-drawn") is None  # below the fold: not drawn yet
    last.scroll_into_view_if_needed()
    drawn(page, "m49")
    page.get_by_role("button", name="Show more panels").click()
    expect(panels).to_have_count(60)
    expect(page.get_by_role("button", name="Show more panels")).to_be_hidden()


# ------------------------------------------------------------------ groups
def test_group_by_model_draws_a_mean_and_a_band_per_group(page, base, made):
    rf, nn = group_ids(made, "rf", 0.1), group_ids(made, "nn", 0.01)
    page.goto(charts_url(base, run=rf + nn))
    drawn(page, "loss")
    page.get_by_label("Group by").select_option(["model"])
    expect(panel(page, "loss").locator(".legendtext")).to_have_text(["model=rf (n=5)", "model=nn (n=5)"])
    traces = trace_data(page, "loss")
    means = [t for t in traces if t["name"].endswith("(n=5)")]
    bands = [t for t in traces if t["fill"] == "tonexty"]
    assert len(means) == 2 and len(bands) == 2
    frame = Reader(made["db"]).to_df()
    for mean, ids in zip(means, [rf, nn]):
        expected = frame[frame["track_id"].isin(ids)].groupby("step")["loss"].mean()
        assert mean["x"] == list(range(STEPS))
        assert np.allclose(mean["y"], expected.loc[mean["x"]].to_numpy(), rtol=1e-12, atol=0)
    # min-max: the band is the group's lowest and highest value at each step.
    page.get_by_label("Band").select_option("min-max")
    expect(page).to_have_url(re.compile(r"band=min-max"))
    highest = float(frame[frame["track_id"].isin(rf)].groupby("step")["loss"].max().iloc[0])
    page.wait_for_function(
        """(top) => { const el = document.querySelector('.panel[data-metric="loss"] .panel-chart');
                      return el.data && el.data[1].y[0] === top; }""",
        arg=highest,
    )
    page.get_by_label("Group by").select_option(["model", "lr"])
    expect(panel(page, "loss").locator(".legendtext")).to_have_text(
        ["model=rf, lr=0.1 (n=5)", "model=nn, lr=0.01 (n=5)"]
    )


def test_the_group_mean_equals_pandas(client, made):
    ids = group_ids(made, "rf", 0.1) + group_ids(made, "nn", 0.01) + group_ids(made, "nn", 0.05)
    body = ok(client.get("/api/group_curves", params={"metric": "accuracy", "group": ["model"], "run": ids}))
    frame = Reader(made["db"]).to_df()
    frame = frame[frame["track_id"].isin(ids)]
    assert [(g["label"], g["n"]) for g in body["groups"]] == [("model=rf", 5), ("model=nn", 10)]
    for group in body["groups"]:
        mine = frame[frame["model"] == group["key"]["model"]].groupby("step")["accuracy"]
        assert group["x"] == mine.mean().index.tolist()
        assert np.allclose(group["mean"], mine.mean().to_numpy(), rtol=1e-12, atol=0)
        assert np.allclose(group["std"], mine.std().to_numpy(), rtol=1e-9, atol=0)
        assert group["count"] == mine.count().tolist()
        assert np.allclose(group["lower"], (mine.mean() - mine.std()).to_numpy(), rtol=1e-9)
        assert {r["name"] for r in group["runs"]} == (
            {f"rf-0.1-s{s}" for s in range(5)} if group["key"]["model"] == "rf" else {None}
        )


def test_group_requests_are_bounded_and_checked(client, made, monkeypatch):
    def error(params, status):
        response = client.get("/api/group_curves", params=params)
        assert response.status_code == status, response.text
        return response.json()["error"]

    assert "1000 runs" in error({"metric": "loss", "top": 1001}, 413)
    assert "1000 runs" in error({"metric": "loss", "run": [f"r{i}" for i in range(1001)]}, 413)
    monkeypatch.setattr(curves, "MAX_READ", 100_000)
    message = error({"metric": "loss", "run": [made["big"]]}, 413)
    assert "1,000,000 points" in message and "100,000" in message
    monkeypatch.undo()
    assert "not a param" in error({"metric": "loss", "group": "nope"}, 400)
    assert "band" in error({"metric": "loss", "group": "model", "band": "iqr"}, 400)
    assert "time" in error({"metric": "loss", "x": "_wall"}, 400)
    assert "nope" in error({"metric": "nope"}, 400)
    body = ok(client.get("/api/group_curves", params={"metric": "loss", "run": ["abc", made["big"]], "points": 100}))
    assert body["problems"] == ["No run 'abc' in table 'default'"]
    assert body["groups"][0]["n"] == 1 and len(body["groups"][0]["x"]) <= 100


# -------------------------------------------------------------------- zoom
def points_in(traces, low, high):
    return sum(low <= x <= high for t in traces for x in t["x"])


def test_zooming_brings_the_range_down_to_single_steps(page, base, made):
    page.goto(charts_url(base, run=made["big"]))
    drawn(page, "loss")
    chart = panel(page, "loss").locator(".panel-chart")
    whole = trace_data(page, "loss")
    width = chart.evaluate("el => el.clientWidth")
    assert len(whole) == 1 and len(whole[0]["x"]) <= 2 * width + 2
    assert whole[0]["x"][0] == 0 and whole[0]["x"][-1] == BIG - 1 and max(whole[0]["y"]) == 9.0
    assert legend(page, "loss") == ["the long one"]
    before = points_in(whole, 400_000, 420_000)

    def zoom(low, high):
        chart.evaluate(f"el => Plotly.relayout(el, {{'xaxis.range': [{low}, {high}]}})")
        page.wait_for_function(
            """([low, high]) => { const el = document.querySelector('.panel[data-metric="loss"] .panel-chart');
                 const xs = el.data[0].x; return xs.length && xs[0] >= low && xs[xs.length - 1] <= high; }""",
            arg=[low, high],
        )
        return trace_data(page, "loss")

    zoomed = zoom(400_000, 420_000)
    assert points_in(zoomed, 400_000, 420_000) > 4 * before
    assert len(zoomed[0]["x"]) <= 2 * width + 2
    values = made["values"]
    assert all(values[x] == y for x, y in zip(zoomed[0]["x"], zoomed[0]["y"]))  # real points
    narrow = zoom(500_000, 500_040)
    assert narrow[0]["x"] == list(range(500_000, 500_041))  # every step
    assert narrow[0]["y"] == values[500_000:500_041].tolist()
    expect(panel(page, "loss").locator(".panel-status")).to_have_text("41 of 41 points drawn in this range")
    chart.evaluate("el => Plotly.relayout(el, {'xaxis.autorange': true})")  # a double click
    page.wait_for_function(
        """(last) => { const xs = document.querySelector('.panel[data-metric="loss"] .panel-chart').data[0].x;
                       return xs[0] === 0 && xs[xs.length - 1] === last; }""",
        arg=BIG - 1,
    )


def test_the_range_answer_is_the_min_and_max_of_each_pixel_column(client, made):
    values = made["values"]
    low, high, points = 123_000.5, 345_678.25, 800
    started = time.perf_counter()
    body = ok(
        client.get(
            "/api/curve", params={"run": made["big"], "metric": "loss", "xmin": low, "xmax": high, "points": points}
        )
    )
    print(f"range of {high - low:,.0f} steps of a 1,000,000-point run: {time.perf_counter() - started:.3f} s")
    columns = points // 2
    steps = np.arange(math.ceil(low), math.floor(high) + 1)
    slot = np.minimum(((steps - low) * columns / (high - low)).astype(np.int64), columns - 1)
    assert body["n"] == len(steps) and len(body["x"]) <= points
    xs, ys = np.array(body["x"]), np.array(body["y"])
    assert np.array_equal(values[xs], ys)  # real points
    assert list(xs) == sorted(xs)
    mine = np.minimum(((xs - low) * columns / (high - low)).astype(np.int64), columns - 1)
    for c in range(columns):
        truth = values[steps[slot == c]]
        got = ys[mine == c]
        assert got.min() == truth.min() and got.max() == truth.max(), f"column {c}"
    assert 9.0 in body["y"]  # the spike at 123,457
    few = ok(client.get("/api/curve", params={"run": made["big"], "metric": "loss", "xmin": 10, "xmax": 14.5}))
    assert few["x"] == [10, 11, 12, 13, 14] and few["y"] == values[10:15].tolist() and few["n"] == 5


def test_a_range_on_each_engine(engine_db):
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1, 3000)
    with Tracker(engine_db, params={"model": "rf"}) as run:
        run.log_batch([{"step": s, "loss": float(v)} for s, v in enumerate(values)])
        run.log({"step": 3000, "loss": "diverged"})  # text in a numeric column: left out
        track_id = run.track_id
    app = create_app(lambda table: Reader(engine_db, table=table, persist_summary=False))
    with TestClient(app) as c:
        body = ok(
            c.get("/api/curve", params={"run": track_id, "metric": "loss", "xmin": 0, "xmax": 3000, "points": 100})
        )
        assert body["n"] == 3000 and len(body["x"]) <= 100
        xs, ys = np.array(body["x"]), np.array(body["y"])
        assert np.array_equal(values[xs], ys)
        slot = np.minimum((np.arange(3000) * 50 / 3000).astype(np.int64), 49)
        mine = np.minimum((xs * 50 / 3000).astype(np.int64), 49)
        for col in range(50):
            assert ys[mine == col].min() == values[slot == col].min()
            assert ys[mine == col].max() == values[slot == col].max()
        few = ok(c.get("/api/curve", params={"run": track_id, "metric": "loss", "xmin": 7, "xmax": 9}))
        assert few["x"] == [7, 8, 9] and few["y"] == values[7:10].tolist()
        group = ok(c.get("/api/group_curves", params={"run": track_id, "metric": "loss", "group": "model"}))["groups"]
        assert [(g["label"], g["n"]) for g in group] == [("model=rf", 1)]
        assert group[0]["x"][-1] == 2999 and len(group[0]["x"]) <= 4000  # the text left out
        assert group[0]["mean"] == values[group[0]["x"]].tolist() and set(group[0]["std"]) == {0.0}
        for params, word in [
            ({"xmin": 5}, "both"),
            ({"xmin": 5, "xmax": 5}, "below"),
            ({"xmin": "a", "xmax": 1}, "number"),
        ]:
            response = c.get("/api/curve", params={"run": track_id, "metric": "loss", **params})
            assert response.status_code == 400 and word in response.json()["error"]


# ------------------------------------------------------------ names, markup
def test_an_unknown_run_is_named_in_a_message(page, base, made):
    real = made["ids"][("nn", 0.01, 0)]
    page.goto(charts_url(base, run=["abc", real]))
    expect(page.get_by_role("alert")).to_have_text("No run 'abc' in table 'default'")
    drawn(page, "loss")
    assert legend(page, "loss") == [real]
    page.goto(charts_url(base, run="abc"))
    expect(page.get_by_role("alert")).to_have_text("No run 'abc' in table 'default'")
    assert page.locator(".panel").count() == 0


def test_the_markup_strings_show_as_text(page, base, made):
    page.goto(charts_url(base, run=[XSS, made["named_xss"]]))
    drawn(page, "loss")
    assert legend(page, "loss") == [XSS, XSS]  # the id of one, the name of the other
    assert page.locator("#chart-runs a.run-link").all_inner_texts() == [XSS, XSS]
    page.get_by_label("Group by").select_option(["model"])
    expect(panel(page, "loss").locator(".legendtext")).to_have_text([f"model={XSS} (n=1)", "model=named (n=1)"])
    assert page.locator("main img, .panel image").count() == 0
    # page fixture: no dialog fired and no script broke


# -------------------------------------------------------------------- live
def test_live_points_are_appended_and_thinned(page, base, made):
    page.goto(charts_url(base, run="live-run"))
    drawn(page, "loss")
    status = panel(page, "loss").locator(".panel-status")
    expect(status).to_have_text("10 of 10 points drawn")
    made["live"].log_batch([{"step": s, "loss": math.sin(s / 50)} for s in range(10, 20_010)])
    expect(status).to_have_text(re.compile(r" of 20010 points drawn$"), timeout=20_000)
    width = panel(page, "loss").locator(".panel-chart").evaluate("el => el.clientWidth")
    shown = int(status.inner_text().split()[0])
    assert shown <= 2 * width + 2
    xs = trace_data(page, "loss")[0]["x"]
    assert xs[0] == 0 and xs[-1] == 20_009
    assert any("after=" in u and "/api/curves" in u for u in page.requests)


# ----------------------------------------------------------- speed, plotly
def test_chart_selected_to_a_drawn_chart(page, base, made):
    chosen = group_ids(made, "rf", 0.1)
    page.goto(base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    page.evaluate("() => import('/static/charts.js').then((m) => m.preloadCharts())")
    page.wait_for_function("() => Boolean(window.Plotly)")
    for track_id in chosen:
        page.get_by_label(f"Select run {track_id}").check()
    started = time.perf_counter()
    page.get_by_role("button", name="Chart the selected runs").click()
    page.wait_for_selector('.panel[data-drawn="1"] .scatterlayer .trace')
    elapsed = time.perf_counter() - started
    in_page = int(page.evaluate("() => document.body.dataset.firstPanelMs"))
    print(f"Chart selected -> first panel drawn: {elapsed * 1000:.0f} ms ({in_page} ms after the page's navigation)")
    assert elapsed < 5
    loaded = [u for u in page.requests if "/static/plotly" in u]
    assert loaded and all(re.search(r"/static/plotly-[0-9][^/]*\.min\.js$", u) for u in loaded)


def test_plotly_has_a_versioned_url_kept_a_year(client):
    info = ok(client.get("/api/plotly"))
    response = client.get(info["src"])
    assert response.status_code == 200 and len(response.content) > 1_000_000
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert info["src"] == f"/static/plotly-{info['version']}.min.js"
    assert client.get("/static/plotly-0.0.0.min.js").status_code == 404
    assert "no-store" not in client.get("/static/plotly.min.js").headers.get("cache-control", "")


def test_the_charts_answers_name_the_runs(client, made):
    rf = group_ids(made, "rf", 0.1)
    setup = ok(client.get("/api/charts", params={"run": [rf[0], "abc", made["big"]]}))
    assert [(r["track_id"], r["name"]) for r in setup["runs"]] == [(rf[0], "rf-0.1-s0"), (made["big"], "the long one")]
    assert setup["missing"] == ["abc"] and setup["problems"] == ["No run 'abc' in table 'default'"]
    assert setup["metrics"] == ["loss", "accuracy"] and setup["system"] == ["cpu_percent", "ram_percent"]
    assert "step" not in setup["metrics"] and setup["step"] == "step"
    body = ok(client.get("/api/curves", params={"run": [rf[0], made["big"]], "metric": "loss", "points": 500}))
    assert [(r["name"], r["n"]) for r in body["runs"]] == [("rf-0.1-s0", STEPS), ("the long one", BIG)]
    assert len(body["runs"][1]["x"]) <= 500
