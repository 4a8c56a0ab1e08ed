// xetrack dashboard: the charts page, a workspace of panels (one per metric, the
// machine's readings in a System group after the model's metrics) for the runs given as
// ?run= or else the top N runs of the runs page's filter and sort.
// - page-level controls apply to every panel: x axis, log scale, smoothing, Group by
//   (one mean curve per group with a std or min-max band, computed by the server);
// - a panel is drawn when it scrolls into view; past 50 panels, "Show more panels";
// - zooming a panel asks the server for the visible range at the panel's pixel width
//   (lowest and highest point per pixel column), down to single steps; a double click
//   goes back to the whole curve;
// - live runs: each poll brings the points past each run's cursor, appended and thinned
//   the same way (min and max per pixel column), so a live curve stays small.
// preloadCharts() (for the runs page) loads Plotly while the browser is idle.
import { el, link, api, setState, runLink, loadPlotly, plotText, baseLayout, problem, every, main, query, POLL_MS, pageToken, stale } from "./common.js";
import { imagesPanel } from "./images.js";

const PAGE_PANELS = 50;
const MAX_POINTS = 4000; // the server's most points per curve
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"];
const CONFIG = { displaylogo: false, responsive: true };
let stopPolling = null;

// Loads Plotly when the browser is idle (the runs page calls it once its table shows), so
// that "Chart selected" opens on a chart library already fetched and compiled.
export function preloadCharts() {
  const idle = window.requestIdleCallback || ((work) => setTimeout(work, 200));
  return new Promise((resolve) => {
    idle(() => loadPlotly().then(resolve, () => resolve(null)), { timeout: 5000 });
  });
}

function smooth(ys, weight) {
  if (!weight) return ys;
  let last = null;
  return ys.map((y) => {
    if (y === null) return y;
    last = last === null ? y : last * weight + (1 - weight) * y;
    return last;
  });
}

