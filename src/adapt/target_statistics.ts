import * as tf from "@tensorflow/tfjs";
import { channelMoments } from "../backend/training_ops.ts";
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
 * With `training`, the layers run as in training instead (each BN normalises with its batch's statistics, so a
 * layer's input reflects the re-normalised layers before it: what AdaBN re-estimates); tfjs then also moves the
 * layers' running averages, which the caller overwrites.
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
  { training = false }: { training?: boolean } = {},
): Promise<ChannelStatistics[]> {
  checkImages(images);
  if (layers.length === 0) return [];
  return (await statisticsPass(model, layers, images, batchSize, training, false)).statistics;
}

/**
 * `model.predict(images, { batchSize })` (a single-output model's; the first output of one with more) and
 * {@linkcode batchNormInputStatistics} (eval mode) from one pass over `images` instead of two: each batch's BN inputs are the ones its forward pass computes on the way to
 * the output. The output is `model.predict`'s to the bit (the same layers run on the same batches), and the
 * caller's to dispose. With no `layers` this is `model.predict` alone.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { outputAndBatchNormStatistics } from "./target_statistics.ts";
 * import { batchNormLayers } from "../model/batch_norm_layers.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const { model } = await tinyBackbone();
 * const images = tf.randomUniform([4, 28, 28, 1]) as tf.Tensor4D;
 * const { output, statistics } = await outputAndBatchNormStatistics(model, batchNormLayers(model), images, 2);
 * console.assert(output.shape[0] === 4 && statistics.length === 4);
 * tf.dispose([output, images]);
 * ```
 */
export async function outputAndBatchNormStatistics(
  model: tf.LayersModel,
  layers: tf.layers.Layer[],
  images: tf.Tensor4D,
  batchSize: number,
): Promise<{ output: tf.Tensor; statistics: ChannelStatistics[] }> {
  checkImages(images);
  if (layers.length === 0) {
    return { output: model.predict(images, { batchSize }) as tf.Tensor, statistics: [] };
  }
  const { output, statistics } = await statisticsPass(model, layers, images, batchSize, false, true);
  return { output: output!, statistics };
}

function checkImages(images: tf.Tensor4D): void {
  if (images.rank !== 4 || images.shape[0] === 0) {
    throw new RuntimeError(
      "invalid",
      "shape_mismatch",
      `BN statistics need images [N>0, H, W, C], got [${images.shape}]`,
    );
  }
}

// The statistics of `layers`' inputs batch by batch, averaged over batches; with `keepOutput`, the model's
// output too, the batches' outputs concatenated as `model.predict` concatenates them.
async function statisticsPass(
  model: tf.LayersModel,
  layers: tf.layers.Layer[],
  images: tf.Tensor4D,
  batchSize: number,
  training: boolean,
  keepOutput: boolean,
): Promise<{ output?: tf.Tensor; statistics: ChannelStatistics[] }> {
  const taps = layers.map((l) => l.input as tf.SymbolicTensor);
  const heads = keepOutput ? [model.outputs[0]] : [];
  const probe = tf.model({ inputs: model.inputs, outputs: [...heads, ...taps] });
  const sums = layers.map((l) => {
    const shape = (l.input as tf.SymbolicTensor).shape;
    return {
      channels: shape[shape.length - 1] as number,
      mean: null as Float32Array | null,
      variance: null as Float32Array | null,
    };
  });
  const outputs: tf.Tensor[] = [];
  let batches = 0;
  try {
    for (let start = 0; start < images.shape[0]; start += batchSize) {
      const size = Math.min(batchSize, images.shape[0] - start);
      // Every layer's mean and variance in one tensor: one read per batch, not two per layer.
      const moments = tf.tidy(() => {
        const batch = images.slice([start, 0, 0, 0], [size, -1, -1, -1]);
        const outs = (training ? probe.apply(batch, { training: true }) : probe.predict(batch)) as
          | tf.Tensor
          | tf.Tensor[];
        const all = Array.isArray(outs) ? outs : [outs];
        outputs.push(...all.slice(0, heads.length).map((t) => tf.keep(t)));
        return tf.concat(
          all.slice(heads.length).flatMap((x) => {
            const count = x.size / x.shape[x.rank - 1];
            const { mean, variance } = channelMoments(x);
            return [mean, tf.mul(variance, count / Math.max(count - 1, 1))];
          }),
        );
      });
      const values = await moments.data() as Float32Array;
      moments.dispose();
      let offset = 0;
      for (const acc of sums) {
        const channels = acc.channels;
        const m = values.subarray(offset, offset + channels);
        const v = values.subarray(offset + channels, offset + 2 * channels);
        offset += 2 * channels;
        acc.mean = acc.mean ? acc.mean.map((x, c) => x + m[c]) : Float32Array.from(m);
        acc.variance = acc.variance ? acc.variance.map((x, c) => x + v[c]) : Float32Array.from(v);
      }
      batches++;
    }
  } catch (err) {
    tf.dispose(outputs);
    throw err;
  }
  const output = keepOutput ? tf.concat(outputs, 0) : undefined;
  tf.dispose(outputs);
  const statistics = sums.map((s) => ({
    mean: s.mean!.map((x) => x / batches),
    variance: s.variance!.map((x) => x / batches),
  }));
  return { output, statistics };
}
