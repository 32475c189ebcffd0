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

/**
 * One multinomial logistic regression per L2 strength in `l2s`, each fitted on features `x` `[N, D]` and
 * `labels` by `steps` full-batch Adam steps (rate 0.05) on the mean cross-entropy plus `l2 / 2 * |kernel|^2`,
 * from zero. The kernel and bias of each, in the order of `l2s`, are the caller's to dispose.
 *
 * The fits run as one: their kernels side by side as one `[D, G * C]` variable, their biases as one
 * `[G, C]`, so that a step dispatches one set of kernels for all `G` fits (the fits are tiny: a step costs
 * its dispatches, not its arithmetic). Each fit still takes exactly the float operations it would take alone
 * (the matmuls' dot products over the same `N` images, the cross-entropy over the same class rows, each
 * fit's loss the mean `sum / N`, the same bias sums and penalty gradient `l2 / 2 * 2k`), so the fits neither
 * mix nor differ from separate ones by a bit (tests/adapt_logistic_regression.test.ts).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fitLogisticRegressions } from "./logistic_regression.ts";
 * const x = tf.tensor2d([[0, 1], [1, 0], [0, 2], [2, 0]]);
 * const [strong, weak] = fitLogisticRegressions(x, [0, 1, 0, 1], 2, [1, 1e-4], 50);
 * const norm = (k: tf.Tensor) => tf.norm(k).dataSync()[0];
 * console.assert(norm(strong.kernel) < norm(weak.kernel));
 * tf.dispose([x, strong.kernel, strong.bias, weak.kernel, weak.bias]);
 * ```
 */
export function fitLogisticRegressions(
  x: tf.Tensor2D,
  labels: number[],
  classes: number,
  l2s: number[],
  steps = 200,
): { kernel: tf.Tensor2D; bias: tf.Tensor1D }[] {
  const [n, d, c, g] = [x.shape[0], x.shape[1], classes, l2s.length];
  const [kernel, bias, y, inverseN, halfL2] = tf.tidy(() => [
    tf.variable(tf.zeros([d, g * c])),
    tf.variable(tf.zeros([g, c])),
    tf.tile(tf.reshape(tf.oneHot(tf.tensor1d(labels, "int32"), c).toFloat(), [n, 1, c]), [1, g, 1]),
    tf.div(1, tf.scalar(n)),
    tf.tensor1d(l2s.flatMap((l2) => new Array<number>(c).fill(l2 / 2))),
  ]);
  const optimizer = tf.train.adam(0.05);
  for (let s = 0; s < steps; s++) {
    // The gradient of the mean cross-entropy plus the penalty, in the operations tfjs's own gradients of
    // `softmaxCrossEntropy`, `matMul`, the bias `add` and `square` take (a tape would cost more kernels
    // than the step): `(exp(logits - logSumExp) - y) / N` per logit, then the two matmul and sum reductions.
    const gradients = tf.tidy(() => {
      const logits = tf.add(tf.reshape(tf.matMul(x, kernel), [n, g, c]), bias);
      const logResult = tf.sub(logits, tf.logSumExp(logits, -1, true));
      const dLogits = tf.mul(inverseN, tf.sub(tf.exp(logResult), y));
      const dPenalty = tf.mul(halfL2, tf.mul(kernel, 2));
      return [
        {
          name: kernel.name,
          tensor: tf.add(tf.matMul(x, tf.reshape(dLogits, [n, g * c]), true, false), dPenalty),
        },
        { name: bias.name, tensor: tf.sum(dLogits, 0) },
      ];
    });
    optimizer.applyGradients(gradients);
    tf.dispose(gradients.map((v) => v.tensor));
  }
  optimizer.dispose();
  // Slices, not reshapes: a reshape shares its input's data, which the wasm backend keeps under the input's
  // shape, and its fused matmul rejects a bias whose data is not rank 1.
  const flatBias = tf.reshape(bias, [g * c]);
  const fits = l2s.map((_, i) => ({
    kernel: tf.slice(kernel, [0, i * c], [d, c]) as tf.Tensor2D,
    bias: tf.slice(flatBias, [i * c], [c]) as tf.Tensor1D,
  }));
  flatBias.dispose();
  tf.dispose([kernel, bias, y, inverseN, halfL2]);
  return fits;
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
 * Each L2 strength in {@linkcode L2_GRID} is fitted on `train` ({@linkcode fitLogisticRegressions}: full
 * batch, Adam, all strengths at once) and scored on `validation`;
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
  // Strongest penalty first: on a tie the earlier (stronger) one is kept.
  const l2s = [...L2_GRID].reverse();
  const fits = fitLogisticRegressions(train.x, train.labels, classes, l2s, steps);
  let best: LinearHead | undefined;
  for (const [i, { kernel, bias }] of fits.entries()) {
    const acc = await accuracy(validation.x, validation.labels, kernel, bias);
    if (!best || acc > best.validationAccuracy) {
      if (best) tf.dispose([best.kernel, best.bias]);
      best = { kernel, bias, l2: l2s[i], validationAccuracy: acc };
    } else {
      tf.dispose([kernel, bias]);
    }
  }
  return best!;
}
