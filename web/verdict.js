// A finished job in plain words: is the model any good, and was it activated? Reads the runtime's guard
// (metrics.guard, metrics.baseline) when the server reports one, and estimates it from the numbers otherwise.
import { pct } from "./dom.js";

/** The console's own margin over chance, used only when the server reports no guard. */
const FALLBACK_MARGIN = 0.1;

/**
 * `{ kind: "ok" | "at_chance" | "below_baseline" | "failed", headline, activation, estimated }` for a job.
 *
 * @example
 * verdictOf({ status: "succeeded", metrics: { valAccuracy: 0.33, classNames: ["a", "b", "c"] } }).kind;
 * // "at_chance"
 */
export function verdictOf(job) {
  if (job.status !== "succeeded") {
    const why = job.error ? `: ${job.error.message}` : "";
    return { kind: "failed", headline: `This job ${job.status}${why}.`, activation: "", estimated: false };
  }
  const m = job.metrics ?? {};
  const classes = m.classNames?.length ?? 0;
  const guard = m.guard;
  const chance = guard?.chance ?? (classes ? 1 / classes : 0);
  const baseline = m.baseline?.valAccuracy;
  let kind = guard?.verdict;
  const estimated = !kind;
  if (!kind) {
    if (m.valAccuracy <= chance + FALLBACK_MARGIN) kind = "at_chance";
    else if (baseline !== undefined && m.valAccuracy < baseline) kind = "below_baseline";
    else kind = "ok";
  }
  const acc = pct(m.valAccuracy);
  const headline = {
    ok: `Good: ${acc} right on held-out images, well above chance (${pct(chance)})` +
      (baseline !== undefined ? ` and at least as good as a linear probe (${pct(baseline)}).` : "."),
    at_chance: `No better than chance: ${acc} right where guessing gets ${pct(chance)}. ` +
      "The model has not learned to tell these classes apart.",
    below_baseline:
      `Worse than the simple baseline: ${acc} right, while a linear probe on the same features ` +
      `gets ${pct(baseline)}.`,
  }[kind] ?? guard?.message ?? "";
  // The guard's message is shown once: as the reason a skipped activation gives, or here; and not when a
  // forced activation overrode it (the message ends in "not activated").
  const forced = job.activated && kind !== "ok";
  const detail = guard && !forced && !job.activationSkipped
    ? `The server's check: ${guard.message} (noise margin ±${pct(guard.margin)}).`
    : undefined;
  return { kind, headline, detail, activation: activationOf(job), estimated };
}

function activationOf(job) {
  if (job.activated) return "It was activated: predictions now come from it.";
  if (job.activationSkipped) return `Not activated: ${job.activationSkipped.message}`;
  if (job.activationError) return `Activation failed: ${job.activationError.message}`;
  return job.request?.activate
    ? "Not activated."
    : "Not activated (the job was not asked to); activate it under Models.";
}
