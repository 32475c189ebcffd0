import * as tf from "@tensorflow/tfjs";

/** Which augmentations to apply during training. Flips break tasks like digits or text: off by default. */
export interface AugmentOptions {
  /** Random crop of 85-100% of the side, resized back (a small zoom and shift). */
  crop: boolean;
  /** Random horizontal flip. */
  flip: boolean;
}

/**
 * Augments a batch `[N, H, W, C]` with random crops and/or flips drawn from `random`; returns a new tensor.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { augmentBatch } from "./augment.ts";
 * import { seededRandom } from "../data/random.ts";
 * const out = augmentBatch(tf.zeros([2, 8, 8, 1]), { crop: true, flip: true }, seededRandom(1));
 * console.assert(out.shape.join() === "2,8,8,1");
 * ```
 */
export function augmentBatch(
  images: tf.Tensor4D,
  options: AugmentOptions,
  random: () => number,
): tf.Tensor4D {
  const [n, h, w] = images.shape;
  if (!options.crop && !options.flip) return images.clone();
  const boxes: number[][] = [];
  for (let i = 0; i < n; i++) {
    const side = options.crop ? 0.85 + 0.15 * random() : 1;
    const y1 = (1 - side) * random(), x1 = (1 - side) * random();
    const flip = options.flip && random() < 0.5;
    // crop_and_resize flips a box whose x1 > x2.
    boxes.push(flip ? [y1, x1 + side, y1 + side, x1] : [y1, x1, y1 + side, x1 + side]);
  }
  return tf.tidy(() =>
    tf.image.cropAndResize(images, tf.tensor2d(boxes), tf.range(0, n, 1, "int32") as tf.Tensor1D, [h, w])
  );
}
