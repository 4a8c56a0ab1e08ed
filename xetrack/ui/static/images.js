// xetrack dashboard: image artifacts by step, side by side for the selected runs.
// imagesPanel(runs) returns the panel's element: per image name a step slider and, at the
// chosen step, each run's image (its nearest step at or below). PNG, JPEG, GIF and WebP
// are shown from /api/artifact?inline=1 (served with their image type); an SVG is only
// offered as a download, never drawn in the page.
import { el, link, api, problem } from "./common.js";

const MAX_RUNS = 50;

// The entry of `steps` (sorted ascending) at `step` or the nearest below; null if none.
export function atOrBelow(entries, step) {
  let found = null;
  for (const entry of entries) {
    if (entry.step <= step) found = entry;
    else break;
  }
  return found;
}

export async function imagesPanel(runs) {
  const section = el("section", { id: "images-by-step", class: "images", "aria-label": "Images by step", "data-runs": runs.length });
  if (!runs.length) { section.hidden = true; return section; }
  let body;
  try {
    body = await api("/api/images", { run: runs.slice(0, MAX_RUNS) });
  } catch (e) {
    section.append(el("h2", {}, "Images by step"), problem(`Could not list the images: ${e.message}`));
    return section;
  }
  if (!body.images.length) { section.hidden = true; return section; }
  const label = new Map(body.runs.map((r) => [r.track_id, r.name || r.track_id]));
  section.append(el("h2", {}, "Images by step"));
  if (runs.length > MAX_RUNS) section.append(el("p", { class: "muted" }, `The images of the first ${MAX_RUNS} of ${runs.length} runs.`));
  // name -> track_id -> entries by step
  const byName = new Map();
  for (const image of body.images) {
    if (!byName.has(image.name)) byName.set(image.name, new Map());
    const perRun = byName.get(image.name);
    if (!perRun.has(image.track_id)) perRun.set(image.track_id, []);
    perRun.get(image.track_id).push(image);
  }
  let n = 0;
  for (const [name, perRun] of byName) {
    for (const entries of perRun.values()) entries.sort((a, b) => a.step - b.step);
    const steps = [...new Set([...perRun.values()].flat().map((e) => e.step))].sort((a, b) => a - b);
    const whole = steps.every(Number.isInteger);
    const sliderId = `image-step-${n++}`;
    const slider = el("input", { type: "range", id: sliderId, min: steps[0], max: steps[steps.length - 1],
      step: whole ? 1 : "any", value: steps[steps.length - 1], "aria-label": `Step of ${name}` });
    const shown = el("output", { for: sliderId, class: "step-value" });
    const row = el("div", { class: "image-row" });
    const draw = () => {
      const step = Number(slider.value);
      shown.textContent = `step ${step}`;
      slider.setAttribute("aria-valuetext", `step ${step}`);
      row.replaceChildren(...body.runs.map((r) => r.track_id).filter((track) => perRun.has(track)).map((track) => {
        const entry = atOrBelow(perRun.get(track), step);
        const caption = el("figcaption", {}, el("span", { class: "image-run", title: track }, label.get(track) || track),
          el("span", { class: "muted" }, entry ? ` · step ${entry.step}` : ""));
        if (!entry) return el("figure", { class: "image missing", "data-run": track }, el("p", { class: "muted" }, `No image at or before step ${step}`), caption);
        const shownAt = { run: track, hash: entry.hash };
        const picture = entry.inline
          ? el("img", { src: link("/api/artifact", { ...shownAt, inline: 1 }), alt: `${name} at step ${entry.step} of ${label.get(track) || track}`, loading: "lazy" })
          : el("a", { href: link("/api/artifact", shownAt), download: name.split("/").pop(), "aria-label": `Download ${name} at step ${entry.step} of ${label.get(track) || track}` },
            `Download ${name.split("/").pop()} (not shown inline)`);
        return el("figure", { class: "image", "data-run": track, "data-step": entry.step }, picture, caption);
      }));
    };
    slider.addEventListener("input", draw);
    slider.addEventListener("change", draw);
    const group = el("div", { class: "image-group", "data-name": name },
      el("h3", {}, name), el("div", { class: "toolbar" }, el("span", { "aria-hidden": "true" }, "Step"), slider, shown), row);
    section.append(group);
    draw();
  }
  return section;
}
