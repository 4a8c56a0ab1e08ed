// xetrack dashboard: one run's page (params, metrics, artifacts, models, its rows, live).
import { el, text, link, api, setState, statusBadge, cell, frameTable, problem, every, main, query, table, POLL_MS } from "./common.js";

// --------------------------------------------------------------- one run
export async function runPage() {
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
