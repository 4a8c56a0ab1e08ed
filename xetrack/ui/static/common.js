// xetrack dashboard: plain JS modules, no build step. Every logged string goes into the
// page as text (textContent, attribute values, text nodes), never as HTML.
// This module: the helpers every page uses.

export const POLL_MS = 2000;
export const main = document.getElementById("main");
export const query = new URLSearchParams(location.search);
export const table = query.get("table") || "";

// ---------------------------------------------------------------- helpers
export function el(tag, attrs, ...children) {
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

export function text(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number" && !Number.isInteger(value)) return String(Number(value.toPrecision(6)));
  return String(value);
}

export function link(path, params) {
  const q = new URLSearchParams();
  if (table) q.set("table", table);
  for (const [key, value] of Object.entries(params || {})) {
    if (Array.isArray(value)) value.forEach((v) => q.append(key, v));
    else if (value !== null && value !== undefined && value !== "") q.set(key, value);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export async function api(path, params) {
  const response = await fetch(link(path, params), { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

export function setState(params) {
  for (const [key, value] of Object.entries(params)) {
    query.delete(key);
    if (Array.isArray(value)) value.forEach((v) => query.append(key, v));
    else if (value !== null && value !== undefined && value !== "" && value !== 0) query.set(key, value);
  }
  history.replaceState(null, "", `${location.pathname}?${query.toString()}`);
  updateNav();
}

export function updateNav() {
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

export function statusBadge(status) {
  if (!status) return el("span", { class: "muted" }, "—");
  return el("span", { class: `status status-${status}`, "data-status": status }, status);
}

// A link to a run's page: its name when it has one (else its id), the id in the title.
export function runLink(id, name) {
  return el("a", { href: link("/run", { run: id }), target: "_blank", rel: "noopener", class: "run-link", title: id }, name || id);
}

export function cell(column, value) {
  if (column === "status") return el("td", {}, statusBadge(value));
  if (column === "track_id") return el("td", {}, runLink(value));
  return el("td", { class: typeof value === "number" ? "num" : null, title: text(value) }, text(value));
}

export function frameTable(frame, options) {
  const opts = options || {};
  const head = el("tr", {}, frame.columns.map((c) => el("th", { scope: "col" }, c)));
  const body = el("tbody", {}, frame.rows.map((row) => el("tr", {}, row.map((v, i) =>
    opts.links && frame.columns[i] === "track_id" && v ? el("td", {}, runLink(v)) : cell(frame.columns[i] === "track_id" ? "" : frame.columns[i], v)))));
  return el("div", { class: "table-wrap" }, el("table", { id: opts.id || null, "aria-label": opts.label || null }, el("thead", {}, head), body));
}

export function problem(message) {
  return el("p", { class: "error", role: "alert" }, message);
}

// Plotly comes from its versioned URL (/api/plotly names it), which the browser keeps
// (Cache-Control: immutable): only the first chart page of a plotly version downloads it.
let plotlyLoading = null;
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = api("/api/plotly").then((info) => new Promise((resolve, reject) => {
      const script = el("script", { src: info.src });
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("Could not load the chart library"));
      document.head.append(script);
    }));
    plotlyLoading.catch(() => { plotlyLoading = null; }); // a failed load is tried again next time
  }
  return plotlyLoading;
}

// Plotly reads a few HTML-like tags in names; entities make every logged name plain text.
export function plotText(value) {
  return text(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// The polls of the page shown: a page opened in place (navigate) stops its predecessor's.
const polls = new Set();

export function every(ms, work) {
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try { await work(); } catch (e) { /* the next tick tries again */ }
    }
    setTimeout(tick, ms);
  };
  setTimeout(tick, ms);
  const stop = () => { stopped = true; polls.delete(stop); };
  polls.add(stop);
  return stop;
}

let router = null;
export function setRouter(draw) { router = draw; }

// Which page is shown: enter() moves it on. A page keeps its token and checks it after
// each wait, so that a slow answer never draws over (or polls for) the page the user
// went on to.
let shown = 0;
export function pageToken() { return shown; }
export function stale(token) { return token !== shown; }

// Show the page of the current address: the previous page's polls stop, and `query`
// reads the new address.
export function enter() {
  shown += 1;
  for (const stop of [...polls]) stop();
  for (const key of [...query.keys()]) query.delete(key);
  new URLSearchParams(location.search).forEach((value, key) => query.append(key, value));
  updateNav();
  return router ? router() : null;
}

// Open `url` (a page of this dashboard, same table) in place, with the modules already
// loaded (Plotly included): no new page load. Anything else is an ordinary navigation.
export function navigate(url) {
  const target = new URL(url, location.href);
  if (!router || target.origin !== location.origin || (target.searchParams.get("table") || "") !== table) {
    location.href = target.href;
    return;
  }
  history.pushState(null, "", target.pathname + target.search);
  window.scrollTo(0, 0);
  enter();
}

// Plotly layout defaults that follow the page's colours (light or dark theme): transparent
// backgrounds, the page's text and grid colours. Pages merge their own options over these.
export function baseLayout(extra) {
  const css = getComputedStyle(document.documentElement);
  const fg = css.getPropertyValue("--fg").trim() || "#1d232a";
  const grid = css.getPropertyValue("--line").trim() || "#d9dee4";
  const axis = { gridcolor: grid, zerolinecolor: grid, linecolor: grid };
  const base = {
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: fg },
    margin: { t: 30, r: 20, b: 50, l: 60 }, xaxis: { ...axis }, yaxis: { ...axis },
  };
  const out = { ...base, ...(extra || {}) };
  out.xaxis = { ...axis, ...((extra || {}).xaxis || {}) };
  out.yaxis = { ...axis, ...((extra || {}).yaxis || {}) };
  return out;
}
