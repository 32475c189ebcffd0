/** Whether an adapted model may replace the active one, and why not. */
export interface ActivationGuard {
  /** `ok`: activate as asked; otherwise the model is saved but not activated (unless forced). */
  verdict: "ok" | "at_chance" | "below_baseline";
  /** Chance accuracy, 1 / classes. */
  chance: number;
  /**
   * The validation set's noise, in accuracy: a deficit against the baseline (or a lead over chance) must
   * exceed it to count. One binomial standard deviation of the reference accuracy on the validation set,
   * and never less than one sample.
   */
  margin: number;
  /** The verdict in plain words, for logs, events and the console. */
  message: string;
}

/**
 * The activation guard: a model whose validation accuracy is at chance, or below the linear-probe baseline
 * on the same split by more than the validation set's noise, must not replace the active model.
 *
 * With `n` validation samples, the model's hits `h`, the baseline's hits `b` and `K` classes:
 * - at chance when `h - n / K <= max(1, sqrt(n (1/K) (1 - 1/K)))`;
 * - below the baseline when `b - h > max(1, sqrt(n p (1 - p)))`, where `p = b / n`.
 *
 * @example
 * ```ts
 * import { activationGuard } from "./activation_guard.ts";
 * console.assert(activationGuard({ accuracy: 0.9, baseline: 0.9, samples: 10, classes: 5 }).verdict === "ok");
 * console.assert(activationGuard({ accuracy: 0.2, baseline: 0.9, samples: 10, classes: 5 }).verdict === "at_chance");
 * console.assert(activationGuard({ accuracy: 0.6, baseline: 0.9, samples: 10, classes: 5 }).verdict === "below_baseline");
 * ```
 */
export function activationGuard(
  { accuracy, baseline, samples, classes }: {
    accuracy: number;
    baseline: number;
    samples: number;
    classes: number;
  },
): ActivationGuard {
  const chance = 1 / classes;
  const n = Math.max(samples, 1);
  const hits = Math.round(accuracy * n), baseHits = Math.round(baseline * n);
  const chanceNoise = Math.max(1, Math.sqrt(n * chance * (1 - chance)));
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  if (hits - n * chance <= chanceNoise) {
    return {
      verdict: "at_chance",
      chance,
      margin: chanceNoise / n,
      message:
        `validation accuracy ${pct(accuracy)} is no better than chance (${pct(chance)} with ${classes} ` +
        `classes, ${n} validation images): not activated`,
    };
  }
  const p = baseHits / n;
  const baseNoise = Math.max(1, Math.sqrt(n * p * (1 - p)));
  if (baseHits - hits > baseNoise) {
    return {
      verdict: "below_baseline",
      chance,
      margin: baseNoise / n,
      message:
        `validation accuracy ${pct(accuracy)} is below the linear-probe baseline's ${pct(baseline)} by ` +
        `more than the validation set's noise (${pct(baseNoise / n)} on ${n} images): not activated`,
    };
  }
  return {
    verdict: "ok",
    chance,
    margin: baseNoise / n,
    message:
      `validation accuracy ${pct(accuracy)} against the linear-probe baseline's ${pct(baseline)} and ` +
      `chance ${pct(chance)}`,
  };
}
