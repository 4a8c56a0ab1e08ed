// xetrack dashboard: the runs page (filter, sort, columns, selection, groups of runs,
// parallel coordinates whose brushed ranges become the filter).
import { el, text, link, api, setState, cell, every, main, query, table, navigate, POLL_MS, pageToken, stale } from "./common.js";
import { preloadCharts } from "./charts.js";
import { drawParallel, clearParallel } from "./parallel.js";

const GROUP_PAGE = 100;

// A number in few digits: 0.912345 -> "0.9123", 123456.7 -> "1.235e+5".
export function short(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return value.toExponential(3).replace(/\.?0+e/, "e");
  return String(Number(value.toPrecision(4)));
}

// A name as the filter grammar reads it: params.lr, params.`my lr`.
export function fieldName(prefix, name) {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return `${prefix}.${name}`;
  if (!name.includes("`")) return `${prefix}.\`${name}\``;
  return `${prefix}."${name.replace(/"/g, '""')}"`;
}

function literal(value) {
  if (typeof value === "number") return String(value);
  if (typeof value === "boolean") return value ? "TRUE" : "FALSE";
  return `'${String(value).replace(/'/g, "''")}'`;
}

// A brushed bound in 12 digits, rounded outwards (down for a low end, up for a high one),
// so that a run on the edge of the drawn range stays in it. Twelve keep the brush's own
// resolution on an axis whose span is tiny next to its values (a unix time over a day).
function bound(value, up) {
  if (!Number.isFinite(value)) return String(value);
  const near = Number(value.toPrecision(12));
  if (near === value || (up ? near > value : near < value)) return String(near);
  const unit = 10 ** (Math.floor(Math.log10(Math.abs(near))) - 11);
  return String(Number((up ? near + unit : near - unit).toPrecision(12)));
}

function both(a, b) {
  if (!a) return b || "";
  if (!b) return a;
  return `(${a}) and ${b}`;
}

