// xetrack dashboard: one run's page (params, metrics, artifacts, models, its rows, live).
import { el, text, link, api, setState, statusBadge, cell, frameTable, problem, every, loadPlotly, plotText, baseLayout, main, query, POLL_MS, pageToken, stale } from "./common.js";
import { imagesPanel } from "./images.js";

// --------------------------------------------------------------- one run
// Columns of the machine's readings: 0.7.0's per-row readings and the background sampler's.
const SYSTEM = new Set(["cpu_percent", "ram_percent", "p_memory_percent", "disk_percent", "bytes_sent", "bytes_recv"]);
export const isSystem = (name) => SYSTEM.has(name) || name.startsWith("system_");
const STEPS = new Set(["step", "epoch"]);
// A run's description: MLflow's note tag (``mlflow.start_run(description=...)``) or a tag "description".
const DESCRIPTION_TAGS = ["tags.mlflow.note.content", "tags.description"];
const INLINE = [".png", ".jpg", ".jpeg", ".gif", ".webp"];

export async function runPage() {
  const mine = pageToken();
  const id = query.get("run");
  if (!id) { main.replaceChildren(problem("No run given: open a run from the Runs page.")); return; }
  let info;
  try {
    info = await api("/api/run", { run: id });
  } catch (e) {
    if (!stale(mine)) main.replaceChildren(el("h1", {}, "Run ", el("span", { id: "run-id" }, id)), problem(e.message));
    return;
  }
  if (stale(mine)) return; // the user went on to another page meanwhile
  const badge = el("span", { id: "run-status" }, statusBadge(info.run.status));
  const errorBox = el("div", { id: "run-error" });
  const showError = () => errorBox.replaceChildren(...(info.error ? [el("h2", {}, "Error"), el("pre", { class: "error-text" }, info.error)] : []));
  const pairs = (obj, label, tableId, empty) => el("div", {}, el("h2", {}, label), Object.keys(obj).length ? el("div", { class: "table-wrap" },
    el("table", { id: tableId, "aria-label": label }, el("tbody", {}, Object.entries(obj).map(([k, v]) =>
      el("tr", {}, el("th", { scope: "row" }, k), el("td", { class: typeof v === "number" ? "num" : null }, text(v))))))) : el("p", { class: "muted" }, empty));
  const about = { ...Object.fromEntries(["start", "end", "duration", "events"].map((k) => [k, info.run[k]])), ...(info.trace || {}) };
  const present = (v) => v !== null && v !== undefined;
  const system = Object.keys(info.run).filter((k) => isSystem(k) && present(info.run[k]));
  const keep = (obj) => Object.fromEntries(Object.entries(obj).filter(([k]) => !isSystem(k) && !STEPS.has(k.toLowerCase())));
  const descriptionKey = DESCRIPTION_TAGS.find((k) => present(info.run[k]));
  const tags = Object.fromEntries(Object.entries(info.run)
    .filter(([k, v]) => k.startsWith("tags.") && present(v) && k !== descriptionKey).map(([k, v]) => [k.slice(5), v]));
  const name = info.run.run_name;
  const heading = present(name) && name !== ""
    ? el("h1", {}, el("span", { id: "run-name" }, name), " ", el("span", { id: "run-id", class: "muted run-id", title: "track_id" }, id), " ", badge)
    : el("h1", {}, "Run ", el("span", { id: "run-id" }, id), " ", badge);
  const artifacts = el("div", { id: "artifacts" });
  const art = info.artifacts;
  const at = (row, column) => (art.columns.includes(column) ? row[art.columns.indexOf(column)] : null);
  if (!art.rows.length) artifacts.append(el("p", { class: "muted" }, "No artifacts."));
  for (const row of art.rows) {
    const name = at(row, "name"), hash = at(row, "hash"), step = at(row, "step");
    const url = link("/api/artifact", { run: id, hash });
    const entry = el("div", { class: "artifact", "data-name": name },
      el("a", { href: url, download: name.split("/").pop(), class: "artifact-download", "aria-label": `Download ${name}${present(step) ? ` (step ${step})` : ""}` }, name),
      el("span", { class: "muted" }, ` ${present(step) ? `step ${step} · ` : ""}${text(at(row, "type"))} · ${text(at(row, "size"))} bytes · ${hash}`));
    const lower = name.toLowerCase();
    // Images logged with a step show in "Images by step" below; the others here.
    if (!present(step) && INLINE.some((ext) => lower.endsWith(ext))) {
      entry.append(el("img", { class: "figure", src: link("/api/artifact", { run: id, hash, inline: 1 }), alt: name }));
    }
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
  const systemBox = el("section", { id: "system-metrics", "aria-label": "System metrics" });
  const images = await imagesPanel([id]);
  if (stale(mine)) return;
  const rowsBox = el("div", { class: "table-wrap" });
  const rowsPager = el("div", { class: "pager" });
  const rowCount = el("p", { id: "row-count", "aria-live": "polite" });
  main.replaceChildren(
    heading,
    present(info.run[descriptionKey]) ? el("p", { id: "run-description", class: "description" }, info.run[descriptionKey]) : "",
    el("p", {}, el("a", { href: link("/charts", { run: [id] }) }, "Chart this run")),
    errorBox,
    el("div", { class: "grid" }, pairs(keep(info.params), "Params", "params", "No params."),
      pairs(keep(info.metrics), "Last metrics", "metrics", "No metrics."), pairs(about, "Run", "about", ""),
      pairs(tags, "Tags", "tags", "No tags.")),
    systemBox,
    el("h2", {}, "Artifacts"), artifacts, images,
    el("h2", {}, "Models"), info.models.rows.length ? frameTable(info.models, { label: "Models of this run" }) : el("p", { class: "muted" }, "No models."),
    el("h2", {}, "Rows"), rowCount, rowsBox, rowsPager);
  if (system.length) systemCharts(systemBox, id, system);
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
  if (stale(mine)) return;
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

// The machine's readings over the run's time, a small chart each, apart from its metrics.
async function systemCharts(box, id, columns) {
  const grid = el("div", { class: "grid small-charts" });
  const note = el("p", { class: "muted", "aria-live": "polite" });
  box.replaceChildren(el("h2", {}, "System metrics"), note, grid);
  let Plotly;
  try {
    Plotly = await loadPlotly();
  } catch (e) {
    note.textContent = e.message;
    return;
  }
  // Every chart's box first, then the drawing: each is drawn at its final width.
  const charts = columns.map((column) => el("div", { class: "chart small", "data-metric": column, role: "img", "aria-label": `System metric ${column} over time` }));
  grid.append(...charts);
  for (const [i, column] of columns.entries()) {
    const chart = charts[i];
    try {
      const curve = await api("/api/curve", { run: id, metric: column, x: "_relative" });
      await Plotly.react(chart, [{ type: "scatter", mode: curve.x.length > 1 ? "lines" : "markers", x: curve.x, y: curve.y,
        name: plotText(column), hovertemplate: "%{y} at %{x:.1f} s<extra></extra>" }],
      baseLayout({ height: 220, margin: { t: 32, r: 12, b: 40, l: 52 }, title: { text: plotText(column), font: { size: 13 } },
        xaxis: { title: { text: "seconds since start" } }, showlegend: false }), { displaylogo: false, responsive: true });
    } catch (e) {
      chart.replaceChildren(el("p", { class: "error", role: "alert" }, `${column}: ${e.message}`));
    }
  }
}
