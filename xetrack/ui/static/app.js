// xetrack dashboard: plain JS, no build step. Every logged string goes into the page as
// text (textContent, attribute values, text nodes), never as HTML.
"use strict";

const BASE_FIELDS = ["track_id", "status", "start", "end", "duration", "events"];
const POLL_MS = 2000;
const main = document.getElementById("main");
const query = new URLSearchParams(location.search);
const table = query.get("table") || "";

// ---------------------------------------------------------------- helpers
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function text(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number" && !Number.isInteger(value)) return String(Number(value.toPrecision(6)));
  return String(value);
}

function link(path, params) {
  const q = new URLSearchParams();
  if (table) q.set("table", table);
  for (const [key, value] of Object.entries(params || {})) {
    if (Array.isArray(value)) value.forEach((v) => q.append(key, v));
    else if (value !== null && value !== undefined && value !== "") q.set(key, value);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function api(path, params) {
  const response = await fetch(link(path, params), { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function setState(params) {
  for (const [key, value] of Object.entries(params)) {
    query.delete(key);
    if (Array.isArray(value)) value.forEach((v) => query.append(key, v));
    else if (value !== null && value !== undefined && value !== "" && value !== 0) query.set(key, value);
  }
  history.replaceState(null, "", `${location.pathname}?${query.toString()}`);
  updateNav();
}

function updateNav() {
  const runs = query.getAll("run");
  document.getElementById("nav-home").href = link("/");
  document.getElementById("nav-runs").href = link("/runs", { run: runs });
  document.getElementById("nav-charts").href = link("/charts", { run: runs });
  document.getElementById("nav-compare").href = link("/compare", { run: runs });
  document.getElementById("nav-models").href = link("/models");
  for (const a of document.querySelectorAll("header nav a")) {
    if (new URL(a.href).pathname === location.pathname) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function statusBadge(status) {
  if (!status) return el("span", { class: "muted" }, "—");
  return el("span", { class: `status status-${status}`, "data-status": status }, status);
}

function runLink(id) {
  return el("a", { href: link("/run", { run: id }), target: "_blank", rel: "noopener", class: "run-link" }, id);
}

function cell(column, value) {
  if (column === "status") return el("td", {}, statusBadge(value));
  if (column === "track_id") return el("td", {}, runLink(value));
  return el("td", { class: typeof value === "number" ? "num" : null, title: text(value) }, text(value));
}

function frameTable(frame, options) {
  const opts = options || {};
  const head = el("tr", {}, frame.columns.map((c) => el("th", { scope: "col" }, c)));
  const body = el("tbody", {}, frame.rows.map((row) => el("tr", {}, row.map((v, i) =>
    opts.links && frame.columns[i] === "track_id" && v ? el("td", {}, runLink(v)) : cell(frame.columns[i] === "track_id" ? "" : frame.columns[i], v)))));
  return el("div", { class: "table-wrap" }, el("table", { id: opts.id || null, "aria-label": opts.label || null }, el("thead", {}, head), body));
}

function problem(message) {
  return el("p", { class: "error", role: "alert" }, message);
}

let plotlyLoading = null;
function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = el("script", { src: "/static/plotly.min.js" });
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("Could not load the chart library"));
      document.head.append(script);
    });
  }
  return plotlyLoading;
}

// Plotly reads a few HTML-like tags in names; entities make every logged name plain text.
function plotText(value) {
  return text(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function every(ms, work) {
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try { await work(); } catch (e) { /* the next tick tries again */ }
    }
    setTimeout(tick, ms);
  };
  setTimeout(tick, ms);
  return () => { stopped = true; };
}

// ------------------------------------------------------------ experiments
async function experimentsPage() {
  const body = await api("/api/tables");
  document.getElementById("db-name").textContent = body.db;
  const rows = body.tables.map((t) => el("tr", {},
    el("td", {}, el("a", { href: `/runs?table=${encodeURIComponent(t.table)}` }, t.table)),
    el("td", { class: "num" }, text(t.rows)), el("td", { class: "num" }, text(t.runs)), el("td", {}, text(t.last))));
  main.replaceChildren(
    el("h1", {}, "Experiments"),
    el("div", { class: "table-wrap" }, el("table", { id: "tables", "aria-label": "Experiment tables" },
      el("thead", {}, el("tr", {}, ["Table", "Rows", "Runs", "Last written"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows))));
}

// ------------------------------------------------------------------ runs
async function runsPage() {
  const selected = new Set(query.getAll("run"));
  const filter = el("input", { type: "search", id: "filter", name: "filter", "aria-label": "Filter runs",
    placeholder: "metrics.accuracy > 0.9 and params.model = 'rf'", value: query.get("filter") || "" });
  const errorLine = el("p", { id: "filter-error", class: "error", role: "alert", "aria-live": "polite" });
  const count = el("p", { id: "run-count", "aria-live": "polite" });
  const chooser = el("details", { class: "columns" }, el("summary", {}, "Columns"));
  const tableBox = el("div", { class: "table-wrap" });
  const pager = el("div", { class: "pager" });
  const selection = el("span", { id: "selection-count", class: "muted" });
  const chartButton = el("button", { type: "button", id: "chart-selected", "aria-label": "Chart the selected runs",
    onclick: () => { location.href = link("/charts", { run: [...selected] }); } }, "Chart selected");
  const compareButton = el("button", { type: "button", id: "compare-selected", "aria-label": "Compare the selected runs",
    onclick: () => { location.href = link("/compare", { run: [...selected], filter: query.get("filter") }); } }, "Compare selected");
  const apply = () => { setState({ filter: filter.value.trim(), page: 0 }); load(); };
  filter.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); apply(); }
    if (event.key === "Escape") { event.preventDefault(); filter.value = ""; apply(); }
  });
  main.replaceChildren(
    el("h1", {}, `Runs${table ? ` of ${table}` : ""}`),
    el("div", { class: "toolbar", role: "search" },
      el("label", { for: "filter" }, "Filter"), filter,
      el("button", { type: "button", id: "apply-filter", "aria-label": "Apply the filter", onclick: apply }, "Apply"),
      el("button", { type: "button", id: "clear-filter", "aria-label": "Clear the filter",
        onclick: () => { filter.value = ""; apply(); } }, "Clear")),
    errorLine, chooser,
    el("div", { class: "toolbar" }, count, chartButton, compareButton, selection),
    tableBox, pager);

  function updateSelection() {
    selection.textContent = `${selected.size} selected`;
    chartButton.disabled = selected.size === 0;
    compareButton.disabled = selected.size < 2;
    setState({ run: [...selected] });
  }

  async function load() {
    const sort = query.get("sort") || "";
    const page = Number(query.get("page") || 0);
    const columns = query.get("columns") || "";
    let body;
    try {
      body = await api("/api/runs", { filter: query.get("filter"), sort, page, size: 100, columns });
      errorLine.textContent = "";
    } catch (e) {
      errorLine.textContent = e.message;
      return;
    }
    count.textContent = `${body.total} run${body.total === 1 ? "" : "s"}`;
    const shown = new Set(columns ? columns.split(",") : body.all_columns);
    chooser.replaceChildren(el("summary", {}, "Columns"), ...body.all_columns.filter((c) => c !== "track_id").map((c) => {
      const box = el("input", { type: "checkbox", checked: shown.has(c), "aria-label": `Show column ${c}` });
      box.addEventListener("change", () => {
        const keep = body.all_columns.filter((name) => name === c ? box.checked : (name === "track_id" || shown.has(name)));
        setState({ columns: keep.length === body.all_columns.length ? "" : keep.join(",") });
        load();
      });
      return el("label", {}, box, ` ${c}`);
    }));
    const header = el("tr", {}, el("th", { scope: "col" }, el("span", { class: "muted" }, "✓")), body.columns.map((c) => {
      const current = sort === c ? "ascending" : sort === `-${c}` ? "descending" : "none";
      const arrow = current === "ascending" ? " ▲" : current === "descending" ? " ▼" : "";
      return el("th", { scope: "col", "aria-sort": current },
        el("button", { type: "button", class: "sort", "data-column": c, "aria-label": `Sort by ${c}`,
          onclick: () => { setState({ sort: current === "ascending" ? `-${c}` : c, page: 0 }); load(); } }, c + arrow));
    }));
    const idAt = body.columns.indexOf("track_id");
    const rows = body.rows.map((row) => {
      const id = row[idAt];
      const box = el("input", { type: "checkbox", class: "select-run", checked: selected.has(id), "aria-label": `Select run ${id}` });
      box.addEventListener("change", () => { box.checked ? selected.add(id) : selected.delete(id); updateSelection(); });
      return el("tr", { "data-run": id }, el("td", {}, box), row.map((v, i) => cell(body.columns[i], v)));
    });
    tableBox.replaceChildren(el("table", { id: "runs", "aria-label": "Runs" }, el("thead", {}, header), el("tbody", {}, rows)));
    const pages = Math.max(1, Math.ceil(body.total / body.size));
    pager.replaceChildren(
      el("button", { type: "button", "aria-label": "Previous page", disabled: page <= 0,
        onclick: () => { setState({ page: page - 1 }); load(); } }, "‹ Prev"),
      el("span", {}, `page ${page + 1} of ${pages}`),
      el("button", { type: "button", "aria-label": "Next page", disabled: page + 1 >= pages,
        onclick: () => { setState({ page: page + 1 }); load(); } }, "Next ›"));
  }
  updateSelection();
  await load();
  // While a run on this page is running, its status, events and last metrics follow.
  every(5 * POLL_MS / 2, async () => {
    if (tableBox.querySelector('[data-status="running"]')) await load();
  });
}

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

