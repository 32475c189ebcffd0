import { RuntimeError } from "../errors.ts";
import type { DriftReference, LayerMoments } from "./drift_reference.ts";

/**
 * The drift score at or over which a server raises a `drift` event unless told otherwise. Measured
 * (docs/DRIFT.md, 3 seeds, windows of 64): in-distribution windows score at most 0.04 (95th percentile), the
 * corrupted windows of the three benchmarks 0.14 to 1.8 on average; 0.1 sits between.
 */
export const DEFAULT_DRIFT_THRESHOLD = 0.1;

/** One watched layer's part of a drift score. */
export interface LayerDrift {
  layer: string;
  /** Mean over channels of the Jeffreys divergence between reference and window (see `driftScore`). */
  score: number;
  /** The channel that moved most, and its divergence. */
  worstChannel: number;
  worstScore: number;
}

/** A drift score and what it is made of. */
export interface DriftScore {
  /** Mean of the layers' scores; 0 when the window matches the reference. */
  score: number;
  layers: LayerDrift[];
}

/**
 * How far the statistics of served images (`window`) are from those the model was adapted on
 * (`reference`), layer by layer. Each channel of a watched layer is taken as a Gaussian with the measured
 * mean and variance, and compared with the Jeffreys divergence (symmetric KL, in nats):
 *
 *   J = (v_w / v_r + v_r / v_w) / 2 - 1 + d^2 (1 / v_r + 1 / v_w) / 2,   d = m_w - m_r
 *
 * A layer's score is the mean of J over its channels; the drift score is the mean over layers. Scale: 0 is
 * no change; with equal variances, J = d^2 / v, so a score of 1 means the channels' means moved by about
 * one reference standard deviation. Both variances are floored at 1% of the layer's mean reference
 * variance, so that a channel that is dead on the reference images cannot dominate.
 *
 * @throws {RuntimeError} `invalid`/`shape_mismatch` when the window's layers are not the reference's.
 *
 * @example
 * ```ts
 * import { driftScore } from "./drift_score.ts";
 * const reference = { samples: 10, confidence: 0.9, layers: [{ layer: "f", mean: [0, 0], variance: [1, 1] }] };
 * const same = driftScore(reference, [{ layer: "f", mean: [0, 0], variance: [1, 1] }]);
 * const moved = driftScore(reference, [{ layer: "f", mean: [1, 1], variance: [1, 1] }]);
 * console.assert(same.score === 0 && Math.abs(moved.score - 1) < 0.02);
 * ```
 */
export function driftScore(reference: DriftReference, window: LayerMoments[]): DriftScore {
  if (
    window.length !== reference.layers.length ||
    window.some((w, i) =>
      w.layer !== reference.layers[i].layer || w.mean.length !== reference.layers[i].mean.length
    )
  ) {
    throw new RuntimeError(
      "invalid",
      "shape_mismatch",
      `drift: the window watches [${window.map((w) => `${w.layer}:${w.mean.length}`)}], the reference ` +
        `[${reference.layers.map((r) => `${r.layer}:${r.mean.length}`)}]`,
    );
  }
  const layers = reference.layers.map((ref, i) => {
    const w = window[i];
    const channels = ref.mean.length;
    const floor = 1e-2 * ref.variance.reduce((a, v) => a + v, 0) / Math.max(channels, 1) + 1e-12;
    let sum = 0, worstChannel = 0, worstScore = 0;
    for (let c = 0; c < channels; c++) {
      const vr = ref.variance[c] + floor, vw = w.variance[c] + floor;
      const d = w.mean[c] - ref.mean[c];
      const j = (vw / vr + vr / vw) / 2 - 1 + d * d * (1 / vr + 1 / vw) / 2;
      sum += j;
      if (j > worstScore) [worstChannel, worstScore] = [c, j];
    }
    return { layer: ref.layer, score: sum / Math.max(channels, 1), worstChannel, worstScore };
  });
  const score = layers.reduce((a, l) => a + l.score, 0) / Math.max(layers.length, 1);
  return { score, layers };
}
