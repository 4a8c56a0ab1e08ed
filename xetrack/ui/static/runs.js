// xetrack dashboard: the runs page (filter, sort, columns, selection).
import { el, link, api, setState, cell, every, main, query, table, POLL_MS } from "./common.js";

// ------------------------------------------------------------------ runs
export async function runsPage() {
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
