import * as tf from "@tensorflow/tfjs";
import { RuntimeError } from "../errors.ts";

/** Per-channel statistics of one BN layer's input. */
export interface ChannelStatistics {
  mean: Float32Array;
  variance: Float32Array;
}

/**
 * The input statistics of each given BN layer over `images` `[N, H, W, C]`, computed in eval mode as the
 * DAFT authors do: per batch, the channel mean and the unbiased channel variance (over batch and space),
 * then the plain average over batches. A last batch of one image still counts (its variance over space).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { batchNormInputStatistics } from "./target_statistics.ts";
 * import { batchNormLayers } from "../model/batch_norm_layers.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const { model } = await tinyBackbone();
 * const stats = await batchNormInputStatistics(model, batchNormLayers(model), tf.zeros([4, 28, 28, 1]), 2);
 * console.assert(stats.length === 4);
 * ```
 */
export async function batchNormInputStatistics(
  model: tf.LayersModel,
  layers: tf.layers.Layer[],
  images: tf.Tensor4D,
  batchSize: number,
): Promise<ChannelStatistics[]> {
  if (images.rank !== 4 || images.shape[0] === 0) {
    throw new RuntimeError(
      "invalid",
      "shape_mismatch",
      `BN statistics need images [N>0, H, W, C], got [${images.shape}]`,
    );
  }
  if (layers.length === 0) return [];
  const probe = tf.model({ inputs: model.inputs, outputs: layers.map((l) => l.input as tf.SymbolicTensor) });
  const sums = layers.map(() => ({
    mean: null as Float32Array | null,
    variance: null as Float32Array | null,
  }));
  let batches = 0;
  for (let start = 0; start < images.shape[0]; start += batchSize) {
    const size = Math.min(batchSize, images.shape[0] - start);
    const moments = tf.tidy(() => {
      const batch = images.slice([start, 0, 0, 0], [size, -1, -1, -1]);
      const outs = probe.predict(batch) as tf.Tensor | tf.Tensor[];
      return (Array.isArray(outs) ? outs : [outs]).map((x) => {
        const axes = x.shape.slice(0, -1).map((_, i) => i);
        const count = x.size / x.shape[x.rank - 1];
        const { mean, variance } = tf.moments(x, axes);
        return [mean, tf.mul(variance, count / Math.max(count - 1, 1))];
      });
    });
    for (let i = 0; i < layers.length; i++) {
      const [m, v] = await Promise.all(moments[i].map((t) => t.data() as Promise<Float32Array>));
      const acc = sums[i];
      acc.mean = acc.mean ? acc.mean.map((x, c) => x + m[c]) : Float32Array.from(m);
      acc.variance = acc.variance ? acc.variance.map((x, c) => x + v[c]) : Float32Array.from(v);
    }
    tf.dispose(moments.flat());
    batches++;
  }
  return sums.map((s) => ({
    mean: s.mean!.map((x) => x / batches),
    variance: s.variance!.map((x) => x / batches),
  }));
}
