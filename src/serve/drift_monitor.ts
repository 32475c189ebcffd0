import type { ImageStatistics } from "../adapt/adapted_model.ts";
import { type DriftReference, MomentSums } from "../adapt/drift_reference.ts";
import { type DriftScore, driftScore, type LayerDrift } from "../adapt/drift_score.ts";
import { RuntimeError } from "../errors.ts";

/** A crossing of the drift threshold, up (`drift`) or back down (`recovered`). */
export interface DriftEvent {
  type: "drift" | "recovered";
  modelId: string;
  at: string;
  score: number;
  threshold: number;
  /** Images in the window when it happened. */
  samples: number;
}

/** One point of a monitor's score history. */
export interface DriftPoint {
  at: string;
  score: number;
  /** Images in the window. */
  samples: number;
  /** Mean top-1 probability over the window. */
  confidence: number;
}

/** What `GET /v1/models/{id}/drift` returns for a monitored model. */
export interface DriftReport {
  modelId: string;
  monitored: true;
  /** The drift score of the window (see `driftScore`); null until the window holds `minSamples` images. */
  score: number | null;
  threshold: number;
  /** Whether the score is at or over the threshold now. */
  alert: boolean;
  window: { size: number; samples: number; minSamples: number };
  /** Mean top-1 probability: on the adaptation images, and over the window (null when empty). */
  confidence: { reference: number; window: number | null };
  /** Each watched layer's part of the score (empty until the window holds `minSamples` images). */
  layers: LayerDrift[];
  history: DriftPoint[];
  /** The latest threshold crossings, oldest first. */
  events: DriftEvent[];
  reference: { samples: number };
}

/** Options of {@linkcode DriftMonitor}. */
export interface DriftMonitorOptions {
  /** Images in the rolling window. */
  window: number;
  /** Score at or over which the monitor raises a `drift` event. */
  threshold: number;
  /** Points kept in the history (default 120); one is taken every quarter window of new images. */
  historyLength?: number;
  /** Events kept (default 50). */
  eventLength?: number;
  /** Called with every threshold crossing. */
  onEvent?: (event: DriftEvent) => void;
}

/** Fewest images a window must hold before it is scored. */
export const DRIFT_MIN_SAMPLES = 16;

/**
 * The drift monitor of one model: a rolling window of the last `window` served images' statistics (each
 * image's per-channel moments of the watched layers and its top-1 probability, from
 * `AdaptedModel.predictObserved`), kept as running sums so that each image costs one pass over its row,
 * scored against the model's {@linkcode DriftReference} with {@linkcode driftScore}. A score that reaches
 * the threshold raises a `drift` event (logged, and sent to `onEvent`); falling back below raises
 * `recovered`.
 *
 * @example
 * ```ts
 * import { DriftMonitor } from "./drift_monitor.ts";
 * const reference = { samples: 4, confidence: 0.9, layers: [{ layer: "f", mean: [0], variance: [1] }] };
 * const monitor = new DriftMonitor("m1", reference, { window: 16, threshold: 1 });
 * const rows = new Float32Array(32).map((_, i) => (i % 2 ? 9 : 3)); // 16 images of mean 3, square 9
 * monitor.observe({ layers: [{ layer: "f", channels: 1 }], rows, width: 2, confidence: new Float32Array(16).fill(0.5) });
 * console.assert(monitor.report().alert && monitor.report().events[0].type === "drift");
 * ```
 */
export class DriftMonitor {
  readonly #layers: { layer: string; channels: number }[];
  readonly #sums: MomentSums;
  readonly #rows: Float32Array;
  readonly #confidence: Float32Array;
  readonly #minSamples: number;
  #next = 0;
  #sinceLastPoint = 0;
  #current?: DriftScore;
  #alert = false;
  #history: DriftPoint[] = [];
  #events: DriftEvent[] = [];

  constructor(
    readonly modelId: string,
    readonly reference: DriftReference,
    readonly options: DriftMonitorOptions,
  ) {
    this.#layers = reference.layers.map((l) => ({ layer: l.layer, channels: l.mean.length }));
    this.#sums = new MomentSums(this.#layers);
    this.#rows = new Float32Array(options.window * this.#sums.width);
    this.#confidence = new Float32Array(options.window);
    this.#minSamples = Math.min(options.window, DRIFT_MIN_SAMPLES);
  }

  /**
   * Adds a batch's statistics to the window (the oldest images leave it) and re-scores it.
   * @throws {RuntimeError} `invalid`/`shape_mismatch` when the batch watches other layers than the reference.
   */
  observe(statistics: ImageStatistics): void {
    const width = this.#sums.width;
    if (
      statistics.width !== width ||
      statistics.layers.some((l, i) =>
        l.layer !== this.#layers[i]?.layer || l.channels !== this.#layers[i].channels
      )
    ) {
      throw new RuntimeError(
        "invalid",
        "shape_mismatch",
        `drift monitor of ${this.modelId}: the batch watches ` +
          `[${statistics.layers.map((l) => `${l.layer}:${l.channels}`)}], the reference ` +
          `[${this.#layers.map((l) => `${l.layer}:${l.channels}`)}]`,
      );
    }
    const size = this.options.window;
    for (let i = 0; i < statistics.confidence.length; i++) {
      const slot = this.#next % size;
      const stored = this.#rows.subarray(slot * width, (slot + 1) * width);
      if (this.#next >= size) this.#sums.remove(stored, this.#confidence[slot]);
      stored.set(statistics.rows.subarray(i * width, (i + 1) * width));
      this.#confidence[slot] = statistics.confidence[i];
      this.#sums.add(stored, statistics.confidence[i]);
      this.#next++;
    }
    this.#sinceLastPoint += statistics.confidence.length;
    if (this.#sums.count < this.#minSamples) return;
    this.#current = driftScore(this.reference, this.#sums.moments());
    const now = new Date().toISOString();
    const samples = this.#sums.count;
    const { score } = this.#current;
    if (this.#sinceLastPoint >= Math.max(1, Math.floor(size / 4)) || this.#history.length === 0) {
      this.#sinceLastPoint = 0;
      this.#history.push({ at: now, score, samples, confidence: this.#sums.confidence() });
      if (this.#history.length > (this.options.historyLength ?? 120)) this.#history.shift();
    }
    const alert = score >= this.options.threshold;
    if (alert !== this.#alert) {
      this.#alert = alert;
      const event: DriftEvent = {
        type: alert ? "drift" : "recovered",
        modelId: this.modelId,
        at: now,
        score,
        threshold: this.options.threshold,
        samples,
      };
      this.#events.push(event);
      if (this.#events.length > (this.options.eventLength ?? 50)) this.#events.shift();
      console.warn(
        `[drift] model ${this.modelId}: drift score ${score.toFixed(3)} ${
          alert ? "reached" : "fell back below"
        } the threshold ${this.options.threshold} over the last ${samples} images`,
      );
      this.options.onEvent?.(event);
    }
  }

  /** The window's score, breakdown, history and events. */
  report(): DriftReport {
    const samples = this.#sums.count;
    const scored = samples >= this.#minSamples ? this.#current : undefined;
    return {
      modelId: this.modelId,
      monitored: true,
      score: scored?.score ?? null,
      threshold: this.options.threshold,
      alert: this.#alert,
      window: { size: this.options.window, samples, minSamples: this.#minSamples },
      confidence: { reference: this.reference.confidence, window: samples ? this.#sums.confidence() : null },
      layers: scored?.layers ?? [],
      history: [...this.#history],
      events: [...this.#events],
      reference: { samples: this.reference.samples },
    };
  }
}
