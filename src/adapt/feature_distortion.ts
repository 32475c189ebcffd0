import * as tf from "@tensorflow/tfjs";
import { RuntimeError } from "../errors.ts";

/** How far adapted features moved from pretrained ones, per sample, summarised. */
export interface FeatureDistortion {
  cosineMean: number;
  cosineStd: number;
  l2Mean: number;
  l2Std: number;
  samples: number;
}

const meanStd = (v: Float32Array) => {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
  return [mean, Math.sqrt(variance)];
};

/**
 * Per-sample cosine similarity and L2 distance between pretrained and adapted features `[N, D]` of the same
 * images, as mean and (population) standard deviation. Less distortion: cosine near 1, L2 near 0.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { featureDistortion } from "./feature_distortion.ts";
 * const a = tf.tensor2d([[1, 0], [0, 1]]);
 * const d = await featureDistortion(a, a);
 * console.assert(d.cosineMean === 1 && d.l2Mean === 0);
 * ```
 */
export async function featureDistortion(
  pretrained: tf.Tensor2D,
  adapted: tf.Tensor2D,
): Promise<FeatureDistortion> {
  if (pretrained.rank !== 2 || pretrained.shape.join() !== adapted.shape.join()) {
    throw new RuntimeError(
      "invalid",
      "shape_mismatch",
      `feature distortion needs two [N, D] tensors of one shape, got [${pretrained.shape}] and [${adapted.shape}]`,
    );
  }
  const [cos, l2] = tf.tidy(() => {
    const dot = tf.sum(tf.mul(pretrained, adapted), 1);
    const norms = tf.mul(tf.norm(pretrained, 2, 1), tf.norm(adapted, 2, 1));
    return [tf.div(dot, tf.maximum(norms, 1e-12)), tf.norm(tf.sub(pretrained, adapted), 2, 1)];
  });
  const [c, d] = [await cos.data() as Float32Array, await l2.data() as Float32Array];
  tf.dispose([cos, l2]);
  const [cosineMean, cosineStd] = meanStd(c);
  const [l2Mean, l2Std] = meanStd(d);
  return { cosineMean, cosineStd, l2Mean, l2Std, samples: c.length };
}
