import * as tf from "@tensorflow/tfjs";
import { RuntimeError } from "../errors.ts";
import { batchNormLayers } from "../model/batch_norm_layers.ts";
import { batchNormInputStatistics, type ChannelStatistics } from "./target_statistics.ts";

/** One BN layer's parameters, per channel. */
export interface BatchNormParams {
  gamma: Float32Array;
  beta: Float32Array;
  movingMean: Float32Array;
  movingVariance: Float32Array;
}

/**
 * DAFT's batch-norm conversion for one layer, as a pure function: re-centre the layer on the target
 * statistics while folding the source statistics into gamma and beta, so eval-mode output is unchanged:
 *
 *   beta'  = beta + gamma * (mu_t - mu_s) / sqrt(var_s + eps)
 *   gamma' = gamma * sqrt(var_t + eps) / sqrt(var_s + eps)
 *   mean'  = mu_t,  var' = var_t
 *
 * @example
 * ```ts
 * import { convertBatchNormParams } from "./bn_conversion.ts";
 * const f = (...v: number[]) => Float32Array.from(v);
 * const out = convertBatchNormParams(
 *   { gamma: f(2), beta: f(1), movingMean: f(0), movingVariance: f(1) },
 *   { mean: f(3), variance: f(4) },
 *   0,
 * );
 * console.assert(out.beta[0] === 7 && out.gamma[0] === 4 && out.movingMean[0] === 3);
 * ```
 */
export function convertBatchNormParams(
  source: BatchNormParams,
  target: ChannelStatistics,
  epsilon: number,
): BatchNormParams {
  const n = source.gamma.length;
  for (const [name, a] of Object.entries({ ...source, ...target })) {
    if (a.length !== n) {
      throw new RuntimeError(
        "invalid",
        "shape_mismatch",
        `BN conversion: ${name} has ${a.length} channels, gamma ${n}`,
      );
    }
  }
  const gamma = new Float32Array(n), beta = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    const sourceStd = Math.sqrt(source.movingVariance[c] + epsilon);
    const targetStd = Math.sqrt(target.variance[c] + epsilon);
    beta[c] = source.beta[c] + source.gamma[c] * (target.mean[c] - source.movingMean[c]) / sourceStd;
    gamma[c] = source.gamma[c] * targetStd / sourceStd;
  }
  return {
    gamma,
    beta,
    movingMean: Float32Array.from(target.mean),
    movingVariance: Float32Array.from(target.variance),
  };
}

/** What a conversion did, kept in the adapted model's metadata. */
export interface BnConversionReport {
  layersConverted: number;
  /** Largest |eval output before - after| over the first `checkedSamples` calibration images; float error only. */
  maxAbsOutputDiff: number;
  /** How many calibration images (the first batch) the output check ran on. */
  checkedSamples: number;
  calibrationSamples: number;
  /** Per layer: mean |mu_t - mu_s| and mean var_t / var_s, how far the target domain sits from the source. */
  layers: { name: string; meanShift: number; varianceRatio: number }[];
}

const ROLES = ["gamma", "beta", "moving_mean", "moving_variance"] as const;

async function layerParams(layer: tf.layers.Layer): Promise<{ params: BatchNormParams; order: string[] }> {
  const order = layer.weights.map((w) => w.originalName.split("/").pop()!);
  const values = await Promise.all(layer.getWeights().map((t) => t.data() as Promise<Float32Array>));
  const get = (role: string) => values[order.indexOf(role)];
  const channels = get("moving_mean").length;
  return {
    order,
    params: {
      gamma: get("gamma") ?? new Float32Array(channels).fill(1),
      beta: get("beta") ?? new Float32Array(channels),
      movingMean: get("moving_mean"),
      movingVariance: get("moving_variance"),
    },
  };
}

