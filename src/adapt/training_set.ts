import type * as tf from "@tensorflow/tfjs";

/**
 * Labelled images, already preprocessed for the backbone (`imagesToTensor` with `backbone.input`): what
 * `adapt` learns from.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import type { TrainingSet } from "./training_set.ts";
 * const set: TrainingSet = { images: tf.zeros([2, 28, 28, 1]), labels: [0, 1], classNames: ["a", "b"] };
 * console.assert(set.images.shape[0] === set.labels.length);
 * ```
 */
export interface TrainingSet {
  /** `[N, H, W, C]` matching the backbone's input spec. */
  images: tf.Tensor4D;
  /** Class index of each image, in `[0, classNames.length)`. */
  labels: number[];
  classNames: string[];
}
