import { seededRandom } from "../data/random.ts";

/** Indices of the training and validation parts of a labelled set. */
export interface Split {
  train: number[];
  validation: number[];
}

/**
 * Splits sample indices per class so each class appears in both parts. The rule, which still works at 5
 * shots per class: each class with `n` samples gives `max(1, round(n * fraction))` to validation, but never
 * more than `n - 1`, so a class of 2 samples trains on one and validates on one.
 * Callers reject classes with fewer than 2 samples before splitting.
 *
 * @example
 * ```ts
 * import { stratifiedSplit } from "./stratified_split.ts";
 * const { train, validation } = stratifiedSplit([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], 0.2, 1);
 * console.assert(train.length === 8 && validation.length === 2);
 * ```
 */
export function stratifiedSplit(labels: number[], fraction: number, seed: number): Split {
  const random = seededRandom(seed);
  const byClass = new Map<number, number[]>();
  labels.forEach((y, i) => byClass.set(y, [...(byClass.get(y) ?? []), i]));
  const split: Split = { train: [], validation: [] };
  for (const [, indices] of [...byClass].sort((a, b) => a[0] - b[0])) {
    const shuffled = shuffle(indices, random);
    const n = shuffled.length;
    const nVal = n < 2 ? 0 : Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
    split.validation.push(...shuffled.slice(0, nVal));
    split.train.push(...shuffled.slice(nVal));
  }
  return split;
}

/** Fisher-Yates shuffle into a new array, driven by `random`. */
export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
