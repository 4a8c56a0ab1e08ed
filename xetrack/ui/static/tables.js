// xetrack dashboard: the experiments (tables) page and the models page.
import { el, text, api, frameTable, main, table } from "./common.js";

// ------------------------------------------------------------ experiments
export async function experimentsPage() {
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

// ----------------------------------------------------------------- models
export async function modelsPage() {
  const body = await api("/api/models");
  main.replaceChildren(el("h1", {}, "Models"),
    body.rows.length ? frameTable(body, { id: "models", label: "Registered models", links: true }) : el("p", { class: "muted" }, "No registered models."));
}
