import * as tf from "@tensorflow/tfjs";

/** A fitted multinomial logistic regression: logits = features @ kernel + bias. */
export interface LinearHead {
  kernel: tf.Tensor2D;
  bias: tf.Tensor1D;
  /** The L2 strength that won on validation. */
  l2: number;
  validationAccuracy: number;
}

/** Candidate L2 strengths tried by {@linkcode fitLogisticRegression} (on the mean loss). */
export const L2_GRID = [1e-4, 1e-3, 1e-2, 1e-1];

function fitOne(x: tf.Tensor2D, y: tf.Tensor2D, l2: number, steps: number) {
  const [d, c] = [x.shape[1], y.shape[1]];
  const [kernel, bias] = tf.tidy(() => [tf.variable(tf.zeros([d, c])), tf.variable(tf.zeros([c]))]);
  const optimizer = tf.train.adam(0.05);
  for (let s = 0; s < steps; s++) {
    optimizer.minimize(() =>
      tf.add(
        tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(x, kernel), bias)),
        tf.mul(l2 / 2, tf.sum(tf.square(kernel))),
      ) as tf.Scalar
    );
  }
  optimizer.dispose();
  const out = { kernel: kernel.clone() as tf.Tensor2D, bias: bias.clone() as tf.Tensor1D };
  tf.dispose([kernel, bias]);
  return out;
}

async function accuracy(
  x: tf.Tensor2D,
  labels: number[],
  kernel: tf.Tensor,
  bias: tf.Tensor,
): Promise<number> {
  const predicted = tf.tidy(() => tf.argMax(tf.add(tf.matMul(x, kernel), bias), 1));
  const p = await predicted.data();
  predicted.dispose();
  return labels.reduce((n, y, i) => n + (p[i] === y ? 1 : 0), 0) / Math.max(labels.length, 1);
}

/**
 * L2-regularised logistic regression on frozen features (the LP baseline and LP-FT's first stage).
 * Each L2 strength in {@linkcode L2_GRID} is fitted on `train` (full batch, Adam) and scored on `validation`;
 * the best (ties go to the stronger penalty) is returned.
 *
 * @param train features `[N, D]` and labels (class indices below `classes`)
 * @param validation features `[M, D]` and labels; the winner is chosen on these
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fitLogisticRegression } from "./logistic_regression.ts";
 * const x = tf.tensor2d([[0, 1], [1, 0], [0, 2], [2, 0]]);
 * const head = await fitLogisticRegression({ x, labels: [0, 1, 0, 1] }, { x, labels: [0, 1, 0, 1] }, 2);
 * console.assert(head.validationAccuracy === 1);
 * ```
 */
export async function fitLogisticRegression(
  train: { x: tf.Tensor2D; labels: number[] },
  validation: { x: tf.Tensor2D; labels: number[] },
  classes: number,
  steps = 200,
): Promise<LinearHead> {
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(train.labels, "int32"), classes).toFloat() as tf.Tensor2D);
  let best: LinearHead | undefined;
  for (const l2 of [...L2_GRID].reverse()) {
    const fitted = fitOne(train.x, y, l2, steps);
    const acc = await accuracy(validation.x, validation.labels, fitted.kernel, fitted.bias);
    if (!best || acc > best.validationAccuracy) {
      if (best) tf.dispose([best.kernel, best.bias]);
      best = { ...fitted, l2, validationAccuracy: acc };
    } else {
      tf.dispose([fitted.kernel, fitted.bias]);
    }
  }
  y.dispose();
  return best!;
}
