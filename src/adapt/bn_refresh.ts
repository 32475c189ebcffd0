import * as tf from "@tensorflow/tfjs";
import { RuntimeError } from "../errors.ts";
import { batchNormLayers } from "../model/batch_norm_layers.ts";
import { batchNormInputStatistics } from "./target_statistics.ts";

/** What a BN refresh did, kept in the refreshed model's metadata. */
export interface BnRefreshReport {
  layersRefreshed: number;
  /** How many unlabelled images the statistics were estimated on. */
  images: number;
  /** Per layer: mean |mu_new - mu_old| and mean var_new / var_old, how far the new data sits from the old. */
  layers: { name: string; meanShift: number; varianceRatio: number }[];
}

/**
 * AdaBN: re-estimates every BatchNormalization layer's running mean and variance on unlabelled `images`
 * (preprocessed `[N, H, W, C]`), in place; gamma, beta and every other weight stay, so the model's output
 * changes (that is the point: its layers are re-centred on the new domain).
 *
 * The statistics are those the layers see in training mode, where each BN normalises with the batch's own
 * statistics, so a layer's input already reflects the refreshed layers before it: per batch of `batchSize`
 * images, each layer's channel mean and unbiased variance over batch and space, averaged over batches (as
 * PyTorch's cumulative `momentum=None` re-estimation does).
 *
 * @throws {RuntimeError} `invalid`/`shape_mismatch` for images the model does not take, or none;
 *   `invalid`/`no_batch_norm` for a model without BN layers.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { refreshBatchNorm } from "./bn_refresh.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const { model } = await tinyBackbone();
 * const report = await refreshBatchNorm(model, tf.randomUniform([8, 28, 28, 1]) as tf.Tensor4D, 4);
 * console.assert(report.layersRefreshed === 4 && report.images === 8);
 * ```
 */
export async function refreshBatchNorm(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  batchSize = 32,
): Promise<BnRefreshReport> {
  const expected = model.inputs[0].shape;
  if (
    images.rank !== 4 || images.shape[0] === 0 ||
    expected.some((d, i) => i > 0 && d != null && d !== images.shape[i])
  ) {
    throw new RuntimeError(
      "invalid",
      "shape_mismatch",
      `BN refresh needs images [N>0, ${expected.slice(1)}], got [${images.shape}]`,
    );
  }
  const layers = batchNormLayers(model);
  if (layers.length === 0) {
    throw new RuntimeError(
      "invalid",
      "no_batch_norm",
      `model '${model.name}' has no BatchNormalization layer`,
    );
  }
  const roles = layers.map((l) => l.weights.map((w) => w.originalName.split("/").pop()!));
  // The old statistics first: training-mode calls below also move the running averages as a side effect.
  const before = await Promise.all(layers.map(async (l, i) => {
    const values = l.getWeights();
    const [mean, variance] = await Promise.all(
      ["moving_mean", "moving_variance"].map((r) =>
        values[roles[i].indexOf(r)].data() as Promise<Float32Array>
      ),
    );
    return { values, mean, variance };
  }));
  const fresh = await batchNormInputStatistics(model, layers, images, batchSize, { training: true });
  const report: BnRefreshReport = { layersRefreshed: layers.length, images: images.shape[0], layers: [] };
  layers.forEach((layer, k) => {
    const { mean, variance } = fresh[k];
    const weights = roles[k].map((role, j) =>
      role === "moving_mean"
        ? tf.tensor1d(mean)
        : role === "moving_variance"
        ? tf.tensor1d(variance)
        : before[k].values[j]
    );
    layer.setWeights(weights);
    tf.dispose(weights.filter((t, j) => t !== before[k].values[j]));
    const { mean: oldMean, variance: oldVariance } = before[k];
    let shift = 0, ratio = 0;
    for (let c = 0; c < mean.length; c++) {
      shift += Math.abs(mean[c] - oldMean[c]);
      ratio += (variance[c] + 1e-12) / (oldVariance[c] + 1e-12);
    }
    report.layers.push({
      name: layer.name,
      meanShift: shift / mean.length,
      varianceRatio: ratio / mean.length,
    });
  });
  return report;
}
