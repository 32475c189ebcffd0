import type { AdaptProgress } from "../src/adapt/adapt_options.ts";

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

/**
 * A progress reporter for `adapt()`'s events, writing to stderr. On a terminal it redraws one line (a bar
 * per epoch); otherwise (a pipe or a file) it writes plain lines, one per phase and one per finished epoch,
 * with no escape codes.
 */
export function progressReporter(
  started: number,
  out: { writeSync(p: Uint8Array): number; isTerminal(): boolean } = Deno.stderr,
): (p: AdaptProgress) => void {
  const terminal = out.isTerminal();
  let lastPhase = "";
  const write = (text: string) => out.writeSync(encoder.encode(text));
  return (p) => {
    const elapsed = `${((performance.now() - started) / 1000).toFixed(0)}s`;
    if (!terminal) {
      if (p.record) write(`${describe(p)}  ${elapsed}\n`);
      else if (p.phase !== lastPhase && p.phase !== "training") write(`${p.phase}  ${elapsed}\n`);
      lastPhase = p.phase;
      return;
    }
    write(`\r\x1b[2K${describe(p)}  ${elapsed}`);
    if (p.record) write("\n");
  };
}

// One line for an event: the phase, or during training the epoch, a bar over its steps, the loss, and at the
// epoch's end its validation accuracy.
function describe(p: AdaptProgress): string {
  if (p.phase !== "training" || p.epoch === undefined) return p.phase;
  const width = 24;
  const fraction = p.record ? 1 : p.steps ? (p.step ?? 0) / p.steps : 0;
  const done = Math.round(fraction * width);
  const steps = p.steps ? ` ${p.step ?? 0}/${p.steps}` : "";
  const loss = p.record ? p.record.trainLoss : p.loss;
  return `epoch ${p.epoch + 1}/${p.epochs} [${"#".repeat(done)}${".".repeat(width - done)}]${steps}` +
    (loss !== undefined ? ` loss ${loss.toFixed(4)}` : "") +
    (p.record ? ` val acc ${p.record.valAccuracy.toFixed(3)}` : "");
}
