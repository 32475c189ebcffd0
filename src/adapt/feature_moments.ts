import * as tf from "@tensorflow/tfjs";

/** Per-channel statistics of a backbone's features over a set of images. */
export interface FeatureMoments {
  /** Per-channel mean `[D]`. */
  mean: Float32Array;
  /** Per-channel scale `[D]`: the standard deviation, floored (see {@linkcode featureMoments}). */
  scale: Float32Array;
  /** Mean over images of `|f|^2` (at least 1e-6). */
  meanSquaredNorm: number;
  /** Mean over images of `|(f - mean) / scale|^2` (at least 1e-6). */
  standardizedSquaredNorm: number;
}

/**
 * Per-channel mean and scale of `model`'s features `[N, D]` over `images` `[N, H, W, C]` (eval mode), and
 * the mean squared norms of the raw and the standardised features. A channel that barely varies on these
 * images (a dead ReLU) must not get a huge step once standardised: its variance is floored at a hundredth
 * of the mean channel variance (its scale at a tenth of the typical channel's).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { featureMoments } from "./feature_moments.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const { model } = await tinyBackbone();
 * const images = tf.randomUniform([8, 28, 28, 1]) as tf.Tensor4D;
 * const moments = await featureMoments(model, images, 4);
 * console.assert(moments.mean.length === moments.scale.length && moments.meanSquaredNorm > 0);
 * images.dispose();
 * ```
 */
export async function featureMoments(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  batchSize: number,
): Promise<FeatureMoments> {
  const features = model.predict(images, { batchSize }) as tf.Tensor2D;
  try {
    return await featureMomentsOf(features);
  } finally {
    features.dispose();
  }
}

/**
 * {@linkcode featureMoments} of features measured already, `[N, D]`: for a caller that has the model's
 * features of the images (from `model.predict` with the same batch size, they give the same moments to the
 * bit). The features stay the caller's.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { featureMomentsOf } from "./feature_moments.ts";
 * const f = tf.tensor2d([[1, 0], [3, 0]]);
 * const moments = await featureMomentsOf(f);
 * console.assert(moments.mean[0] === 2 && moments.meanSquaredNorm === 5);
 * f.dispose();
 * ```
 */
export async function featureMomentsOf(features: tf.Tensor2D): Promise<FeatureMoments> {
  const [moments, norm] = tf.tidy(() => {
    const { mean, variance } = tf.moments(features, 0);
    return [tf.stack([mean, variance]), tf.mean(tf.sum(tf.square(features), 1))];
  });
  const [m, n] = await Promise.all([moments.data() as Promise<Float32Array>, norm.data()]);
  tf.dispose([moments, norm]);
  const d = m.length / 2;
  const mean = m.slice(0, d), variance = m.slice(d);
  const floor = 1e-2 * variance.reduce((a, b) => a + b, 0) / d + 1e-12;
  const scale = variance.map((v) => Math.sqrt(v + floor));
  const standardizedSquaredNorm = variance.reduce((a, v, i) => a + v / (scale[i] * scale[i]), 0);
  return {
    mean,
    scale,
    meanSquaredNorm: Math.max(n[0], 1e-6),
    standardizedSquaredNorm: Math.max(standardizedSquaredNorm, 1e-6),
  };
}