async function chartsPage() {
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

// --------------------------------------------------------------- compare
async function comparePage() {
  const runs = query.getAll("run");
  main.replaceChildren(el("h1", {}, "Compare"));
  if (runs.length < 1) {
    main.append(el("p", {}, "Select runs on the ", el("a", { href: link("/runs") }, "Runs"), " page to compare them."));
  } else {
    const body = await api("/api/compare", { run: runs });
    const onlyDiff = el("input", { type: "checkbox", id: "only-diff", checked: query.get("diff") === "1" });
    const box = el("div", { class: "table-wrap" });
    const render = () => {
      const fields = body.fields.filter((f) => !onlyDiff.checked || f.differs);
      box.replaceChildren(el("table", { id: "compare", "aria-label": "Runs side by side" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "field"), body.runs.map((id) => el("th", { scope: "col" }, runLink(id))))),
        el("tbody", {}, fields.map((f) => el("tr", { class: f.differs ? "diff" : null, "data-field": f.field },
          el("th", { scope: "row" }, f.differs ? `${f.field} ≠` : f.field),
          f.values.map((v) => el("td", { class: typeof v === "number" ? "num" : null }, f.field === "status" ? statusBadge(v) : text(v))))))));
    };
    onlyDiff.addEventListener("change", () => { setState({ diff: onlyDiff.checked ? "1" : "" }); render(); });
    main.append(el("label", { for: "only-diff" }, onlyDiff, " only the fields that differ"), box);
    render();
  }
  // Scatter of any field against another, over the runs of the filter.
  const info = await api("/api/runs", { size: 1, filter: query.get("filter") });
  const fields = info.all_columns.filter((c) => c !== "track_id");
  const pick = (id, label, chosen) => el("select", { id, "aria-label": label },
    fields.map((f) => el("option", { value: f, selected: f === chosen }, f)));
  const columns = await api("/api/columns");
  const firstOf = (names, fallback) => names.find((n) => fields.includes(n) && !["step", "epoch"].includes(n.toLowerCase())) || fallback;
  const x = pick("scatter-x", "Scatter x", query.get("sx") || firstOf(columns.params, fields[0]));
  const y = pick("scatter-y", "Scatter y", query.get("sy") || firstOf(columns.metrics, fields[fields.length - 1]));
  const plot = el("div", { id: "scatter", class: "chart", role: "img", "aria-label": "Scatter of two fields across the filtered runs" });
  const note = el("p", { class: "error", role: "alert" });
  main.append(el("h2", {}, "Across the filtered runs"),
    el("div", { class: "toolbar" }, el("label", { for: "scatter-x" }, "x"), x, el("label", { for: "scatter-y" }, "y"), y,
      el("span", { class: "muted" }, query.get("filter") ? `filter: ${query.get("filter")}` : "all runs")), note, plot);
  const Plotly = await loadPlotly();
  const draw = async () => {
    setState({ sx: x.value, sy: y.value });
    try {
      const s = await api("/api/scatter", { x: x.value, y: y.value, filter: query.get("filter") });
      note.textContent = "";
      Plotly.react(plot, [{ type: "scatter", mode: "markers", x: s.x, y: s.y, text: s.track_id.map(plotText),
        hovertemplate: "%{text}<br>%{x}, %{y}<extra></extra>",
        marker: { color: s.track_id.map((id) => runs.includes(id) ? "#c62828" : "#2457c5"), size: 8 } }],
      { margin: { t: 20, r: 20, b: 50, l: 60 }, xaxis: { title: { text: plotText(x.value) } }, yaxis: { title: { text: plotText(y.value) } } },
      { displaylogo: false, responsive: true });
    } catch (e) { note.textContent = e.message; }
  };
  x.addEventListener("change", draw);
  y.addEventListener("change", draw);
  await draw();
}

