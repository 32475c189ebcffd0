/**
 * Area under the ROC curve of separating `positives` from `negatives` by score: the chance that a random
 * positive scores above a random negative, ties counting half (the Mann-Whitney U statistic over n m).
 *
 * @example
 * ```ts
 * import { auroc } from "./_auroc.ts";
 * console.assert(auroc([2, 3], [0, 1]) === 1 && auroc([1], [1]) === 0.5 && auroc([0], [1]) === 0);
 * ```
 */
export function auroc(positives: number[], negatives: number[]): number {
  if (positives.length === 0 || negatives.length === 0) return NaN;
  if ([...positives, ...negatives].some((s) => !Number.isFinite(s))) {
    throw new RangeError("auroc: every score must be a finite number");
  }
  const all = [...positives.map((s) => ({ s, p: 1 })), ...negatives.map((s) => ({ s, p: 0 }))]
    .sort((a, b) => a.s - b.s);
  // Average ranks (1-based) over ties, then U from the positives' rank sum.
  let rankSum = 0;
  for (let i = 0; i < all.length;) {
    let j = i + 1;
    while (j < all.length && all[j].s === all[i].s) j++;
    const rank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (all[k].p) rankSum += rank;
    i = j;
  }
  const n = positives.length, m = negatives.length;
  return (rankSum - n * (n + 1) / 2) / (n * m);
}
