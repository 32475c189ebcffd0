import type { RgbImage } from "./image.ts";

/**
 * A labelled image data set: `images[i]` is an example of class `classNames[labels[i]]`.
 *
 * Shapes: `images.length === labels.length`; every label is an integer in `[0, classNames.length)`.
 * Grey sources (MNIST, Fashion-MNIST, optdigits) are stored as RGB with R = G = B, so every reader and
 * every backbone sees the same pixel format.
 *
 * @example
 * ```ts
 * import type { LabeledImages } from "./labeled_images.ts";
 * const pixel = (v: number) => ({ width: 1, height: 1, data: new Uint8Array([v, v, v]) });
 * const ds: LabeledImages = { images: [pixel(0), pixel(255)], labels: [0, 1], classNames: ["dark", "light"] };
 * console.assert(ds.classNames[ds.labels[1]] === "light");
 * ```
 */
export interface LabeledImages {
  /** The examples, each RGB. */
  images: RgbImage[];
  /** `labels[i]` is the class index of `images[i]`. */
  labels: number[];
  /** Class names, indexed by label. */
  classNames: string[];
}

/**
 * Which part of a data set a reader returns. The readers choose examples from the labels alone and decode
 * only those, so asking for a few examples of a 60 000-image set stays fast.
 *
 * - `perClass`: `n` examples of every class (the first `n` in file order, or a seeded random `n` when
 *   `seed` is given); a class with fewer than `n` is an error.
 * - `limit`: at most `limit` examples, the first ones in file order (after `perClass`, when both are given).
 *
 * The examples come back in file order.
 *
 * @example
 * ```ts
 * import type { SubsetOptions } from "./labeled_images.ts";
 * const fewShot: SubsetOptions = { perClass: 5, seed: 1 };
 * const firstHundred: SubsetOptions = { limit: 100 };
 * console.assert(fewShot.perClass === 5 && firstHundred.limit === 100);
 * ```
 */
export interface SubsetOptions {
  /** Examples per class; a positive integer. */
  perClass?: number;
  /** Most examples in all; a non-negative integer. */
  limit?: number;
  /** Seed for choosing `perClass` examples at random (see `seededRandom`); without it, the first ones. */
  seed?: number;
}
