// Charts drawn as SVG and HTML: line curves, a heat map, horizontal bars. No library: a few dozen lines each,
// and nothing to fetch from a CDN.
import { h, pct, svg } from "./dom.js";

const W = 320;
const H = 160;
const PAD = { left: 34, right: 8, top: 8, bottom: 20 };

/**
 * A line chart of several series on shared axes, as an SVG element.
 * `series`: `[{ name, points: [[x, y], ...], color, dashed? }]`; `y` spans `yRange` (default: the data's);
 * `xLabel` names the x axis (default: epochs).
 *
 * @example
 * lineChart({ series: [{ name: "loss", points: [[0, 1], [1, 0.5]], color: "#c33" }], xMax: 4 });
 */
export function lineChart({ series, xMax, yRange, label, xLabel }) {
  const all = series.flatMap((s) => s.points);
  const xs = Math.max(xMax ?? 0, ...all.map((p) => p[0]), 1);
  let [y0, y1] = yRange ?? [Math.min(0, ...all.map((p) => p[1])), Math.max(1e-6, ...all.map((p) => p[1]))];
  if (y1 <= y0) y1 = y0 + 1;
  const x = (v) => PAD.left + (v / xs) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - ((v - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  const grid = [0, 0.5, 1].map((f) => {
    const v = y0 + f * (y1 - y0);
    return [
      svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }),
      svg("text", { x: PAD.left - 4, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(v >= 10 ? 0 : 2)),
    ];
  });
  const lines = series.filter((s) => s.points.length).map((s) =>
    svg("polyline", {
      points: s.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(" "),
      stroke: s.color,
      "stroke-dasharray": s.dashed ? "4 3" : "none",
      class: "series",
      "data-series": s.name,
      "data-count": s.points.length,
    })
  );
  const axis = svg(
    "text",
    { x: W - PAD.right, y: H - 4, "text-anchor": "end" },
    xLabel ?? `epoch (of ${xs})`,
  );
  const legend = h(
    "div",
    { class: "legend" },
    series.map((s) => h("span", {}, h("i", { style: `background:${s.color}` }), s.name)),
  );
  return h(
    "figure",
    { class: "chart" },
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label }, grid, lines, axis),
    legend,
  );
}

/**
 * The confusion matrix as a heat map table: rows are the true class, columns the predicted one; a cell's
 * shade is its share of the row, green on the diagonal and red off it.
 */
export function confusionHeatmap(confusion, classNames) {
  const head = h(
    "tr",
    {},
    h("th", { scope: "col" }, "true ↓ / predicted →"),
    classNames.map((c) => h("th", { scope: "col" }, c)),
  );
  const rows = confusion.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    return h(
      "tr",
      {},
      h("th", { scope: "row" }, classNames[i]),
      row.map((count, j) => {
        const share = count / total;
        const hue = i === j ? 140 : 0;
        const style = count ? `background: hsl(${hue} 60% ${95 - share * 50}%)` : "";
        return h("td", { style, title: `${count} of ${total} (${pct(share)})` }, String(count));
      }),
    );
  });
  return h(
    "div",
    { class: "heatmap-wrap" },
    h("table", { class: "heatmap" }, h("thead", {}, head), h("tbody", {}, rows)),
  );
}

/**
 * Horizontal bars, one row per item: `[{ label, value (0..1), note?, kind? }]`; an optional marker line
 * (e.g. chance) across all of them.
 */
export function bars(items, { marker, markerLabel } = {}) {
  return h(
    "div",
    { class: "bars" },
    items.map((item) =>
      h(
        "div",
        { class: `bar ${item.kind ?? ""}` },
        h("span", { class: "bar-label", title: item.label }, item.label),
        h(
          "span",
          { class: "bar-track" },
          h("span", { class: "bar-fill", style: `width: ${Math.max(0, Math.min(1, item.value)) * 100}%` }),
          marker !== undefined
            ? h("span", { class: "bar-marker", style: `left: ${marker * 100}%`, title: markerLabel })
            : null,
        ),
        h("span", { class: "bar-value" }, item.note ?? pct(item.value)),
      )
    ),
  );
}
