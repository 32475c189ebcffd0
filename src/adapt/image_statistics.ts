import * as tf from "@tensorflow/tfjs";
import type { ImageStatistics } from "./adapted_model.ts";

/**
 * A batch's watched layers' outputs as tensors, not read yet: what `AdaptedModel.predictWatched` returns
 * beside its predictions. Whoever holds it reads it once with {@linkcode readWatched}, which disposes them.
 */
export interface WatchedOutputs {
  layers: { layer: string; channels: number }[];
  /** Per watched layer, its output `[N, ...space, channels]`. */
  outputs: tf.Tensor[];
  /** `[N]`: each image's top-1 probability. */
  confidence: Float32Array;
}

/**
 * Reads a batch's watched outputs and disposes the tensors (also when a read fails).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readWatched } from "./image_statistics.ts";
 * const read = await readWatched({ layers: [{ layer: "f", channels: 2 }], outputs: [tf.tensor2d([[1, 2]])],
 *   confidence: new Float32Array([0.9]) });
 * console.assert(read.values[0].join() === "1,2");
 * ```
 */
export async function readWatched(watched: WatchedOutputs): Promise<WatchedActivations> {
  try {
    const values = await Promise.all(watched.outputs.map((t) => t.data() as Promise<Float32Array>));
    return { layers: watched.layers, values, confidence: watched.confidence };
  } finally {
    tf.dispose(watched.outputs);
  }
}

/**
 * A batch's watched outputs reduced on the backend to what {@linkcode imageStatistics} computes in
 * JavaScript (per image and layer, each channel's mean and mean square over space), then read: only `N` rows
 * cross to JavaScript instead of every activation. For many images at once (a drift reference over a
 * training set), where reading whole activations would hold tens of megabytes; one served image is reduced
 * in JavaScript instead, after the response, to add no kernel to the forward pass. Disposes the tensors.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { reducedStatistics } from "./image_statistics.ts";
 * const s = await reducedStatistics({ layers: [{ layer: "f", channels: 2 }],
 *   outputs: [tf.tensor3d([[[1, 2], [3, 2]]])], confidence: new Float32Array([0.9]) });
 * console.assert(s.width === 4 && s.rows.join() === "2,2,5,4");
 * ```
 */
export async function reducedStatistics(watched: WatchedOutputs): Promise<ImageStatistics> {
  const { layers, outputs, confidence } = watched;
  const n = confidence.length;
  try {
    const rows = tf.tidy(() =>
      tf.concat(
        outputs.map((t, k) => {
          const flat = t.reshape([n, -1, layers[k].channels]);
          return tf.concat([tf.mean(flat, 1), tf.mean(tf.square(flat), 1)], 1);
        }),
        1,
      )
    );
    try {
      const values = await rows.data() as Float32Array;
      return { layers, rows: values, width: rows.shape[1]!, confidence };
    } finally {
      rows.dispose();
    }
  } finally {
    tf.dispose(outputs);
  }
}

/** A batch's watched layers' outputs, read ({@linkcode readWatched}), before they are reduced. */
export interface WatchedActivations {
  /** The watched layers (see `driftTapLayers`) and their channel counts. */
  layers: { layer: string; channels: number }[];
  /** Per watched layer, its output `[N, ...space, channels]` (channels last), flattened. */
  values: Float32Array[];
  /** `[N]`: each image's top-1 probability. */
  confidence: Float32Array;
}

/**
 * What the drift monitor reads of a batch: per image and watched layer, the per-channel mean and mean square
 * over space. Each layer's `values` must hold `N x positions x channels` numbers, channels last.
 *
 * @example
 * ```ts
 * import { imageStatistics } from "./image_statistics.ts";
 * // One image, one layer of 2 channels at 2 positions: channel 0 holds 1 and 3, channel 1 holds 2 and 2.
 * const s = imageStatistics({ layers: [{ layer: "f", channels: 2 }], values: [new Float32Array([1, 2, 3, 2])],
 *   confidence: new Float32Array([0.9]) });
 * console.assert(s.width === 4 && s.rows.join() === "2,2,5,4");
 * ```
 */
export function imageStatistics(activations: WatchedActivations): ImageStatistics {
  const { layers, values, confidence } = activations;
  const n = confidence.length;
  const width = 2 * layers.reduce((a, l) => a + l.channels, 0);
  const rows = new Float32Array(n * width);
  let offset = 0;
  layers.forEach(({ channels }, k) => {
    const data = values[k];
    const positions = data.length / (n * channels);
    const sum = new Float64Array(channels), squares = new Float64Array(channels);
    for (let i = 0; i < n; i++) {
      sum.fill(0);
      squares.fill(0);
      const base = i * positions * channels;
      for (let p = 0; p < positions; p++) {
        const at = base + p * channels;
        for (let c = 0; c < channels; c++) {
          const v = data[at + c];
          sum[c] += v;
          squares[c] += v * v;
        }
      }
      const row = i * width + offset;
      for (let c = 0; c < channels; c++) {
        rows[row + c] = sum[c] / positions;
        rows[row + channels + c] = squares[c] / positions;
      }
    }
    offset += 2 * channels;
  });
  return { layers, rows, width, confidence };
}
