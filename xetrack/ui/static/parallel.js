// xetrack dashboard: parallel coordinates in plain SVG (no eval, no WebGL): one vertical
// axis per dimension of /api/runs/parallel, one line per run coloured by a metric, and a
// brushed range per axis (mouse drag, or the keyboard on the focused axis). Every name,
// category and value goes into the page as text (textContent), never as markup.

const SVG = "http://www.w3.org/2000/svg";
// Viridis, bottom (low) to top (high).
const SCALE = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"]
  .map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
const MARGIN = { top: 44, bottom: 26, right: 104 };
const MIN_DRAG = 3;  // px: less is a click, which clears the axis's range
const LABEL_CHARS = 32;
let charts = 0;  // a number per chart, for the legend gradient's id

function node(tag, attrs, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) n.setAttribute(key, String(value));
  }
  if (text !== undefined) n.textContent = text;
  return n;
}

// A text that names itself in full in its tooltip when it is cut.
function label(attrs, full, chars) {
  const cut = full.length > chars ? `${full.slice(0, chars - 1)}…` : full;
  const t = node("text", attrs, cut);
  if (cut !== full) t.append(node("title", {}, full));
  return t;
}

export function colorAt(t) {
  const x = Math.min(1, Math.max(0, t)) * (SCALE.length - 1);
  const i = Math.min(SCALE.length - 2, Math.floor(x));
  const f = x - i;
  const [r, g, b] = SCALE[i].map((c, k) => Math.round(c + (SCALE[i + 1][k] - c) * f));
  return `rgb(${r}, ${g}, ${b})`;
}

// A number in few digits for a tick or the legend.
function fmt(value) {
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return value.toExponential(2).replace(/\.?0+e/, "e");
  return String(Number(value.toPrecision(4)));
}

