import { RuntimeError } from "../errors.ts";
import type { LabeledImages } from "./labeled_images.ts";
import { selectIndices } from "./_select_indices.ts";

/**
 * A stratified subset: `n` examples of every class of `ds`, chosen at random with a seeded generator, so
 * the same seed gives the same subset. The examples keep their order in `ds`; `classNames` is unchanged.
 *
 * Shapes: the result has `n * ds.classNames.length` images and labels; images are shared, not copied.
 *
 * @throws {RuntimeError} `invalid`/`too_few_examples` when a class has fewer than `n` examples;
 *   `invalid`/`invalid_subset` when `n` is not a positive integer or `ds` is inconsistent (label out of
 *   range, images and labels of different lengths).
 *
 * @example
 * ```ts
 * import { takePerClass } from "./take_per_class.ts";
 * const pixel = (v: number) => ({ width: 1, height: 1, data: new Uint8Array([v, v, v]) });
 * const ds = { images: [0, 1, 2, 3, 4, 5].map(pixel), labels: [0, 1, 0, 1, 0, 1], classNames: ["a", "b"] };
 * const two = takePerClass(ds, 2, 7);
 * console.assert(two.labels.filter((l) => l === 0).length === 2 && two.images.length === 4);
 * ```
 */
export function takePerClass(ds: LabeledImages, n: number, seed: number): LabeledImages {
  if (ds.images.length !== ds.labels.length) {
    throw new RuntimeError(
      "invalid",
      "invalid_subset",
      `data set has ${ds.images.length} images but ${ds.labels.length} labels`,
      { images: ds.images.length, labels: ds.labels.length },
    );
  }
  const bad = ds.labels.findIndex((l) => !Number.isInteger(l) || l < 0 || l >= ds.classNames.length);
  if (bad >= 0) {
    throw new RuntimeError(
      "invalid",
      "invalid_subset",
      `label ${ds.labels[bad]} at index ${bad} is not a class index in [0, ${ds.classNames.length})`,
      { index: bad, label: ds.labels[bad] },
    );
  }
  const chosen = selectIndices(ds.labels, ds.classNames, { perClass: n, seed });
  return {
    images: chosen.map((i) => ds.images[i]),
    labels: chosen.map((i) => ds.labels[i]),
    classNames: [...ds.classNames],
  };
}
