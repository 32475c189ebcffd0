import * as tf from "@tensorflow/tfjs";
import { RuntimeError } from "../errors.ts";

/** A BatchNormalization layer's eval-mode parameters; absent `gamma`/`beta` mean 1 and 0. */
export interface BatchNormWeights {
  gamma?: tf.Tensor1D;
  beta?: tf.Tensor1D;
  movingMean: tf.Tensor1D;
  movingVariance: tf.Tensor1D;
  epsilon: number;
}

/**
 * Folds an eval-mode batch norm into the linear layer before it, so that one layer computes both:
 *
 *   s = gamma / sqrt(var + eps),  kernel' = kernel * s,  bias' = (bias - mean) * s + beta
 *
 * `kernel`'s trailing axes, flattened, must index the output channels: `[kh, kw, in, out]` for a
 * convolution, `[kh, kw, in, multiplier]` for a depthwise one (output channel `c * multiplier + m`),
 * `[in, out]` for a dense layer. `bias` (`[channels]`) may be null, as for a layer built with
 * `useBias: false`. Returns new tensors the caller owns; the inputs are not changed.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initBackend } from "../backend/init_backend.ts";
 * import { foldBatchNorm } from "./fold_batch_norm.ts";
 * await initBackend("auto");
 * const { kernel, bias } = foldBatchNorm(tf.ones([1, 1, 1, 2]), null, {
 *   gamma: tf.tensor1d([2, 1]), beta: tf.tensor1d([1, 0]),
 *   movingMean: tf.tensor1d([0, 3]), movingVariance: tf.tensor1d([1, 4]), epsilon: 0,
 * });
 * console.assert((await kernel.data()).join() === "2,0.5" && (await bias.data()).join() === "1,-1.5");
 * ```
 */
export function foldBatchNorm(
  kernel: tf.Tensor,
  bias: tf.Tensor1D | null,
  bn: BatchNormWeights,
): { kernel: tf.Tensor; bias: tf.Tensor1D } {
  const channels = bn.movingMean.shape[0];
  let trailing = 1;
  for (let axis = kernel.rank - 1; axis >= 0 && trailing < channels; axis--) trailing *= kernel.shape[axis];
  const vectors = { bias, gamma: bn.gamma, beta: bn.beta, movingVariance: bn.movingVariance };
  const mismatch = Object.entries(vectors).find(([, v]) => v && (v.rank !== 1 || v.shape[0] !== channels));
  if (trailing !== channels || mismatch) {
    throw new RuntimeError(
      "invalid",
      "shape_mismatch",
      `cannot fold a batch norm of ${channels} channels into kernel [${kernel.shape}]` +
        (mismatch ? `: ${mismatch[0]} is [${mismatch[1]!.shape}]` : ": its trailing axes do not match"),
    );
  }
  return tf.tidy(() => {
    let scale = tf.rsqrt(tf.add(bn.movingVariance, bn.epsilon));
    if (bn.gamma) scale = tf.mul(scale, bn.gamma);
    const folded = tf.reshape(tf.mul(tf.reshape(kernel, [-1, channels]), scale), kernel.shape);
    let shift = tf.mul(bias ? tf.sub(bias, bn.movingMean) : tf.neg(bn.movingMean), scale);
    if (bn.beta) shift = tf.add(shift, bn.beta);
    return { kernel: folded, bias: shift as tf.Tensor1D };
  });
}