// ------------------------------------------------------------------ runs
export async function runsPage() {
  const mine = pageToken();
  const selected = new Set(query.getAll("run"));
  const filter = el("input", { type: "search", id: "filter", name: "filter", "aria-label": "Filter runs",
    placeholder: "metrics.accuracy > 0.9 and params.model = 'rf'", value: query.get("filter") || "" });
  const errorLine = el("p", { id: "filter-error", class: "error", role: "alert", "aria-live": "polite" });
  const count = el("p", { id: "run-count", "aria-live": "polite" });
  const chooser = el("details", { class: "columns" }, el("summary", {}, "Columns"));
  const tableBox = el("div", { class: "table-wrap", id: "runs-box" });
  const pager = el("div", { class: "pager" });
  const selection = el("span", { id: "selection-count", class: "muted" });
  const chartButton = el("button", { type: "button", id: "chart-selected", "aria-label": "Chart the selected runs",
    onclick: () => navigate(link("/charts", { run: [...selected] })) }, "Chart selected");
  const compareButton = el("button", { type: "button", id: "compare-selected", "aria-label": "Compare the selected runs",
    onclick: () => { location.href = link("/compare", { run: [...selected], filter: query.get("filter") }); } }, "Compare selected");
  const groupBy = el("select", { id: "group-by", multiple: true, size: 3, "aria-label": "Group by" });
  const ungroup = el("button", { type: "button", id: "ungroup", "aria-label": "Stop grouping" }, "Ungroup");
  const pcButton = el("button", { type: "button", id: "parallel-toggle", "aria-label": "Parallel coordinates",
    "aria-expanded": "false", "aria-controls": "parallel" }, "Parallel coordinates");
  const colorBy = el("select", { id: "color-by", "aria-label": "Color by" });
  const pcNote = el("p", { id: "parallel-note", class: "muted", "aria-live": "polite" });
  const pcChart = el("div", { id: "parallel-chart", class: "chart", role: "group",
    "aria-label": "Parallel coordinates of the params and a metric over the filtered runs; drag along an axis to filter" });
  const pcSection = el("section", { id: "parallel", "aria-label": "Parallel coordinates chart", hidden: true },
    el("div", { class: "toolbar" }, el("label", { for: "color-by" }, "Color by"), colorBy,
      el("button", { type: "button", "aria-label": "Clear the brushed ranges", onclick: () => clearBrush() }, "Clear ranges")),
    pcNote, pcChart);

  const apply = () => {
    setState({ filter: filter.value.trim(), page: 0 });
    load();
    if (!pcSection.hidden) loadParallel();
  };
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
    errorLine,
    el("div", { class: "toolbar" }, el("label", { for: "group-by" }, "Group by"), groupBy, ungroup, pcButton, chooser),
    pcSection,
    el("div", { class: "toolbar" }, count, chartButton, compareButton, selection),
    tableBox, pager);

  function updateSelection() {
    selection.textContent = `${selected.size} selected`;
    chartButton.disabled = selected.size === 0;
    compareButton.disabled = selected.size < 2;
    setState({ run: [...selected] });
  }

  // The params to group by, from the URL; the choices from the table's params, asked for
  // beside the runs (not before them: the table shows as soon as its page comes).
  let info = { params: [], metrics: [] };
  const grouping = () => query.getAll("group");
  const fillGroupBy = () => {
    const params = [...new Set([...info.params, ...grouping()])];
    groupBy.replaceChildren(...params.map((p) => el("option", { value: p, selected: grouping().includes(p) }, p)));
  };
  fillGroupBy();
  api("/api/columns").then((body) => { info = body; fillGroupBy(); }, (e) => { errorLine.textContent = e.message; });
  groupBy.addEventListener("change", () => {
    const chosen = [...groupBy.selectedOptions].map((o) => o.value);
    setState({ group: chosen, page: 0, sort: groupSortOk(query.get("sort"), chosen) ? query.get("sort") : "" });
    load();
  });
  ungroup.addEventListener("click", () => {
    for (const option of groupBy.options) option.selected = false;
    setState({ group: [], page: 0 });
    load();
  });
  const groupSortOk = (sort, by) => !sort || sort.split(",").every((k) => {
    const name = k.replace(/^-/, "");
    return by.includes(name) || name === "count" || info.metrics.includes(name);
  });

  // Every answer carries the number of its request: one that a later request overtook
  // is dropped, so a change made while the table reloads is never overwritten.
  let latest = 0;
  let allColumns = [];

  function chosenColumns() {
    const columns = query.get("columns");
    return columns ? columns.split(",") : allColumns;
  }

  function renderChooser() {
    const shown = new Set(chosenColumns());
    const boxes = chooser.querySelectorAll("input[data-column]");
    const names = allColumns.filter((c) => c !== "track_id");
    if (boxes.length === names.length && [...boxes].every((b, i) => b.dataset.column === names[i])) {
      boxes.forEach((b) => { b.checked = shown.has(b.dataset.column); });
      return;
    }
    chooser.replaceChildren(el("summary", {}, "Columns"), ...names.map((c) => {
      const box = el("input", { type: "checkbox", checked: shown.has(c), "data-column": c, "aria-label": `Show column ${c}` });
      box.addEventListener("change", () => {
        const now = new Set(chosenColumns());
        if (box.checked) now.add(c); else now.delete(c);
        const keep = allColumns.filter((name) => name === "track_id" || now.has(name));
        setState({ columns: keep.length === allColumns.length ? "" : keep.join(",") });
        load();
      });
      return el("label", {}, box, ` ${c}`);
    }));
  }

  function emptyState(total) {
    if (total) return null;
    const where = query.get("filter");
    if (where) return el("p", { class: "empty", role: "status" }, `No runs match the filter ${where}. Clear the filter to see every run.`);
    return el("p", { class: "empty", role: "status" }, "This table has no runs yet: log one with Tracker(db).log({...}) and it shows here.");
  }

  function pagerFor(page, pages, what) {
    pager.replaceChildren(
      el("button", { type: "button", "aria-label": what === "runs" ? "Previous page" : `Previous page of ${what}`, disabled: page <= 0,
        onclick: () => { setState({ page: page - 1 }); load(); } }, "‹ Prev"),
      el("span", {}, `page ${page + 1} of ${pages}`),
      el("button", { type: "button", "aria-label": what === "runs" ? "Next page" : `Next page of ${what}`, disabled: page + 1 >= pages,
        onclick: () => { setState({ page: page + 1 }); load(); } }, "Next ›"));
  }

  function sortButton(column, label, sort) {
    const current = sort === column ? "ascending" : sort === `-${column}` ? "descending" : "none";
    const arrow = current === "ascending" ? " ▲" : current === "descending" ? " ▼" : "";
    return el("th", { scope: "col", "aria-sort": current },
      el("button", { type: "button", class: "sort", "data-column": column, "aria-label": `Sort by ${column}`,
        onclick: () => { setState({ sort: current === "ascending" ? `-${column}` : column, page: 0 }); load(); } }, label + arrow));
  }

  // A table of runs (the page's, or one group's), each with its selection box.
  function runsTable(body, options) {
    const sort = query.get("sort") || "";
    const head = el("tr", {}, el("th", { scope: "col" }, el("span", { class: "muted" }, "✓")), body.columns.map((c) =>
      options.sortable ? sortButton(c, c, sort) : el("th", { scope: "col" }, c)));
    const idAt = body.columns.indexOf("track_id");
    const rows = body.rows.map((row) => {
      const id = row[idAt];
      const box = el("input", { type: "checkbox", class: "select-run", checked: selected.has(id), "aria-label": `Select run ${id}` });
      box.addEventListener("change", () => { box.checked ? selected.add(id) : selected.delete(id); updateSelection(); });
      return el("tr", { "data-run": id }, el("td", {}, box), row.map((v, i) => cell(body.columns[i], v)));
    });
    return el("table", { id: options.id || null, "aria-label": options.label }, el("thead", {}, head), el("tbody", {}, rows));
  }

  async function load() {
    const mine = ++latest;
    const by = grouping();
    tableBox.setAttribute("aria-busy", "true");
    try {
      if (by.length) await loadGroups(mine, by);
      else await loadRuns(mine);
    } finally {
      if (mine === latest) tableBox.removeAttribute("aria-busy");
    }
  }

  async function loadRuns(mine) {
    const sort = query.get("sort") || "";
    const page = Number(query.get("page") || 0);
    const columns = query.get("columns") || "";
    let body;
    try {
      body = await api("/api/runs", { filter: query.get("filter"), sort, page, size: 100, columns });
    } catch (e) {
      if (mine === latest) errorLine.textContent = e.message;
      return;
    }
    if (mine !== latest) return;  // overtaken by a later request
    errorLine.textContent = "";
    allColumns = body.all_columns;
    count.textContent = `${body.total} run${body.total === 1 ? "" : "s"}`;
    renderChooser();
    chooser.hidden = false;
    const empty = emptyState(body.total);
    tableBox.replaceChildren(empty || runsTable(body, { id: "runs", label: "Runs", sortable: true }));
    pagerFor(page, Math.max(1, Math.ceil(body.total / body.size)), "runs");
  }

  async function loadGroups(mine, by) {
    const sort = query.get("sort") || "";
    const page = Number(query.get("page") || 0);
    const where = query.get("filter") || "";
    let body;
    try {
      body = await api("/api/runs/groups", { group: by, filter: where, sort, page, size: GROUP_PAGE });
    } catch (e) {
      if (mine === latest) errorLine.textContent = e.message;
      return;
    }
    if (mine !== latest) return;
    errorLine.textContent = "";
    count.textContent = `${body.runs} run${body.runs === 1 ? "" : "s"} in ${body.total} group${body.total === 1 ? "" : "s"}`;
    chooser.hidden = true;  // a grouped table shows the groups' params, count and metrics
    const empty = emptyState(body.runs);
    if (empty) {
      tableBox.replaceChildren(empty);
    } else {
      const width = 2 + body.by.length + body.metrics.length;
      const head = el("tr", {}, el("th", { scope: "col" }, el("span", { class: "muted" }, "▸")),
        body.by.map((b) => sortButton(b, b, sort)), sortButton("count", "count", sort),
        body.metrics.map((m) => sortButton(m, `${m} (mean ± std)`, sort)));
      const rows = body.groups.flatMap((g) => {
        const name = body.by.map((b, i) => `${b}=${g.values[i] === null ? "—" : g.values[i]}`).join(", ");
        const holder = el("tr", { class: "group-runs", hidden: true }, el("td", { colspan: width }));
        const toggle = el("button", { type: "button", class: "expand", "aria-expanded": "false", "aria-label": `Show runs of ${name}` }, "▸");
        toggle.addEventListener("click", async () => {
          const open = toggle.getAttribute("aria-expanded") !== "true";
          toggle.setAttribute("aria-expanded", String(open));
          toggle.textContent = open ? "▾" : "▸";
          holder.hidden = !open;
          if (open) await groupRuns(holder.firstChild, where, g, name);
        });
        const stats = body.metrics.map((m) => {
          const s = g.stats[m];
          const shown = s.mean === null ? "—" : s.std === null ? short(s.mean) : `${short(s.mean)} ± ${short(s.std)}`;
          return el("td", { class: "num", "data-metric": m, title: s.mean === null ? "" : `mean ${s.mean}, std ${s.std === null ? "—" : s.std}` }, shown);
        });
        return [el("tr", { class: "group", "data-filter": g.filter }, el("td", {}, toggle),
          g.values.map((v) => el("td", { class: typeof v === "number" ? "num" : null, title: text(v) }, v === null ? "—" : text(v))),
          el("td", { class: "num", "data-count": g.count }, String(g.count)), stats), holder];
      });
      tableBox.replaceChildren(el("table", { id: "groups", "aria-label": "Groups of runs" }, el("thead", {}, head), el("tbody", {}, rows)));
    }
    pagerFor(page, Math.max(1, Math.ceil(body.total / body.size)), "groups");
  }

  async function groupRuns(box, where, group, name) {
    box.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    try {
      const body = await api("/api/runs", { filter: both(where, group.filter), size: 100,
        sort: (query.get("sort") || "").split(",").filter((k) => k && k.replace(/^-/, "") !== "count").join(","),
        columns: query.get("columns") || "" });
      const more = body.total > body.rows.length
        ? el("p", { class: "muted" }, `The first ${body.rows.length} of ${body.total} runs: `,
          el("a", { href: link("/runs", { filter: both(where, group.filter) }) }, "open them as a filter"))
        : null;
      box.replaceChildren(el("div", { class: "nested" }, runsTable(body, { label: `Runs of ${name}`, sortable: false }), more || ""));
    } catch (e) {
      box.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
    }
  }

  // ------------------------------------------------ parallel coordinates
  let pcBase = "";  // the filter the chart was drawn for; brushed ranges are added to it
  let pcDims = [];  // the drawn chart's dimensions, for the names of the brushed ranges
  let pcLatest = 0;

  function showParallel(open) {
    pcSection.hidden = !open;
    pcButton.setAttribute("aria-expanded", String(open));
    setState({ pc: open ? "1" : "" });
    if (open) loadParallel(false);
  }
  pcButton.addEventListener("click", () => showParallel(pcSection.hidden));
  colorBy.addEventListener("change", () => { setState({ color: colorBy.value }); loadParallel(true); });

  // The chart of the filter's runs; a new colour redraws the same runs, ranges kept.
  async function loadParallel(sameRuns) {
    const mine = ++pcLatest;
    if (!sameRuns) pcBase = query.get("filter") || "";
    const keep = sameRuns && pcChart.parallelChart ? pcChart.parallelChart.brushes() : null;
    pcNote.textContent = "Loading…";
    let body;
    try {
      body = await api("/api/runs/parallel", { filter: pcBase, color: query.get("color") || "" });
    } catch (e) {
      if (mine !== pcLatest) return;
      pcNote.replaceChildren(el("span", { class: "error", role: "alert" }, `Parallel coordinates: ${e.message}`));
      clearParallel(pcChart);
      return;
    }
    if (mine !== pcLatest) return;  // overtaken by a later request
    colorBy.replaceChildren(...body.metrics.map((m) => el("option", { value: m, selected: m === body.color }, m)));
    if (!body.total || !body.dimensions.length) {
      clearParallel(pcChart);
      pcNote.textContent = body.total ? "These runs have no params or metrics to draw."
        : pcBase ? `No runs match the filter ${pcBase}: nothing to draw.` : "This table has no runs yet: nothing to draw.";
      return;
    }
    pcNote.textContent = body.total > body.shown
      ? `Showing the first ${body.shown} of ${body.total} runs of the filter. Drag along an axis to filter the runs.`
      : `${body.total} run${body.total === 1 ? "" : "s"}. Drag along an axis to filter the runs.`;
    if (body.params_left_out.length) pcNote.textContent += ` ${body.params_left_out.length} more params are not drawn: ${body.params_left_out.join(", ")}.`;
    pcDims = body.dimensions;
    const chart = drawParallel(pcChart, body, { onBrush: applyBrush, keep });
    if (keep) applyBrush(chart.brushed());  // a range on the previous colour's axis is gone
  }

  // The brushed ranges as conditions of the filter grammar.
  function brushConditions(brushes) {
    const out = [];
    brushes.forEach((b, i) => {
      const d = pcDims[i];
      if (!b || !d) return;
      const name = fieldName(d.prefix, d.name);
      if (d.kind === "number") {
        out.push(`${name} >= ${bound(b.lo, false)} and ${name} <= ${bound(b.hi, true)}`);
        return;
      }
      const values = b.picked.filter((c) => c !== null);
      const lits = values.map(literal);
      let cond = lits.length === 1 ? `${name} = ${lits[0]}` : lits.length ? `${name} in (${lits.join(", ")})` : "";
      if (values.length !== b.picked.length) cond = cond ? `(${cond} or ${name} is null)` : `${name} is null`;
      out.push(cond || `(${name} is null and ${name} is not null)`);
    });
    return out;
  }

  function applyBrush(brushes) {
    const combined = both(pcBase, brushConditions(brushes).join(" and "));
    if (combined === (query.get("filter") || "")) return;
    filter.value = combined;
    setState({ filter: combined, page: 0 });
    load();
  }

  function clearBrush() {
    if (pcChart.parallelChart) pcChart.parallelChart.clear();
  }

  updateSelection();
  if (query.get("pc") === "1") showParallel(true);
  await load();
  if (stale(mine)) return; // the user went on to another page meanwhile: no poll for this one
  preloadCharts();  // the chart library, while the user reads the table: "Chart selected" draws at once
  // While a run on this page is running, its status, events and last metrics follow.
  every(5 * POLL_MS / 2, async () => {
    if (tableBox.querySelector('[data-status="running"]')) await load();
  });
}
