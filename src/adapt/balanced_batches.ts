import { shuffle } from "./stratified_split.ts";

/**
 * One epoch of class-balanced batches over `indices` (into `labels`): every class is drawn equally often,
 * minority classes re-sampled up to the largest class's count, interleaved so each batch mixes classes.
 *
 * @example
 * ```ts
 * import { balancedBatches } from "./balanced_batches.ts";
 * import { seededRandom } from "../data/random.ts";
 * const batches = balancedBatches([0, 0, 0, 0, 1, 1], [0, 1, 2, 3, 4, 5], 4, seededRandom(1));
 * console.assert(batches.flat().length === 8);
 * ```
 */
export function balancedBatches(
  labels: number[],
  indices: number[],
  batchSize: number,
  random: () => number,
  even = false,
): number[][] {
  const byClass = new Map<number, number[]>();
  for (const i of indices) byClass.set(labels[i], [...(byClass.get(labels[i]) ?? []), i]);
  const largest = Math.max(...[...byClass.values()].map((v) => v.length));
  const queues = [...byClass.keys()].sort((a, b) => a - b).map((y) => {
    const pool = byClass.get(y)!;
    const drawn: number[] = [];
    while (drawn.length < largest) drawn.push(...shuffle(pool, random));
    return drawn.slice(0, largest);
  });
  const order: number[] = [];
  for (let k = 0; k < largest; k++) order.push(...shuffle(queues.map((q) => q[k]), random));
  const batches: number[][] = [];
  if (even) {
    // As many batches as `batchSize` needs, of sizes that differ by at most one: 20 images at 16 make two
    // batches of 10, not 16 and 4 (a batch of 4 gives train-mode BN statistics of little worth).
    const count = Math.ceil(order.length / batchSize);
    for (let b = 0, start = 0; b < count; b++) {
      const size = Math.floor(order.length / count) + (b < order.length % count ? 1 : 0);
      batches.push(order.slice(start, start + size));
      start += size;
    }
    return batches;
  }
  for (let s = 0; s < order.length; s += batchSize) batches.push(order.slice(s, s + batchSize));
  // A trailing batch of one would make batch statistics degenerate in train-mode BN.
  if (batches.length > 1 && batches[batches.length - 1].length < 2) {
    batches[batches.length - 2].push(...batches.pop()!);
  }
  return batches;
}

/**
 * How many batches {@linkcode balancedBatches} makes of one epoch over `labels` (every class drawn as often
 * as the largest), without drawing them: what the step floor needs to know before training.
 *
 * @example
 * ```ts
 * import { batchesPerEpoch } from "./balanced_batches.ts";
 * console.assert(batchesPerEpoch([0, 0, 0, 0, 1, 1], 4) === 2 && batchesPerEpoch([0, 1, 0, 1, 0], 5) === 1);
 * ```
 */
export function batchesPerEpoch(labels: number[], batchSize: number, even = false): number {
  const counts = new Map<number, number>();
  for (const y of labels) counts.set(y, (counts.get(y) ?? 0) + 1);
  const total = counts.size * Math.max(...counts.values());
  const count = Math.ceil(total / batchSize);
  // Uneven batches fold a trailing batch of one into the one before it.
  return !even && count > 1 && total % batchSize === 1 ? count - 1 : count;
}