function color(i, alpha) {
  const hex = COLORS[i % COLORS.length];
  if (alpha === undefined) return hex;
  const [r, g, b] = [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
  return `rgba(${r},${g},${b},${alpha})`;
}

// The points of a curve kept on a plot `columns` pixels wide: the lowest and highest
// point of each pixel column (columns of equal x width over the curve's numeric x, else
// of equal counts), first and last kept; a curve of at most 2 * columns points is kept whole.
export function thin(xs, ys, columns) {
  const n = xs.length;
  if (n <= 2 * columns) return [xs, ys];
  const numeric = typeof xs[0] === "number" && typeof xs[n - 1] === "number";
  let lo = Infinity, hi = -Infinity;
  if (numeric) for (const x of xs) { if (x < lo) lo = x; if (x > hi) hi = x; }
  const width = numeric && hi > lo ? (hi - lo) / columns : 0;
  const low = new Map(), high = new Map();
  for (let i = 0; i < n; i++) {
    const y = ys[i];
    if (y === null) continue;
    const c = width ? Math.min(columns - 1, Math.floor((xs[i] - lo) / width)) : Math.floor(i * columns / n);
    if (!low.has(c) || y < ys[low.get(c)]) low.set(c, i);
    if (!high.has(c) || y > ys[high.get(c)]) high.set(c, i);
  }
  const keep = [...new Set([0, n - 1, ...low.values(), ...high.values()])].sort((a, b) => a - b);
  return [keep.map((i) => xs[i]), keep.map((i) => ys[i])];
}

// ------------------------------------------------------------------- page
export async function chartsPage() {
  if (stopPolling) stopPolling();
  const mine = pageToken();
  const plotlyReady = loadPlotly(); // while the page asks for its runs
  plotlyReady.catch(() => {});
  const ids = query.getAll("run");
  const focus = query.get("metric");
  main.replaceChildren(el("h1", {}, "Charts"), el("p", { class: "muted" }, "Loading…"));
  const setup = await api("/api/charts", ids.length ? { run: ids } : { filter: query.get("filter"), sort: query.get("sort"), top: query.get("top") });
  if (stale(mine)) return; // the user went on to another page meanwhile
  const runs = setup.runs;
  const byRuns = ids.length ? { run: ids } : { filter: query.get("filter"), sort: query.get("sort"), top: query.get("top") };

  // ---- controls (page-level: every panel follows them)
  const xs = [["", `${setup.step || "index"} (default)`], ["_wall", "wall time"], ["_relative", "time since start (s)"],
    ...setup.numeric.filter((c) => c !== setup.step).map((c) => [c, c])];
  const xAxis = el("select", { id: "x-axis", "aria-label": "X axis" },
    xs.map(([value, label]) => el("option", { value, selected: value === (query.get("x") || "") }, label)));
  const logScale = el("input", { type: "checkbox", id: "log-scale", checked: query.get("log") === "1" });
  const smoothing = el("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: query.get("smooth") || 0 });
  const chosen = new Set(query.getAll("group"));
  const groupBy = el("select", { id: "group-by", multiple: true, size: Math.min(4, Math.max(2, setup.params.length)), "aria-label": "Group by" },
    setup.params.map((p) => el("option", { value: p, selected: chosen.has(p) }, p)));
  const band = el("select", { id: "band", "aria-label": "Band" },
    [["std", "std"], ["min-max", "min-max"]].map(([value, label]) => el("option", { value, selected: value === (query.get("band") || "std") }, label)));
  const top = ids.length ? null : el("input", { type: "number", id: "top", min: 1, max: 1000, step: 1,
    value: query.get("top") || 10, "aria-label": "Runs shown" });
  const toolbar = el("div", { class: "toolbar" },
    el("label", { for: "x-axis" }, "X axis"), xAxis,
    el("label", { for: "log-scale" }, logScale, " log scale"),
    el("label", { for: "smoothing" }, "Smoothing"), smoothing,
    el("label", { for: "group-by" }, "Group by"), groupBy,
    el("label", { for: "band" }, "Band"), band,
    top ? [el("label", { for: "top" }, "Runs shown"), top] : null);

  // ---- which runs
  const problems = el("div", { id: "chart-problems" }, setup.problems.map((m) => problem(m)));
  const runNames = runs.flatMap((r, i) => [i ? ", " : "", runLink(r.track_id, r.name)]);
  const about = ids.length
    ? el("p", { id: "chart-runs" }, `${runs.length} run${runs.length === 1 ? "" : "s"}: `, runNames)
    : el("p", { id: "chart-runs" }, `The first ${runs.length} of ${setup.total} runs`,
      query.get("filter") ? ` matching ${query.get("filter")}` : "", query.get("sort") ? `, sorted by ${query.get("sort")}` : "",
      runs.length ? ": " : "", runNames, " (", el("a", { href: link("/runs", { filter: query.get("filter"), sort: query.get("sort") }) }, "change on the Runs page"), ")");
  const panelsBox = el("div", { id: "panels", class: "panels", role: "region", "aria-label": "Panels" });
  const more = el("button", { type: "button", id: "more-panels", hidden: true }, "Show more panels");
  main.replaceChildren(el("h1", {}, "Charts"), toolbar, problems, about, panelsBox, more);
  if (!runs.length) {
    if (!setup.problems.length) {
      main.append(el("p", {}, "No runs to chart: select runs on the ", el("a", { href: link("/runs") }, "Runs"), " page."));
    }
    return;
  }
  // only onto this very page: not another one, nor this one drawn again ("Runs shown")
  imagesPanel(runs.map((r) => r.track_id)).then((node) => { if (!stale(mine) && panelsBox.isConnected) main.append(node); }, () => {});

  // ---- panels
  const specs = focus ? [{ metric: focus, group: "" }]
    : [...setup.metrics.map((m) => ({ metric: m, group: "Metrics" })), ...setup.system.map((m) => ({ metric: m, group: "System" }))];
  if (!specs.length) panelsBox.append(el("p", { class: "muted" }, "These runs have no numeric metrics to chart."));
  const panels = [];
  const grids = new Map();
  let shown = 0;
  let first = true;
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      observer.unobserve(entry.target);
      const panel = panels.find((p) => p.box === entry.target);
      if (panel && !panel.loaded) load(panel);
    }
  }, { rootMargin: "200px" });

  const grouping = () => [...groupBy.selectedOptions].map((o) => o.value);
  const xTitle = () => (xAxis.value ? xAxis.selectedOptions[0].textContent : (setup.step || "index"));
  const zoomable = () => !["_wall", "_relative"].includes(xAxis.value) && (xAxis.value || setup.step);
  const widthOf = (panel) => Math.max(50, Math.round(panel.chart.clientWidth || 600));
  const pointsFor = (panel) => Math.max(2, Math.min(MAX_POINTS, 2 * widthOf(panel)));

  function makePanel(spec) {
    const metric = spec.metric;
    const chart = el("div", { class: "panel-chart", role: "img", id: focus ? "chart" : null,
      "aria-label": `${metric} over ${xTitle()} for ${runs.length} run${runs.length === 1 ? "" : "s"}` });
    const status = el("span", { class: "panel-status muted", id: focus ? "chart-status" : null, "aria-live": "polite" });
    const csv = el("a", { class: "panel-csv", id: focus ? "download-csv" : null, download: "", "aria-label": `Download ${metric} CSV`,
      href: link("/api/curve.csv", { run: runs.map((r) => r.track_id), metric, x: xAxis.value }) }, "CSV");
    const expand = el("button", { type: "button", class: "panel-expand", "aria-label": `Expand ${metric}`, "aria-pressed": focus ? "true" : "false" }, "⤢");
    const box = el("figure", { class: focus ? "panel wide" : "panel", "data-metric": metric },
      el("figcaption", { class: "panel-head" }, el("h3", {}, metric), status, csv, expand), chart);
    const panel = { metric, box, chart, status, csv, loaded: false, series: null, groups: null, view: null, loadToken: 0, zoomToken: 0, wired: false };
    expand.addEventListener("click", () => {
      const wide = box.classList.toggle("wide");
      expand.setAttribute("aria-pressed", wide ? "true" : "false");
      if (panel.loaded && window.Plotly) window.Plotly.Plots.resize(chart);
    });
    return panel;
  }

  function showPanels(count) {
    for (const spec of specs.slice(shown, count)) {
      if (!grids.has(spec.group)) {
        const grid = el("div", { class: "panel-grid" });
        const section = el("section", { class: "panel-group", "data-group": spec.group, "aria-label": spec.group || spec.metric },
          spec.group ? el("h2", {}, spec.group) : null, grid);
        grids.set(spec.group, grid);
        panelsBox.append(section);
      }
      const panel = makePanel(spec);
      panels.push(panel);
      grids.get(spec.group).append(panel.box);
      observer.observe(panel.box);
    }
    shown = Math.min(count, specs.length);
    more.hidden = shown >= specs.length;
    more.textContent = `Show more panels (${specs.length - shown} more)`;
    more.setAttribute("aria-label", "Show more panels");
  }
  more.addEventListener("click", () => showPanels(shown + PAGE_PANELS));
  showPanels(PAGE_PANELS);

  // ---- data
  async function load(panel) {
    const token = ++panel.loadToken;
    panel.zoomToken++; // a zoom answer still on its way belongs to the data replaced here
    panel.loaded = true;
    panel.view = null;
    const by = grouping();
    const ask = { ...byRuns, metric: panel.metric, x: xAxis.value, points: pointsFor(panel) };
    try {
      if (by.length) {
        const body = await api("/api/group_curves", { ...ask, group: by, band: band.value });
        if (token !== panel.loadToken) return;
        panel.groups = body.groups; panel.series = null;
      } else {
        const body = await api("/api/curves", ask);
        if (token !== panel.loadToken) return;
        panel.series = body.runs; panel.groups = null;
      }
      panel.error = null;
    } catch (e) {
      if (token !== panel.loadToken) return;
      panel.error = e.message; panel.series = []; panel.groups = null;
    }
    await draw(panel);
  }

  function runTraces(panel, weight) {
    const detail = panel.view && panel.view.series ? new Map(panel.view.series.map((s) => [s.track_id, s])) : null;
    return panel.series.map((s, i) => {
      const shownAs = plotText(s.name || s.track_id);
      const data = detail && detail.has(s.track_id) ? detail.get(s.track_id) : s;
      return { type: "scatter", mode: data.x.length > 1 ? "lines" : "markers", name: shownAs, legendgroup: s.track_id,
        x: data.x, y: smooth(data.y, weight), line: { color: color(i), width: 1.5 }, marker: { color: color(i) },
        hovertemplate: `%{x}: %{y}<extra>${shownAs}</extra>` };
    });
  }

  function groupTraces(panel, weight) {
    const groups = panel.view && panel.view.groups ? panel.view.groups : panel.groups;
    return groups.flatMap((g, i) => {
      const name = plotText(`${g.label} (n=${g.n})`);
      const common = { type: "scatter", mode: "lines", x: g.x, legendgroup: `g${i}`, hoverinfo: "skip", showlegend: false, line: { width: 0 } };
      return [
        { ...common, y: g.lower, name: `${name} lower` },
        { ...common, y: g.upper, name: `${name} upper`, fill: "tonexty", fillcolor: color(i, 0.2) },
        { type: "scatter", mode: g.x.length > 1 ? "lines" : "markers", name, legendgroup: `g${i}`, x: g.x, y: smooth(g.mean, weight),
          line: { color: color(i), width: 2 }, marker: { color: color(i) }, customdata: g.count,
          hovertemplate: `%{x}: %{y} (%{customdata} runs)<extra>${name}</extra>` },
      ];
    });
  }

  async function draw(panel) {
    let Plotly;
    try { Plotly = await plotlyReady; } catch (e) { panel.status.textContent = e.message; return; }
    const weight = Number(smoothing.value);
    const traces = panel.groups ? groupTraces(panel, weight) : runTraces(panel, weight);
    const xaxis = { title: { text: plotText(xTitle()) }, automargin: true };
    const yaxis = { type: logScale.checked ? "log" : "linear", automargin: true };
    if (panel.view) {
      xaxis.range = [panel.view.lo, panel.view.hi]; xaxis.autorange = false;
      if (panel.view.ylo !== undefined) { yaxis.range = [panel.view.ylo, panel.view.yhi]; yaxis.autorange = false; }
    }
    const layout = baseLayout({
      margin: { t: 10, r: 10, b: 40, l: 55 }, hovermode: "closest", showlegend: true, xaxis, yaxis,
      // Above the plot: the legend never covers the x axis's title.
      legend: { orientation: "h", x: 0, xanchor: "left", y: 1.02, yanchor: "bottom" },
    });
    await Plotly.react(panel.chart, traces, layout, CONFIG);
    if (!panel.wired) {
      panel.chart.on("plotly_relayout", (event) => zoomed(panel, event));
      panel.wired = true;
    }
    panel.status.classList.toggle("error", Boolean(panel.error));
    if (panel.error) panel.status.textContent = panel.error;
    else if (panel.groups) panel.status.textContent = `${panel.groups.length} group${panel.groups.length === 1 ? "" : "s"}`;
    else {
      const data = panel.view && panel.view.series ? panel.view.series : panel.series;
      const total = data.reduce((a, s) => a + s.n, 0);
      const drawn = data.reduce((a, s) => a + s.x.length, 0);
      panel.status.textContent = `${drawn} of ${total} points drawn${panel.view && panel.view.series ? " in this range" : ""}`;
    }
    panel.box.dataset.drawn = "1";
    if (first) {
      first = false;
      document.body.dataset.firstPanelMs = String(Math.round(performance.now()));
    }
  }

  // ---- zoom: the visible range, from the server, at the panel's pixel width
  async function zoomed(panel, event) {
    let lo, hi;
    if ("xaxis.range[0]" in event) [lo, hi] = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
    else if (Array.isArray(event["xaxis.range"])) [lo, hi] = event["xaxis.range"];
    else if (event["xaxis.autorange"]) {
      panel.zoomToken++;
      if (panel.view) { panel.view = null; await draw(panel); }
      return;
    } else return;
    if (panel.view && panel.view.lo === lo && panel.view.hi === hi) return; // our own redraw
    const token = ++panel.zoomToken;
    const view = { lo, hi };
    if ("yaxis.range[0]" in event) [view.ylo, view.yhi] = [event["yaxis.range[0]"], event["yaxis.range[1]"]];
    if (zoomable() && typeof lo === "number" && typeof hi === "number" && lo < hi) {
      const ask = { ...byRuns, metric: panel.metric, x: xAxis.value, points: pointsFor(panel), xmin: lo, xmax: hi };
      try {
        if (panel.groups) view.groups = (await api("/api/group_curves", { ...ask, group: grouping(), band: band.value })).groups;
        else view.series = (await api("/api/curves", ask)).runs;
      } catch (e) {
        panel.status.textContent = e.message;
      }
    }
    if (token !== panel.zoomToken) return; // a newer zoom came meanwhile
    panel.view = view;
    await draw(panel);
  }

  // ---- controls
  const reloadAll = () => {
    for (const panel of panels) {
      panel.chart.setAttribute("aria-label", `${panel.metric} over ${xTitle()} for ${runs.length} run${runs.length === 1 ? "" : "s"}`);
      panel.csv.href = link("/api/curve.csv", { run: runs.map((r) => r.track_id), metric: panel.metric, x: xAxis.value });
      if (panel.loaded) load(panel);
    }
  };
  const redrawAll = () => { for (const panel of panels) if (panel.loaded && (panel.series || panel.groups)) draw(panel); };
  xAxis.addEventListener("change", () => { setState({ x: xAxis.value }); reloadAll(); });
  groupBy.addEventListener("change", () => { setState({ group: grouping() }); reloadAll(); });
  band.addEventListener("change", () => { setState({ band: band.value === "std" ? "" : band.value }); if (grouping().length) reloadAll(); });
  logScale.addEventListener("change", () => {
    setState({ log: logScale.checked ? "1" : "" });
    for (const panel of panels) if (panel.view) { delete panel.view.ylo; delete panel.view.yhi; } // in the other scale's units
    redrawAll();
  });
  // drawn while dragged, put in the address once let go (browsers limit replaceState's rate)
  smoothing.addEventListener("input", redrawAll);
  smoothing.addEventListener("change", () => setState({ smooth: smoothing.value === "0" ? "" : smoothing.value }));
  if (top) {
    top.addEventListener("change", () => {
      const n = Math.max(1, Math.min(1000, Math.round(Number(top.value) || 10)));
      setState({ top: n === 10 ? "" : n });
      chartsPage().catch((e) => main.replaceChildren(problem(e.message)));
    });
  }

  // ---- live: the points past each running run's cursor, appended, then thinned
  const running = new Set(runs.filter((r) => r.status === "running").map((r) => r.track_id));
  if (!running.size || stale(mine) || !panelsBox.isConnected) return;
  let ticks = 0;
  stopPolling = every(POLL_MS, async () => {
    if (++ticks % 5 === 0) { // now and then: which of the runs still run; none left, no more polls
      const now = await api("/api/charts", { run: [...running] });
      for (const r of now.runs) if (r.status !== "running") running.delete(r.track_id);
      if (!running.size) { stopPolling(); return; }
    }
    for (const panel of panels) {
      if (!panel.loaded || !panel.series || panel.groups || panel.error) continue;
      const live = panel.series.filter((s) => running.has(s.track_id));
      if (!live.length) continue;
      const fresh = await api("/api/curves", { run: live.map((s) => s.track_id), metric: panel.metric, x: xAxis.value,
        after: live.map((s) => s.cursor), start: live.map((s) => s.n), points: pointsFor(panel) });
      let changed = false;
      fresh.runs.forEach((f, i) => {
        const s = live[i];
        if (f.x.length) {
          [s.x, s.y] = thin(s.x.concat(f.x), s.y.concat(f.y), widthOf(panel));
          s.n += f.n; changed = true;
        }
        s.cursor = f.cursor;
      });
      if (changed && !panel.view) await draw(panel);
    }
  });
}
