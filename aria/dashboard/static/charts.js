// Small horizontal bar charts drawn as SVG from numbers (no library, no canvas): each
// chart has a title and a text summary for screen readers, and the same numbers are in
// the table beside it.

import { h } from "./dom.js";

const WIDTH = 640;
const LABEL = 190;
const BAR = 18;
const GAP = 8;

let counter = 0;

// rows: [{label, values: [number|null, ...]}]; series: [{name, cls}]
export function barChart({ title, unit, series, rows, max = null, show = (v) => String(v) }) {
  const id = `chart-${++counter}`;
  const values = rows.flatMap((row) => row.values).filter((v) => Number.isFinite(v));
  const top = max ?? Math.max(1e-9, ...values);
  const rowHeight = series.length * (BAR + 2) + GAP;
  const height = rows.length * rowHeight + 28;
  const span = WIDTH - LABEL - 80;
  const svg = h("svg", {
    svg: true, viewBox: `0 0 ${WIDTH} ${height}`, width: "100%", role: "img", "aria-labelledby": `${id}-title ${id}-desc`, class: "chart",
  });
  const summary = rows.map((row) => `${row.label}: ${row.values.map((v, n) => `${series[n].name} ${Number.isFinite(v) ? show(v) : "n/a"}`).join(", ")}`).join("; ");
  svg.append(h("title", { svg: true, id: `${id}-title` }, `${title} (${unit})`), h("desc", { svg: true, id: `${id}-desc` }, summary));
  rows.forEach((row, r) => {
    const y0 = r * rowHeight + 4;
    svg.append(h("text", { svg: true, x: 0, y: y0 + BAR - 4, class: "chart-label" }, row.label.length > 26 ? `${row.label.slice(0, 25)}…` : row.label));
    row.values.forEach((value, n) => {
      const y = y0 + n * (BAR + 2);
      const ok = Number.isFinite(value);
      const w = ok ? Math.max(1, (Math.min(value, top) / top) * span) : 0;
      svg.append(h("rect", { svg: true, x: LABEL, y, width: w, height: BAR, rx: 2, class: `bar ${series[n].cls}` }));
      svg.append(h("text", { svg: true, x: LABEL + w + 6, y: y + BAR - 4, class: "chart-value" }, ok ? show(value) : "n/a"));
    });
  });
  const legend = series.length > 1
    ? h("p", { class: "legend small" }, series.map((s) => h("span", {}, h("span", { class: `swatch ${s.cls}`, "aria-hidden": "true" }), s.name)))
    : null;
  return h("figure", { class: "chart-box" }, h("figcaption", {}, `${title} (${unit})`), svg, legend);
}
