import type { AdaptProgress } from "../src/adapt/adapt.ts";

/** A plain-text table with aligned columns. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]) => r.map((v, c) => v.padEnd(widths[c])).join("  ").trimEnd();
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join(
    "\n",
  ) + "\n";
}

const encoder = new TextEncoder();

/** Redraws one progress line on stderr for an adaptation progress event. */
export function progressLine(p: AdaptProgress, started: number): void {
  const elapsed = ((performance.now() - started) / 1000).toFixed(0);
  let text = `${p.phase}`;
  if (p.phase === "training" && p.epoch !== undefined) {
    const width = 24;
    const done = p.steps ? Math.round((p.step ?? 0) / p.steps * width) : width;
    const bar = "#".repeat(done) + ".".repeat(width - done);
    text = `epoch ${p.epoch + 1}/${p.epochs} [${bar}] ${p.step ?? p.steps}/${p.steps ?? ""}` +
      (p.loss !== undefined ? ` loss ${p.loss.toFixed(4)}` : "") +
      (p.record ? ` val acc ${p.record.valAccuracy.toFixed(3)}` : "");
  }
  Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${text}  ${elapsed}s`));
  if (p.record) Deno.stderr.writeSync(encoder.encode("\n"));
}
