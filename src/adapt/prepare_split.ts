import * as tf from "@tensorflow/tfjs";
import { type Split, stratifiedSplit } from "./stratified_split.ts";
import type { TrainingSet } from "./training_set.ts";

/** A training set cut into its training and validation parts, as tensors and labels. */
export interface PreparedSplit extends Split {
  /** `[train.length, H, W, C]`. */
  trainX: tf.Tensor4D;
  trainLabels: number[];
  /** `[validation.length, H, W, C]`. */
  valX: tf.Tensor4D;
  valLabels: number[];
  /** Frees `trainX` and `valX`. */
  dispose(): void;
}

/**
 * Splits `data` per class with {@linkcode stratifiedSplit} (`valFraction`, `seed`) and gathers each part's
 * images. Every method is trained and scored, and its linear-probe baseline fitted and scored, on this one
 * split. The images are copies: the caller disposes them with `dispose()`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { prepareSplit } from "./prepare_split.ts";
 * const data = { images: tf.zeros([6, 4, 4, 1]) as tf.Tensor4D, labels: [0, 0, 0, 1, 1, 1], classNames: ["a", "b"] };
 * const split = prepareSplit(data, 0.2, 0);
 * console.assert(split.trainX.shape[0] === 4 && split.valLabels.length === 2);
 * split.dispose();
 * ```
 */
export function prepareSplit(data: TrainingSet, valFraction: number, seed: number): PreparedSplit {
  const split = stratifiedSplit(data.labels, valFraction, seed);
  const trainX = tf.gather(data.images, split.train) as tf.Tensor4D;
  const valX = tf.gather(data.images, split.validation) as tf.Tensor4D;
  return {
    ...split,
    trainX,
    trainLabels: split.train.map((i) => data.labels[i]),
    valX,
    valLabels: split.validation.map((i) => data.labels[i]),
    dispose: () => tf.dispose([trainX, valX]),
  };
}