function setLayerParams(layer: tf.layers.Layer, order: string[], params: BatchNormParams): void {
  const byRole: Record<(typeof ROLES)[number], Float32Array> = {
    gamma: params.gamma,
    beta: params.beta,
    moving_mean: params.movingMean,
    moving_variance: params.movingVariance,
  };
  const tensors = order.map((role) => tf.tensor1d(byRole[role as (typeof ROLES)[number]]));
  layer.setWeights(tensors);
  tf.dispose(tensors);
}

async function evalOutput(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  batchSize: number,
): Promise<Float32Array> {
  const out = model.predict(images, { batchSize }) as tf.Tensor;
  const data = await out.data() as Float32Array;
  out.dispose();
  return data;
}

/**
 * Converts every BatchNormalization layer of `model` to the target domain of `images` (preprocessed
 * `[N, H, W, C]`), in place: one eval-mode pass records each BN layer's input statistics per batch
 * (channel mean and unbiased variance), averaged over batches, then {@linkcode convertBatchNormParams} is
 * applied. Returns how much the eval-mode output moved on the first batch of images (it should not, beyond
 * float error; one batch keeps the check from costing two more passes over every image).
 *
 * A caller that has run that pass already, for the model's output too (`outputAndBatchNormStatistics` over
 * `images` with `batchNormLayers(model)` and the same `batchSize`), passes what it `measured`: the
 * statistics are then not measured again, and the output before conversion is read from its first rows.
 * The conversion and its report are the same to the bit.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { convertBatchNorm } from "./bn_conversion.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const backbone = await tinyBackbone();
 * const images = tf.randomUniform([8, 28, 28, 1]) as tf.Tensor4D;
 * const report = await convertBatchNorm(backbone.model, images, 4);
 * console.assert(report.layersConverted === 4 && report.maxAbsOutputDiff < 1e-4);
 * ```
 */
export async function convertBatchNorm(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  batchSize: number,
  measured?: { output: tf.Tensor; statistics: ChannelStatistics[] },
): Promise<BnConversionReport> {
  const layers = batchNormLayers(model);
  const checked = images.slice(0, Math.min(batchSize, images.shape[0]));
  try {
    let before: Float32Array, stats: ChannelStatistics[];
    if (measured) {
      const rows = measured.output.slice(0, checked.shape[0]);
      before = await rows.data() as Float32Array;
      rows.dispose();
      stats = measured.statistics;
    } else {
      before = await evalOutput(model, checked, batchSize);
      stats = await batchNormInputStatistics(model, layers, images, batchSize);
    }
    if (stats.length !== layers.length) {
      throw new RuntimeError(
        "invalid",
        "shape_mismatch",
        `BN conversion: statistics for ${stats.length} layers, the model has ${layers.length}`,
      );
    }
    const report: BnConversionReport["layers"] = [];
    for (const [i, layer] of layers.entries()) {
      const { params, order } = await layerParams(layer);
      const epsilon = (layer as unknown as { epsilon: number }).epsilon;
      const converted = convertBatchNormParams(params, stats[i], epsilon);
      setLayerParams(layer, order, converted);
      let shift = 0, ratio = 0;
      for (let c = 0; c < params.movingMean.length; c++) {
        shift += Math.abs(stats[i].mean[c] - params.movingMean[c]);
        ratio += (stats[i].variance[c] + epsilon) / (params.movingVariance[c] + epsilon);
      }
      report.push({
        name: layer.name,
        meanShift: shift / params.movingMean.length,
        varianceRatio: ratio / params.movingMean.length,
      });
    }
    const after = await evalOutput(model, checked, batchSize);
    let maxAbsOutputDiff = 0;
    for (let i = 0; i < before.length; i++) {
      maxAbsOutputDiff = Math.max(maxAbsOutputDiff, Math.abs(before[i] - after[i]));
    }
    return {
      layersConverted: layers.length,
      maxAbsOutputDiff,
      calibrationSamples: images.shape[0],
      checkedSamples: checked.shape[0],
      layers: report,
    };
  } finally {
    checked.dispose();
  }
}
