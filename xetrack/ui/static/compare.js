// xetrack dashboard: the compare page (runs side by side, a scatter across runs).
import { el, text, link, api, setState, statusBadge, runLink, loadPlotly, plotText, baseLayout, problem, main, query } from "./common.js";
import { imagesPanel } from "./images.js";

// --------------------------------------------------------------- compare
export async function comparePage() {
  const runs = query.getAll("run");
  main.replaceChildren(el("h1", {}, "Compare"));
  if (runs.length < 1) {
    main.append(el("p", {}, "Select runs on the ", el("a", { href: link("/runs") }, "Runs"), " page to compare them."));
  } else {
    let body;
    try {
      body = await api("/api/compare", { run: runs });
    } catch (e) {
      main.append(problem(`Cannot compare these runs: ${e.message}`));
      return;
    }
    const names = (body.fields.find((f) => f.field === "run_name") || { values: [] }).values;
    const onlyDiff = el("input", { type: "checkbox", id: "only-diff", checked: query.get("diff") === "1" });
    const box = el("div", { class: "table-wrap" });
    const render = () => {
      const fields = body.fields.filter((f) => !onlyDiff.checked || f.differs);
      box.replaceChildren(el("table", { id: "compare", "aria-label": "Runs side by side" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "field"), body.runs.map((id, i) => el("th", { scope: "col", "data-run": id }, runLink(id, names[i]))))),
        el("tbody", {}, fields.map((f) => el("tr", { class: f.differs ? "diff" : null, "data-field": f.field },
          el("th", { scope: "row" }, f.differs ? `${f.field} ≠` : f.field),
          f.values.map((v) => el("td", { class: typeof v === "number" ? "num" : null }, f.field === "status" ? statusBadge(v) : text(v))))))));
    };
    onlyDiff.addEventListener("change", () => { setState({ diff: onlyDiff.checked ? "1" : "" }); render(); });
    main.append(el("label", { for: "only-diff" }, onlyDiff, " only the fields that differ"), box);
    render();
    main.append(await imagesPanel(runs));  // hidden when none of them logged images with a step
  }
  // Scatter of any field against another, over the runs of the filter.
  let info;
  try {
    info = await api("/api/runs", { size: 1, filter: query.get("filter") });
  } catch (e) {
    main.append(el("h2", {}, "Across the filtered runs"), problem(`Cannot draw the scatter: ${e.message}`));
    return;
  }
  const fields = info.all_columns.filter((c) => c !== "track_id");
  if (!info.total) {
    main.append(el("h2", {}, "Across the filtered runs"), el("p", { class: "empty" },
      query.get("filter") ? `No runs match the filter ${query.get("filter")}: nothing to draw.` : "This table has no runs yet: nothing to draw."));
    return;
  }
  const pick = (id, label, chosen) => el("select", { id, "aria-label": label },
    fields.map((f) => el("option", { value: f, selected: f === chosen }, f)));
  const columns = await api("/api/columns");
  const firstOf = (names, fallback) => names.find((n) => fields.includes(n) && !["step", "epoch"].includes(n.toLowerCase())) || fallback;
  const x = pick("scatter-x", "Scatter x", query.get("sx") || firstOf(columns.params, fields[0]));
  const y = pick("scatter-y", "Scatter y", query.get("sy") || firstOf(columns.metrics, fields[fields.length - 1]));
  const logX = el("input", { type: "checkbox", id: "log-x", "aria-label": "Log x", checked: query.get("sxl") === "1" });
  const logY = el("input", { type: "checkbox", id: "log-y", "aria-label": "Log y", checked: query.get("syl") === "1" });
  const plot = el("div", { id: "scatter", class: "chart", role: "img", "aria-label": "Scatter of two fields across the filtered runs" });
  const note = el("p", { class: "error", role: "alert" });
  main.append(el("h2", {}, "Across the filtered runs"),
    el("div", { class: "toolbar" }, el("label", { for: "scatter-x" }, "x"), x, el("label", { for: "scatter-y" }, "y"), y,
      el("label", { class: "check" }, logX, " log x"), el("label", { class: "check" }, logY, " log y"),
      el("span", { class: "muted" }, query.get("filter") ? `filter: ${query.get("filter")}` : "all runs")), note, plot);
  const Plotly = await loadPlotly();
  const css = getComputedStyle(document.documentElement);
  const accent = css.getPropertyValue("--accent").trim() || "#2457c5";
  const mark = css.getPropertyValue("--mark").trim() || "#c62828";  // the compared runs
  const draw = async () => {
    setState({ sx: x.value, sy: y.value, sxl: logX.checked ? "1" : "", syl: logY.checked ? "1" : "" });
    try {
      const s = await api("/api/scatter", { x: x.value, y: y.value, filter: query.get("filter") });
      note.textContent = "";
      // a text field's values become category ticks and hover text, which Plotly reads as markup
      const plain = (v) => (typeof v === "string" ? plotText(v) : v);
      Plotly.react(plot, [{ type: "scatter", mode: "markers", x: s.x.map(plain), y: s.y.map(plain), text: s.track_id.map(plotText),
        hovertemplate: "%{text}<br>%{x}, %{y}<extra></extra>",
        marker: { color: s.track_id.map((id) => runs.includes(id) ? mark : accent), size: 8 } }],
      baseLayout({ margin: { t: 20, r: 20, b: 50, l: 60 },
        xaxis: { title: { text: plotText(x.value) }, type: logX.checked ? "log" : "-" },
        yaxis: { title: { text: plotText(y.value) }, type: logY.checked ? "log" : "-" } }),
      { displaylogo: false, responsive: true });
    } catch (e) { note.textContent = e.message; }
  };
  for (const input of [x, y, logX, logY]) input.addEventListener("change", draw);
  await draw();
}
