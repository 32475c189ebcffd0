import type * as tf from "@tensorflow/tfjs";
import { RuntimeError } from "../errors.ts";
import type { AdaptedModel, ImageStatistics } from "./adapted_model.ts";
import { reducedStatistics } from "./image_statistics.ts";

/** One watched layer's per-channel statistics over a set of images (over images and space). */
export interface LayerMoments {
  layer: string;
  mean: number[];
  variance: number[];
}

/**
 * What the drift monitor compares served traffic with, saved in the model's metadata at adaptation time:
 * the watched layers' per-channel statistics (see `driftTapLayers`) over the images the model was adapted
 * on, computed by the adapted model in eval mode, and its mean top-1 probability on them.
 */
export interface DriftReference {
  /** How many images the statistics are over. */
  samples: number;
  layers: LayerMoments[];
  /** Mean top-1 probability over those images (optimistic: the model trained on most of them). */
  confidence: number;
}

/**
 * Running sums of {@linkcode ImageStatistics} rows: add images, remove them, and read the per-channel mean
 * and variance over the images held (variance = mean square - squared mean, over images and space).
 * Sums are kept in float64 so that adding and removing for hours does not drift.
 *
 * @example
 * ```ts
 * import { MomentSums } from "./drift_reference.ts";
 * const sums = new MomentSums([{ layer: "f", channels: 1 }]);
 * sums.add(Float32Array.from([1, 1]), 0.9);  // one image: mean 1, mean square 1
 * sums.add(Float32Array.from([3, 9]), 0.7);
 * const [m] = sums.moments();
 * console.assert(m.mean[0] === 2 && m.variance[0] === 1 && Math.abs(sums.confidence() - 0.8) < 1e-9);
 * ```
 */
export class MomentSums {
  readonly width: number;
  #sums: Float64Array;
  #confidence = 0;
  #count = 0;

  constructor(readonly layers: { layer: string; channels: number }[]) {
    this.width = 2 * layers.reduce((a, l) => a + l.channels, 0);
    this.#sums = new Float64Array(this.width);
  }

  /** Images held. */
  get count(): number {
    return this.#count;
  }

  /** Adds one image's row (`width` values) and its top-1 probability. */
  add(row: ArrayLike<number>, confidence: number): void {
    for (let j = 0; j < this.width; j++) this.#sums[j] += row[j];
    this.#confidence += confidence;
    this.#count++;
  }

  /** Removes an image added before. */
  remove(row: ArrayLike<number>, confidence: number): void {
    for (let j = 0; j < this.width; j++) this.#sums[j] -= row[j];
    this.#confidence -= confidence;
    this.#count--;
  }

  /** Per layer, the channel means and variances over the images held (none: every value 0). */
  moments(): LayerMoments[] {
    const n = Math.max(this.#count, 1);
    let offset = 0;
    return this.layers.map(({ layer, channels }) => {
      const mean: number[] = [], variance: number[] = [];
      for (let c = 0; c < channels; c++) {
        const m = this.#sums[offset + c] / n;
        mean.push(m);
        variance.push(Math.max(this.#sums[offset + channels + c] / n - m * m, 0));
      }
      offset += 2 * channels;
      return { layer, mean, variance };
    });
  }

  /** Mean top-1 probability of the images held. */
  confidence(): number {
    return this.#count ? this.#confidence / this.#count : 0;
  }
}

/** Adds every image of a batch's statistics to `sums`. */
export function addStatistics(sums: MomentSums, statistics: ImageStatistics): void {
  const n = statistics.confidence.length;
  for (let i = 0; i < n; i++) {
    sums.add(
      statistics.rows.subarray(i * statistics.width, (i + 1) * statistics.width),
      statistics.confidence[i],
    );
  }
}

/**
 * The drift reference of an adapted model: its watched layers' statistics and mean confidence over
 * `images` `[N, H, W, C]` (preprocessed per `model.metadata.input`), in eval mode, through the same
 * {@linkcode AdaptedModel.predictWatched} that serving uses, so reference and traffic are measured alike
 * (the reduction runs on the backend here, in JavaScript for served images: equal to float32 rounding).
 *
 * @throws {RuntimeError} `invalid`/`shape_mismatch` for images the model does not take, or none.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { adapt } from "./adapt.ts";
 * import { driftReference } from "./drift_reference.ts";
 * import { initBackend } from "../backend/init_backend.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * await initBackend("auto");
 * const images = tf.randomUniform([8, 28, 28, 1]) as tf.Tensor4D;
 * const model = await adapt(await tinyBackbone(), { images, labels: [0, 1, 0, 1, 0, 1, 0, 1], classNames: ["a", "b"] }, { epochs: 1 });
 * const reference = await driftReference(model, images);
 * console.assert(reference.samples === 8 && reference.layers.at(-1)!.layer === "features");
 * ```
 */
export async function driftReference(
  model: AdaptedModel,
  images: tf.Tensor4D,
  batchSize = 32,
): Promise<DriftReference> {
  if (images.rank !== 4 || images.shape[0] === 0) {
    throw new RuntimeError(
      "invalid",
      "shape_mismatch",
      `drift reference needs images [N>0, H, W, C], got [${images.shape}]`,
    );
  }
  const sums = new MomentSums(model.watchedLayers());
  for (let start = 0; start < images.shape[0]; start += batchSize) {
    const size = Math.min(batchSize, images.shape[0] - start);
    const batch = images.slice([start, 0, 0, 0], [size, -1, -1, -1]);
    try {
      // Reduced on the backend: a batch's whole activations would cross to JavaScript otherwise.
      addStatistics(sums, await reducedStatistics((await model.predictWatched(batch, 1, batchSize)).watched));
    } finally {
      batch.dispose();
    }
  }
  return { samples: sums.count, layers: sums.moments(), confidence: sums.confidence() };
}
