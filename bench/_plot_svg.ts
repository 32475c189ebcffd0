// A dependency-free SVG scatter plot in small multiples, for the methods benchmark's picture of OOD accuracy
// against feature distortion. Only what that picture needs: linear axes, one panel per group, a legend.

/** One point: a method's mean over seeds in one regime of one shift. */
export interface ScatterPoint {
  /** The panel the point belongs to (a shift). */
  panel: string;
  /** The series (a method): its colour and legend entry. */
  series: string;
  x: number;
  y: number;
  /** Error bars, one standard deviation each way. */
  xErr?: number;
  yErr?: number;
  /** A short label drawn beside the point (the regime, e.g. "10"). */
  label?: string;
}

/** What to draw; the panels keep the order of their first point. */
export interface ScatterPlot {
  title: string;
  xLabel: string;
  yLabel: string;
  points: ScatterPoint[];
  /** Series in legend order, each with its colour. */
  series: { name: string; colour: string }[];
  /** Lowest x the data can take (e.g. 0 for a distortion): the axis and the error bars stop there. */
  xFloor?: number;
  /** Panel titles by panel key (lines split at "\n", the first in bold); default: the key. */
  panelTitles?: Record<string, string>;
}

const PANEL = { width: 330, height: 270, left: 52, right: 12, top: 44, bottom: 44 };

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const fmt = (v: number) => Number(v.toFixed(2)).toString();

/** Rounded axis limits and about five ticks covering `[lo, hi]`. */
function niceAxis(lo: number, hi: number): { min: number; max: number; ticks: number[] } {
  if (!(hi > lo)) [lo, hi] = [lo - 0.05, hi + 0.05];
  const raw = (hi - lo) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const min = Math.floor(lo / step) * step, max = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let t = min; t <= max + step / 2; t += step) ticks.push(Number(t.toPrecision(6)));
  return { min, max, ticks };
}

/**
 * Renders the plot as a standalone SVG document: one panel per `panel` key, side by side, each with its own
 * axes (domains differ between shifts), points coloured by series, error bars and labels, and a legend.
 */
export function scatterSvg(plot: ScatterPlot): string {
  const panels = [...new Set(plot.points.map((p) => p.panel))];
  const legendHeight = 28;
  const width = Math.max(1, panels.length) * PANEL.width;
  const height = PANEL.height + legendHeight + 30;
  const colour = new Map(plot.series.map((s) => [s.name, s.colour]));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${
      escape(plot.title)
    }</text>`,
  ];
  panels.forEach((panel, k) => {
    const points = plot.points.filter((p) => p.panel === panel);
    const floor = plot.xFloor ?? -Infinity;
    const xs = points.flatMap((p) => [Math.max(floor, p.x - (p.xErr ?? 0)), p.x + (p.xErr ?? 0)]);
    const ys = points.flatMap((p) => [p.y - (p.yErr ?? 0), p.y + (p.yErr ?? 0)]);
    const xAxis = niceAxis(Math.max(floor, Math.min(...xs)), Math.max(...xs));
    const yAxis = niceAxis(Math.max(0, Math.min(...ys)), Math.min(1, Math.max(...ys)));
    const ox = k * PANEL.width + PANEL.left, oy = 30 + PANEL.top;
    const w = PANEL.width - PANEL.left - PANEL.right, h = PANEL.height - PANEL.top - PANEL.bottom;
    const sx = (v: number) => ox + (v - xAxis.min) / (xAxis.max - xAxis.min) * w;
    const sy = (v: number) => oy + h - (v - yAxis.min) / (yAxis.max - yAxis.min) * h;
    out.push(
      ...(plot.panelTitles?.[panel] ?? panel).split("\n").map((line, i, all) =>
        `<text x="${ox + w / 2}" y="${oy - 6 - 13 * (all.length - 1 - i)}" text-anchor="middle"${
          i === 0 ? ' font-weight="bold"' : ""
        }>${escape(line)}</text>`
      ),
      `<rect x="${ox}" y="${oy}" width="${w}" height="${h}" fill="none" stroke="#888"/>`,
    );
    for (const t of xAxis.ticks) {
      out.push(
        `<line x1="${sx(t)}" y1="${oy}" x2="${sx(t)}" y2="${oy + h}" stroke="#eee"/>`,
        `<text x="${sx(t)}" y="${oy + h + 14}" text-anchor="middle">${fmt(t)}</text>`,
      );
    }
    for (const t of yAxis.ticks) {
      out.push(
        `<line x1="${ox}" y1="${sy(t)}" x2="${ox + w}" y2="${sy(t)}" stroke="#eee"/>`,
        `<text x="${ox - 5}" y="${sy(t) + 4}" text-anchor="end">${fmt(t)}</text>`,
      );
    }
    out.push(
      `<text x="${ox + w / 2}" y="${oy + h + 32}" text-anchor="middle">${escape(plot.xLabel)}</text>`,
      `<text transform="translate(${ox - 38} ${oy + h / 2}) rotate(-90)" text-anchor="middle">${
        escape(plot.yLabel)
      }</text>`,
    );
    for (const p of points) {
      const c = colour.get(p.series) ?? "#000";
      const [px, py] = [sx(p.x), sy(p.y)];
      if (p.xErr) {
        out.push(
          `<line x1="${sx(Math.max(floor, p.x - p.xErr))}" y1="${py}" x2="${
            sx(p.x + p.xErr)
          }" y2="${py}" stroke="${c}" stroke-opacity="0.5"/>`,
        );
      }
      if (p.yErr) {
        out.push(
          `<line x1="${px}" y1="${sy(p.y - p.yErr)}" x2="${px}" y2="${
            sy(p.y + p.yErr)
          }" stroke="${c}" stroke-opacity="0.5"/>`,
        );
      }
      out.push(`<circle cx="${px}" cy="${py}" r="4" fill="${c}" stroke="white" stroke-width="0.8"/>`);
      if (p.label) {
        out.push(`<text x="${px + 5}" y="${py - 4}" font-size="9" fill="${c}">${escape(p.label)}</text>`);
      }
    }
  });
  let lx = 20;
  const ly = height - 14;
  for (const s of plot.series) {
    out.push(
      `<circle cx="${lx}" cy="${ly - 4}" r="5" fill="${s.colour}"/>`,
      `<text x="${lx + 9}" y="${ly}">${escape(s.name)}</text>`,
    );
    lx += 26 + 6.2 * s.name.length;
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}
