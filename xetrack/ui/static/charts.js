// xetrack dashboard: the charts page.
import { el, text, link, api, setState, runLink, loadPlotly, plotText, every, main, query, POLL_MS } from "./common.js";

// ---------------------------------------------------------------- charts
function smooth(ys, weight) {
  if (!weight) return ys;
  let last = null;
  return ys.map((y) => {
    if (y === null) return y;
    last = last === null ? y : last * weight + (1 - weight) * y;
    return last;
  });
}

export async function chartsPage() {
  const runs = query.getAll("run");
  main.replaceChildren(el("h1", {}, "Charts"));
  if (!runs.length) {
    main.append(el("p", {}, "Select runs on the ", el("a", { href: link("/runs") }, "Runs"), " page to chart them."));
    return;
  }
  const info = await api("/api/columns");
  const plain = (names) => names.filter((m) => !["step", "epoch"].includes(m.toLowerCase()));
  const metrics = plain(info.metrics).length ? plain(info.metrics) : info.numeric;
  const metric = el("select", { id: "metric", "aria-label": "Metric" },
    metrics.map((m) => el("option", { value: m, selected: m === query.get("metric") }, m)));
  const xs = [["", "step or epoch (default)"], ["_wall", "wall time"], ["_relative", "time since start (s)"],
    ...info.numeric.map((c) => [c, c])];
  const xAxis = el("select", { id: "x-axis", "aria-label": "X axis" },
    xs.map(([value, label]) => el("option", { value, selected: value === (query.get("x") || "") }, label)));
  const logScale = el("input", { type: "checkbox", id: "log-scale", checked: query.get("log") === "1" });
  const smoothing = el("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: query.get("smooth") || 0 });
  const csv = el("a", { id: "download-csv", download: "" }, "Download CSV (all points)");
  const status = el("p", { id: "chart-status", class: "muted", "aria-live": "polite" });
  const chart = el("div", { id: "chart", class: "chart", role: "img", "aria-label": "Metric over steps for the selected runs" });
  main.append(
    el("div", { class: "toolbar" },
      el("label", { for: "metric" }, "Metric"), metric,
      el("label", { for: "x-axis" }, "X axis"), xAxis,
      el("label", { for: "log-scale" }, logScale, " log scale"),
      el("label", { for: "smoothing" }, "Smoothing"), smoothing, csv),
    status, chart,
    el("p", {}, "Runs: ", runs.flatMap((id, i) => [i ? ", " : "", runLink(id)])));
  const Plotly = await loadPlotly();
  let series = new Map();
  let xName = "step";

  function draw() {
    const weight = Number(smoothing.value);
    const traces = [...series.values()].map((s) => ({
      type: "scatter", mode: s.x.length > 1 ? "lines" : "markers", name: plotText(s.track_id),
      x: s.x, y: smooth(s.y, weight), hovertemplate: "%{y}<extra>" + plotText(s.track_id) + "</extra>",
    }));
    const layout = {
      margin: { t: 30, r: 20, b: 50, l: 60 }, hovermode: "closest",
      xaxis: { title: { text: plotText(xAxis.value ? xAxis.selectedOptions[0].textContent : xName) } },
      yaxis: { title: { text: plotText(metric.value) }, type: logScale.checked ? "log" : "linear" },
      legend: { orientation: "h" }, showlegend: true,
    };
    Plotly.react(chart, traces, layout, { displaylogo: false, responsive: true });
    const total = [...series.values()].reduce((a, s) => a + s.n, 0);
    const drawn = [...series.values()].reduce((a, s) => a + s.x.length, 0);
    status.textContent = `${drawn} of ${total} points drawn`;
  }

  async function load() {
    setState({ metric: metric.value, x: xAxis.value, log: logScale.checked ? "1" : "", smooth: smoothing.value === "0" ? "" : smoothing.value });
    csv.href = link("/api/curve.csv", { run: runs, metric: metric.value, x: xAxis.value });
    const answers = await Promise.all(runs.map((id) =>
      api("/api/curve", { run: id, metric: metric.value, x: xAxis.value }).catch((e) => ({ track_id: id, error: e.message, x: [], y: [], n: 0, cursor: 0 }))));
    series = new Map(answers.map((a) => [a.track_id, a]));
    xName = (answers.find((a) => !a.error) || { x_name: "step" }).x_name;
    const failed = answers.filter((a) => a.error);
    draw();
    if (failed.length) status.textContent += ` — ${failed[0].error}`;
  }

  for (const input of [metric, xAxis]) input.addEventListener("change", load);
  logScale.addEventListener("change", () => { setState({ log: logScale.checked ? "1" : "" }); draw(); });
  smoothing.addEventListener("input", () => { setState({ smooth: smoothing.value === "0" ? "" : smoothing.value }); draw(); });
  await load();
  // Live: each poll asks only for the points past the cursor of each run.
  every(POLL_MS, async () => {
    let changed = false;
    for (const s of series.values()) {
      if (s.error) continue;
      const fresh = await api("/api/curve", { run: s.track_id, metric: metric.value, x: xAxis.value, after: s.cursor, start: s.n });
      if (fresh.x.length) {
        s.x = s.x.concat(fresh.x); s.y = s.y.concat(fresh.y); s.n += fresh.n; changed = true;
      }
      s.cursor = fresh.cursor;
    }
    if (changed) draw();
  });
}