// --------------------------------------------------------------- one run
async function runPage() {
  const id = query.get("run");
  if (!id) { main.replaceChildren(problem("No run given: open a run from the Runs page.")); return; }
  let info = await api("/api/run", { run: id });
  const badge = el("span", { id: "run-status" }, statusBadge(info.run.status));
  const errorBox = el("div", { id: "run-error" });
  const showError = () => errorBox.replaceChildren(...(info.error ? [el("h2", {}, "Error"), el("pre", { class: "error-text" }, info.error)] : []));
  const pairs = (obj, label, tableId) => el("div", {}, el("h2", {}, label), el("div", { class: "table-wrap" },
    el("table", { id: tableId, "aria-label": label }, el("tbody", {}, Object.entries(obj).map(([k, v]) =>
      el("tr", {}, el("th", { scope: "row" }, k), el("td", { class: typeof v === "number" ? "num" : null }, text(v))))))));
  const about = { ...Object.fromEntries(["start", "end", "duration", "events"].map((k) => [k, info.run[k]])), ...(info.trace || {}) };
  const artifacts = el("div", { id: "artifacts" });
  const art = info.artifacts;
  const at = (row, name) => row[art.columns.indexOf(name)];
  if (!art.rows.length) artifacts.append(el("p", { class: "muted" }, "No artifacts."));
  for (const row of art.rows) {
    const name = at(row, "name"), hash = at(row, "hash");
    const url = link("/api/artifact", { run: id, hash });
    const entry = el("div", { class: "artifact", "data-name": name },
      el("a", { href: url, download: name.split("/").pop(), class: "artifact-download", "aria-label": `Download ${name}` }, name),
      el("span", { class: "muted" }, ` ${text(at(row, "type"))} · ${text(at(row, "size"))} bytes · ${hash}`));
    const lower = name.toLowerCase();
    if (lower.endsWith(".png")) entry.append(el("img", { class: "figure", src: link("/api/artifact", { run: id, hash, inline: 1 }), alt: name }));
    if (lower.endsWith(".csv") || lower.endsWith(".parquet")) {
      const holder = el("div");
      entry.append(" ", el("button", { type: "button", "aria-label": `Preview ${name}`, onclick: async () => {
        try {
          const frame = await api("/api/artifact/preview", { run: id, hash });
          holder.replaceChildren(el("p", { class: "muted" }, `${frame.total} rows`), frameTable(frame, { label: `Preview of ${name}` }));
        } catch (e) { holder.replaceChildren(problem(e.message)); }
      } }, "Preview"), holder);
    }
    artifacts.append(entry);
  }
  const rowsBox = el("div", { class: "table-wrap" });
  const rowsPager = el("div", { class: "pager" });
  const rowCount = el("p", { id: "row-count", "aria-live": "polite" });
  main.replaceChildren(
    el("h1", {}, "Run ", el("span", { id: "run-id" }, id), " ", badge),
    el("p", {}, el("a", { href: link("/charts", { run: [id] }) }, "Chart this run")),
    errorBox,
    el("div", { class: "grid" }, pairs(info.params, "Params", "params"), pairs(info.metrics, "Last metrics", "metrics"), pairs(about, "Run", "about")),
    el("h2", {}, "Artifacts"), artifacts,
    el("h2", {}, "Models"), info.models.rows.length ? frameTable(info.models, { label: "Models of this run" }) : el("p", { class: "muted" }, "No models."),
    el("h2", {}, "Rows"), rowCount, rowsBox, rowsPager);
  showError();

  const size = 100;
  let page = Number(query.get("page") || 0), total = 0, cursor = 0, columns = [], tbody = null;
  const render = (body) => {
    columns = body.columns;
    tbody = el("tbody", {}, body.rows.map((r) => el("tr", {}, r.map((v, i) => cell(columns[i] === "track_id" ? "" : columns[i], v)))));
    rowsBox.replaceChildren(el("table", { id: "rows", "aria-label": "Rows of this run" },
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c)))), tbody));
  };
  const pagerView = () => {
    const pages = Math.max(1, Math.ceil(total / size));
    rowCount.textContent = `${total} row${total === 1 ? "" : "s"}`;
    rowsPager.replaceChildren(
      el("button", { type: "button", "aria-label": "Previous rows", disabled: page <= 0, onclick: () => loadRows(page - 1) }, "‹ Prev"),
      el("span", {}, `page ${page + 1} of ${pages}`),
      el("button", { type: "button", "aria-label": "Next rows", disabled: page + 1 >= pages, onclick: () => loadRows(page + 1) }, "Next ›"));
  };
  async function loadRows(number) {
    page = number;
    setState({ page });
    const body = await api("/api/rows", { run: id, page, size });
    total = body.total;
    cursor = body.cursor;
    render(body);
    pagerView();
  }
  await loadRows(page);
  // Live: only the rows past the cursor; the status too while the run is running.
  let polls = 0;
  every(POLL_MS, async () => {
    const fresh = await api("/api/rows", { run: id, after: cursor, size: 1000 });
    cursor = fresh.cursor;
    polls += 1;
    if (fresh.rows.length) {
      total += fresh.rows.length;
      const onLast = (page + 1) * size >= total - fresh.rows.length;
      if (onLast && fresh.columns.join() === columns.join()) {
        for (const r of fresh.rows.slice(0, (page + 1) * size - (total - fresh.rows.length))) {
          tbody.append(el("tr", {}, r.map((v, i) => cell(columns[i] === "track_id" ? "" : columns[i], v))));
        }
        pagerView();
      } else if (onLast) {
        await loadRows(page);  // a new column: draw the page again
      } else {
        pagerView();
      }
    }
    // The status: after new rows, and every 5th poll while running (a dead run logs nothing).
    if (fresh.rows.length || (info.run.status === "running" && polls % 5 === 0)) {
      info = await api("/api/run", { run: id });
      badge.replaceChildren(statusBadge(info.run.status));
      showError();
    }
  });
}

// ----------------------------------------------------------------- models
async function modelsPage() {
  const body = await api("/api/models");
  main.replaceChildren(el("h1", {}, "Models"),
    body.rows.length ? frameTable(body, { id: "models", label: "Registered models", links: true }) : el("p", { class: "muted" }, "No registered models."));
}

const PAGES = { "/": experimentsPage, "/runs": runsPage, "/run": runPage, "/charts": chartsPage, "/compare": comparePage, "/models": modelsPage };

updateNav();
(PAGES[location.pathname] || experimentsPage)().catch((e) => main.replaceChildren(problem(e.message)));