function niceTicks(lo, hi) {
  const raw = (hi - lo) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const out = [];
  for (let k = Math.ceil(lo / step); k * step <= hi + step * 1e-9; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

// Round a brushed number outwards to the axis's resolution (about a pixel), so that the
// filter reads 0.0512 rather than 0.05123456 and a run on the drawn edge stays in.
function outward(value, up, resolution) {
  const exp = Math.floor(Math.log10(resolution));
  const step = 10 ** exp;
  const k = up ? Math.ceil(value / step - 1e-9) : Math.floor(value / step + 1e-9);
  return Number((k * step).toFixed(Math.max(0, -exp)));
}

const keyOf = (v) => (v === null || v === undefined ? "\u0000none" : `${typeof v}:${v}`);

// Each dimension with its domain: numbers [min, max]; categories (sorted, "(none)" last).
function describe(dimensions) {
  return dimensions.map((d) => {
    const title = d.prefix === "metrics" ? `${d.name} (metric)` : d.name;
    if (d.kind === "number") {
      const finite = d.values.filter((v) => typeof v === "number" && Number.isFinite(v));
      let lo = finite.length ? Math.min(...finite) : 0;
      let hi = finite.length ? Math.max(...finite) : 1;
      if (lo === hi) { const pad = lo === 0 ? 1 : Math.abs(lo) / 2; lo -= pad; hi += pad; }
      return { ...d, title, lo, hi, key: `${d.prefix}.${d.name}` };
    }
    const seen = new Map();
    for (const v of d.values) if (v !== null && !seen.has(keyOf(v))) seen.set(keyOf(v), v);
    const cats = [...seen.values()].sort((a, b) => (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
    if (d.values.some((v) => v === null)) cats.push(null);
    const index = new Map(cats.map((c, i) => [keyOf(c), i]));
    return { ...d, title, cats, index, lo: -0.5, hi: cats.length - 0.5, key: `${d.prefix}.${d.name}`,
      shape: cats.map(keyOf).join("\u0001") };
  });
}

// Draw `body` (the answer of /api/runs/parallel) into `container`. `onBrush(brushes)` is
// called when a range is released, cleared or changed by the keyboard: one entry per
// dimension, null or {lo, hi} (numbers) or {picked: [values]} (categories, null for
// none). `keep` (a previous chart's brushes()) restores the ranges of the same axes.
// Returns {clear(), brushes()}.
export function drawParallel(container, body, { onBrush, keep } = {}) {
  const previous = container.parallelChart;
  if (previous) previous.stop();
  const dims = describe(body.dimensions);
  const runs = body.track_id.length || (dims[0] ? dims[0].values.length : 0);
  const ranges = dims.map((d) => {
    const old = keep && keep.get(d.key);
    if (!old || old.kind !== d.kind || (d.kind === "category" && old.shape !== d.shape)) return null;
    return [old.lo, old.hi];
  });
  const colour = body.color ? dims[dims.length - 1].values : null;
  const finite = colour ? colour.filter((v) => typeof v === "number" && Number.isFinite(v)) : [];
  const cMin = finite.length ? Math.min(...finite) : 0;
  const cMax = finite.length ? Math.max(...finite) : 0;
  const id = ++charts;
  let width = 0;
  let svg = null;
  let lines = [];
  let active = [];
  let layout = null;

  function place() {
    width = Math.max(320, container.clientWidth);
    const height = Math.max(240, container.clientHeight);
    const first = dims[0];
    const widest = first && first.kind === "category"
      ? Math.max(...first.cats.map((c) => Math.min(LABEL_CHARS, c === null ? 6 : String(c).length))) : 6;
    const left = Math.min(240, Math.max(60, 14 + 7 * widest));
    const right = colour ? MARGIN.right : 30;
    const top = MARGIN.top;
    const bottom = height - MARGIN.bottom;
    const gap = dims.length > 1 ? (width - left - right) / (dims.length - 1) : 0;
    const xs = dims.map((_, i) => (dims.length > 1 ? left + i * gap : (left + width - right) / 2));
    return { height, top, bottom, xs, gap };
  }

  const yOf = (d, v) => layout.bottom - ((v - d.lo) / (d.hi - d.lo)) * (layout.bottom - layout.top);
  const valueAt = (d, y) => {
    const v = d.lo + ((layout.bottom - y) / (layout.bottom - layout.top)) * (d.hi - d.lo);
    return Math.min(d.hi, Math.max(d.lo, v));
  };
  const position = (d, v) => {
    if (v === undefined) return null;
    if (d.kind === "category") return yOf(d, d.index.get(keyOf(v)));
    return typeof v === "number" && Number.isFinite(v) ? yOf(d, v) : null;
  };

  // Whether value v of dimension d is in the range [lo, hi] (a number range as the filter
  // reads it, rounded; a category range in category numbers).
  function inRange(d, range, v) {
    if (d.kind === "category") {
      const i = d.index.get(keyOf(v));
      return i >= range[0] && i <= range[1];
    }
    return typeof v === "number" && v >= range[0] && v <= range[1];
  }

  function updateActive() {
    const brushed = dims.map((d, i) => {
      if (!ranges[i] || d.kind === "category") return [d, ranges[i]];
      const b = brushOf(i);
      return [d, [b.lo, b.hi]];
    }).filter(([, r]) => r);
    for (let r = 0; r < runs; r++) {
      const on = brushed.every(([d, range]) => inRange(d, range, d.values[r]));
      if (on !== active[r]) {
        active[r] = on;
        lines[r].classList.toggle("dim", !on);
      }
    }
    svg.dataset.active = String(active.filter(Boolean).length);
  }

  // The range as the filter will read it (numbers rounded outwards to about a pixel).
  function brushOf(i) {
    const d = dims[i];
    const range = ranges[i];
    if (!range) return null;
    if (d.kind === "category") return { picked: d.cats.filter((_, k) => k >= range[0] && k <= range[1]) };
    const resolution = (d.hi - d.lo) / Math.max(1, layout.bottom - layout.top);
    return { lo: outward(range[0], false, resolution), hi: outward(range[1], true, resolution) };
  }

  function report() {
    if (onBrush) onBrush(dims.map((_, i) => brushOf(i)));
  }

  function describeRange(i) {
    const d = dims[i];
    const b = brushOf(i);
    if (!b) return `${d.title}: every value`;
    if (d.kind === "number") return `${d.title} from ${b.lo} to ${b.hi}`;
    return `${d.title}: ${b.picked.map((c) => (c === null ? "(none)" : String(c))).join(", ") || "no category"}`;
  }

  function drawRange(i) {
    const axis = svg.querySelectorAll("g.pc-axis")[i];
    const rect = axis.querySelector("rect.pc-brush");
    const range = ranges[i];
    rect.toggleAttribute("hidden", !range);
    axis.setAttribute("aria-valuetext", describeRange(i));
    axis.setAttribute("aria-valuenow", String(range ? range[0] : dims[i].lo));
    axis.classList.toggle("brushed", !!range);
    if (!range) return;
    let y1 = yOf(dims[i], range[1]);
    let y0 = yOf(dims[i], range[0]);
    if (y0 - y1 < 8) { const mid = (y0 + y1) / 2; y1 = mid - 4; y0 = mid + 4; }
    rect.setAttribute("y", String(y1));
    rect.setAttribute("height", String(y0 - y1));
  }

  function setRange(i, range) {
    ranges[i] = range;
    drawRange(i);
    updateActive();
  }

  function axisGroup(d, i) {
    const x = layout.xs[i];
    const g = node("g", { class: "pc-axis", role: "slider", tabindex: 0, "aria-label": `Brush ${d.name}`,
      "aria-orientation": "vertical", "aria-valuemin": d.lo, "aria-valuemax": d.hi, "data-kind": d.kind,
      "data-min": d.kind === "number" ? d.lo : null, "data-max": d.kind === "number" ? d.hi : null });
    g.append(node("line", { class: "pc-domain", x1: x, x2: x, y1: layout.top, y2: layout.bottom }));
    const chars = Math.max(6, Math.floor((layout.gap || 200) / 7));
    g.append(label({ class: "axis-title", x, y: layout.top - 16, "text-anchor": "middle" }, d.title, chars));
    const ticks = d.kind === "number" ? niceTicks(d.lo, d.hi).map((v) => [v, fmt(v)])
      : d.cats.map((c, k) => [k, c === null ? "(none)" : typeof c === "number" ? fmt(c) : String(c)]);
    for (const [v, name] of ticks) {
      const y = yOf(d, v);
      const tick = node("g", { class: "tick", transform: `translate(${x},${y})` });
      tick.append(node("line", { x1: -4, x2: 0, y1: 0, y2: 0 }));
      tick.append(label({ x: -7, y: 0, dy: "0.32em", "text-anchor": "end" }, name, LABEL_CHARS));
      g.append(tick);
    }
    g.append(node("rect", { class: "pc-brush", x: x - 8, width: 16, y: 0, height: 0, hidden: "" }));
    const hit = node("rect", { class: "pc-hit", x: x - 14, width: 28, y: layout.top - 8, height: layout.bottom - layout.top + 16 });
    g.append(hit);
    brushing(hit, g, i);
    g.addEventListener("keydown", (event) => keyboard(event, i));
    return g;
  }

  // Press-drag along an axis: the range follows the pointer; release applies it. A press
  // released without moving clears the axis's range.
  function brushing(hit, axis, i) {
    let start = null;
    let dragged = false;
    let frame = 0;
    const yIn = (event) => event.clientY - svg.getBoundingClientRect().top;
    hit.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      axis.focus({ preventScroll: true });
      hit.setPointerCapture(event.pointerId);
      start = yIn(event);
      dragged = false;
    });
    hit.addEventListener("pointermove", (event) => {
      if (start === null) return;
      const y = yIn(event);
      if (!dragged && Math.abs(y - start) < MIN_DRAG) return;
      dragged = true;
      const d = dims[i];
      const a = valueAt(d, start);
      const b = valueAt(d, y);
      ranges[i] = [Math.min(a, b), Math.max(a, b)];
      drawRange(i);
      if (!frame) frame = requestAnimationFrame(() => { frame = 0; updateActive(); });
    });
    const end = (event) => {
      if (start === null) return;
      start = null;
      if (hit.hasPointerCapture(event.pointerId)) hit.releasePointerCapture(event.pointerId);
      if (!dragged) {
        if (!ranges[i]) return;
        setRange(i, null);
      } else {
        updateActive();
      }
      report();
    };
    hit.addEventListener("pointerup", end);
    hit.addEventListener("pointercancel", end);
  }

  // The focused axis: arrows move the range a step (a tenth of the axis, or a category),
  // Shift+arrows move its top end, Escape or Delete clear it.
  let keyTimer = null;
  function keyboard(event, i) {
    const d = dims[i];
    const step = d.kind === "number" ? (d.hi - d.lo) / 10 : 1;
    const ends = d.kind === "number" ? [d.lo, d.hi] : [0, d.cats.length - 1];
    let range = ranges[i];
    if (["Escape", "Delete", "Backspace"].includes(event.key)) {
      if (!range) return;
      range = null;
    } else if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      const dir = event.key === "ArrowUp" ? 1 : -1;
      if (!range) {
        range = dir > 0 ? [ends[0], ends[0] + (d.kind === "number" ? step : 0)] : [ends[1] - (d.kind === "number" ? step : 0), ends[1]];
      } else if (event.shiftKey) {
        range = [range[0], Math.min(ends[1], Math.max(range[0], range[1] + dir * step))];
      } else {
        const move = dir > 0 ? Math.min(step, ends[1] - range[1]) : Math.max(-step, ends[0] - range[0]);
        range = [range[0] + move, range[1] + move];
      }
    } else {
      return;
    }
    event.preventDefault();
    setRange(i, range);
    clearTimeout(keyTimer);
    keyTimer = setTimeout(report, 300);
  }

  function legend() {
    const g = node("g", { class: "pc-legend" });
    const x = width - MARGIN.right + 40;
    const middle = (layout.top + layout.bottom) / 2;
    g.append(label({ class: "pc-legend-title", x: x - 6, y: middle, "text-anchor": "middle",
      transform: `rotate(-90 ${x - 6} ${middle})` }, body.color, 40));
    if (!finite.length) {
      g.append(node("text", { x, y: layout.top, dy: "0.32em", class: "pc-legend-min" }, "no values"));
      return g;
    }
    const gradient = node("linearGradient", { id: `pc-scale-${id}`, x1: 0, y1: 1, x2: 0, y2: 0 });
    SCALE.forEach((_, k) => gradient.append(node("stop", { offset: k / (SCALE.length - 1), "stop-color": colorAt(k / (SCALE.length - 1)) })));
    g.append(node("defs", {}), node("rect", { class: "pc-legend-bar", x, y: layout.top, width: 12,
      height: layout.bottom - layout.top, fill: `url(#pc-scale-${id})` }));
    g.querySelector("defs").append(gradient);
    g.append(node("text", { class: "pc-legend-max", x: x + 16, y: layout.top, dy: "0.32em" }, fmt(cMax)));
    g.append(node("text", { class: "pc-legend-min", x: x + 16, y: layout.bottom, dy: "0.32em" }, fmt(cMin)));
    return g;
  }

  function draw() {
    layout = place();
    svg = node("svg", { class: "pc-svg", role: "none", width, height: layout.height, "data-runs": runs });
    const group = node("g", { class: "pc-lines" });
    lines = new Array(runs);
    active = new Array(runs).fill(true);
    const ids = body.track_id;
    for (let r = 0; r < runs; r++) {
      let d = "";
      let pen = "M";
      dims.forEach((dim, i) => {
        const y = position(dim, dim.values[r]);
        if (y === null) { pen = "M"; return; }
        d += `${pen}${layout.xs[i].toFixed(1)} ${y.toFixed(1)}`;
        pen = "L";
      });
      const v = colour ? colour[r] : null;
      const known = typeof v === "number" && Number.isFinite(v);
      const stroke = known ? colorAt(cMax > cMin ? (v - cMin) / (cMax - cMin) : 0.5) : null;
      const path = node("path", { class: known || !colour ? "pc-line" : "pc-line no-value", d, stroke, "data-run": ids[r] });
      path.append(node("title", {}, colour ? `${ids[r]}: ${body.color} ${known ? v : "—"}` : String(ids[r])));
      lines[r] = path;
      group.append(path);
    }
    svg.append(group, ...dims.map((d, i) => axisGroup(d, i)));
    if (colour) svg.append(legend());
    container.replaceChildren(svg);
    dims.forEach((_, i) => drawRange(i));
    updateActive();
  }

  draw();
  // A new width redraws the chart, ranges kept.
  const observer = new ResizeObserver(() => {
    if (!container.isConnected) { observer.disconnect(); return; }
    if (container.clientWidth && Math.max(320, container.clientWidth) !== width) draw();
  });
  observer.observe(container);

  const chart = {
    stop() { observer.disconnect(); clearTimeout(keyTimer); },
    clear() {
      dims.forEach((_, i) => { ranges[i] = null; drawRange(i); });
      updateActive();
      report();
    },
    brushed() {
      return dims.map((_, i) => brushOf(i));
    },
    brushes() {
      return new Map(dims.map((d, i) => [d.key, ranges[i] && { kind: d.kind, shape: d.shape, lo: ranges[i][0], hi: ranges[i][1] }]));
    },
  };
  container.parallelChart = chart;
  return chart;
}

export function clearParallel(container) {
  if (container.parallelChart) container.parallelChart.stop();
  container.parallelChart = null;
  container.replaceChildren();
}
