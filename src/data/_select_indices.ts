// Choosing examples by label, shared by `takePerClass` and the data set readers (which choose before they
// decode anything).
import { RuntimeError } from "../errors.ts";
import type { SubsetOptions } from "./labeled_images.ts";
import { seededRandom } from "./random.ts";

/**
 * Returns the ascending indices of `labels` that `options` selects (see `SubsetOptions`).
 * `classNames` names the classes in error messages; `labels` must lie in `[0, classNames.length)`.
 */
export function selectIndices(
  labels: ArrayLike<number>,
  classNames: string[],
  options: SubsetOptions,
): number[] {
  const { perClass, limit, seed } = options;
  if (perClass !== undefined && (!Number.isInteger(perClass) || perClass < 1)) {
    throw new RuntimeError(
      "invalid",
      "invalid_subset",
      `perClass must be a positive integer, got ${perClass}`,
      {
        perClass,
      },
    );
  }
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new RuntimeError(
      "invalid",
      "invalid_subset",
      `limit must be a non-negative integer, got ${limit}`,
      {
        limit,
      },
    );
  }
  let chosen: number[];
  if (perClass === undefined) {
    chosen = Array.from({ length: Math.min(labels.length, limit ?? Infinity) }, (_, i) => i);
  } else {
    const byClass: number[][] = classNames.map(() => []);
    for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
    const random = seed === undefined ? undefined : seededRandom(seed);
    chosen = [];
    byClass.forEach((indices, label) => {
      if (indices.length < perClass) {
        throw new RuntimeError(
          "invalid",
          "too_few_examples",
          `class '${classNames[label]}' has ${indices.length} examples, fewer than the ${perClass} asked for`,
          { className: classNames[label], available: indices.length, perClass },
        );
      }
      if (random) shuffleInPlace(indices, random);
      chosen.push(...indices.slice(0, perClass));
    });
    chosen.sort((a, b) => a - b);
    if (limit !== undefined) chosen = chosen.slice(0, limit);
  }
  return chosen;
}

function shuffleInPlace(items: number[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}
