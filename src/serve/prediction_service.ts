import * as tf from "@tensorflow/tfjs";
import { AdaptedModel, type Prediction } from "../adapt/adapted_model.ts";
import type { DriftReference } from "../adapt/drift_reference.ts";
import { DEFAULT_DRIFT_THRESHOLD } from "../adapt/drift_score.ts";
import { imageStatistics, readWatched, type WatchedOutputs } from "../adapt/image_statistics.ts";
import { imagesToTensor } from "../data/input_spec.ts";
import { RuntimeError } from "../errors.ts";
import {
  checkRequestPixels,
  decodeUploadedImage,
  type ImageLimits,
  settleInOrder,
} from "../data/uploaded_image.ts";
import { eventBatches } from "../event_batches.ts";
import { KeyedLock } from "../keyed_lock.ts";
import type { ServingDemand } from "../jobs/serving_demand.ts";
import type { ActiveModelRecord, ModelStore } from "../store/model_store.ts";
import { type DriftEvent, DriftMonitor, type DriftReport } from "./drift_monitor.ts";
import type { TrafficSummary, TrafficWindow } from "./traffic_window.ts";

/** Options of {@linkcode PredictionService}. */
export interface PredictionServiceOptions extends ImageLimits {
  /** Most images in one request. */
  maxPredictImages: number;
  /** Most models kept loaded; the active one is always kept. */
  maxCachedModels: number;
  /** Whether the tfjs backend is up; predictions before that fail with `unavailable`/`not_ready`. */
  isReady: () => boolean;
  /** Images in each model's drift window; 0 (or unset) turns the drift monitor off. */
  driftWindow?: number;
  /** Drift score that raises a `drift` event (default `DEFAULT_DRIFT_THRESHOLD`). */
  driftThreshold?: number;
  /** Where predictions in progress are counted, for a training job to give way to them. */
  demand?: ServingDemand;
  /** Where served images are kept for a `bn-refresh` from traffic; unset keeps none. */
  traffic?: TrafficWindow;
}

/** The drift report with what the server keeps of the model's traffic (null: it keeps none). */
export type ModelDrift = (DriftReport | UnmonitoredDrift) & { traffic: TrafficSummary | null };

/** What `drift` says of a model that is not monitored, and why. */
export interface UnmonitoredDrift {
  modelId: string;
  monitored: false;
  reason: "monitor_off" | "no_reference";
  message: string;
}

/** The answer to a prediction request. */
export interface PredictionResult {
  /** The id of the model that answered (the active one's id when asked for `active`). */
  model: string;
  predictions: Prediction[];
}

/** The name that means "whichever model is active". */
export const ACTIVE_MODEL = "active";

// A loaded model and how many predictions are using it: an evicted model is disposed when the last ends.
interface Loaded {
  id: string;
  model: Promise<AdaptedModel>;
  users: number;
  evicted: boolean;
  lastUsed: number;
}

const ACTIVATION = "activation";

/**
 * Predictions from adapted models, in this thread, from an in-memory cache of loaded models.
 *
 * Activation is an atomic swap: the new model is loaded and run once on a blank batch first, `active.json`
 * is replaced, and only then does the one reference predictions read change, so a prediction sees the old
 * model or the new one and never a half-loaded one. Activations and deletions are serialised with each
 * other. A model in use is disposed only after its last prediction ends.
 *
 * @example
 * ```ts
 * import { PredictionService } from "./prediction_service.ts";
 * import { ModelStore } from "../store/model_store.ts";
 * const models = await ModelStore.open(await Deno.makeTempDir());
 * const service = new PredictionService(models, { maxImageBytes: 1e6, maxImagePixels: 1e6, maxImageSide: 512, maxRequestPixels: 1e7,
 *   maxPredictImages: 8, maxCachedModels: 2, isReady: () => true });
 * console.assert(service.activeModelId() === undefined);
 * ```
 */
export class PredictionService {
  #cache = new Map<string, Loaded>();
  #active?: Loaded;
  // What active.json said at start, until `restore` has loaded it (or found that it cannot).
  #recorded?: ActiveModelRecord;
  #restoring?: Promise<unknown>;
  #lock = new KeyedLock();
  // One drift monitor per model that has served, kept across cache evictions (its window is traffic, not
  // weights); dropped when the model is deleted.
  #monitors = new Map<string, DriftMonitor>();
  #driftListeners = new Set<(event: DriftEvent) => void>();
  // Served batches the monitors have not read yet (see #observeLater).
  #unobserved: { id: string; reference: DriftReference; watched: WatchedOutputs }[] = [];
  #observeTimer?: ReturnType<typeof setTimeout>;
  #observing: Promise<void> = Promise.resolve();

  constructor(readonly models: ModelStore, readonly options: PredictionServiceOptions) {}

  /**
   * The active model's id, if one is active. From the start that is the model `active.json` names, while
   * `restore` loads it; predictions for `active` wait for that load.
   */
  activeModelId(): string | undefined {
    return this.#active?.id ?? this.#recorded?.modelId;
  }

  /** Reads which model `active.json` names, so that it is reported active from the first request on. */
  async recall(): Promise<void> {
    this.#recorded = await this.models.readActive();
  }

  /**
   * Loads the model `active.json` names and makes it active again (after a restart), keeping its record
   * (`activatedAt` stays when it was activated). A model that fails to load is logged, and none is active.
   */
  restore(): Promise<string | undefined> {
    const restoring = this.#lock.run(ACTIVATION, async () => {
      const record = this.#recorded ?? await this.models.readActive();
      if (!record || this.#active) return this.#active?.id;
      try {
        this.#assertReady();
        return await this.#makeActive(record.modelId, () => Promise.resolve(record.modelId));
      } catch (err) {
        console.error(`[serve] could not restore active model ${record.modelId}:`, (err as Error).message);
        return undefined;
      } finally {
        this.#recorded = undefined;
      }
    });
    this.#restoring = restoring;
    return restoring;
  }

  /**
   * Loads a model fully, then makes it the active one (and records that in `active.json`).
   * @throws {RuntimeError} `not_found`/`model_not_found`, `unavailable`/`not_ready`.
   */
  activate(id: string): Promise<{ modelId: string; activatedAt: string }> {
    this.#assertReady();
    return this.#lock.run(ACTIVATION, () => this.#makeActive(id, () => this.models.writeActive(id)));
  }

  // Makes a model active once `commit` (writing active.json, or nothing on restore) has succeeded. The model
  // is loaded and run once first: that compiles the backend's kernels now, and proves the model runs before
  // anyone is sent to it.
  async #makeActive<T>(id: string, commit: () => Promise<T>): Promise<T> {
    const entry = this.#acquire(id);
    try {
      await (await entry.model).warmUp();
      const result = await commit();
      this.#active = entry;
      this.#recorded = undefined;
      return result;
    } finally {
      this.#release(entry);
    }
  }

  /**
   * Deletes a stored model and unloads it.
   * @throws {RuntimeError} `conflict`/`model_active` for the active model; `not_found`/`model_not_found`.
   */
  delete(id: string): Promise<void> {
    return this.#lock.run(ACTIVATION, async () => {
      if (this.activeModelId() === id) {
        throw new RuntimeError(
          "conflict",
          "model_active",
          `model ${id} is the active model; activate another before deleting it`,
          { id },
        );
      }
      await this.models.delete(id);
      for (const b of this.#unobserved) if (b.id === id) tf.dispose(b.watched.outputs);
      this.#unobserved = this.#unobserved.filter((b) => b.id !== id);
      this.#monitors.delete(id);
      this.options.traffic?.forget(id);
      const entry = this.#cache.get(id);
      if (entry) this.#evict(entry);
    });
  }

  /**
   * Predicts labels for a batch of images (JPEG, PNG, WebP, GIF, AVIF, TIFF), decoded off the event loop, in input order, with the `topK` best of each.
   * `modelRef` is a model id or `active`.
   *
   * @throws {RuntimeError} `invalid`/`no_images`, `too_large`/`too_many_images`,
   *   `too_large`/`pixel_budget_exceeded` (over `maxRequestPixels`), the decode errors of each
   *   image (naming it), `unavailable`/`no_active_model`, `not_found`/`model_not_found`,
   *   `unavailable`/`not_ready`.
   */
  async predict(modelRef: string, images: Uint8Array[], topK = 3): Promise<PredictionResult> {
    const served = this.options.demand?.begin();
    try {
      return await this.#predict(modelRef, images, topK);
    } finally {
      served?.();
    }
  }

  async #predict(modelRef: string, images: Uint8Array[], topK: number): Promise<PredictionResult> {
    this.#assertReady();
    if (images.length === 0) {
      throw new RuntimeError("invalid", "no_images", "the request holds no images", {});
    }
    if (images.length > this.options.maxPredictImages) {
      throw new RuntimeError(
        "too_large",
        "too_many_images",
        `images[${this.options.maxPredictImages}]: a request may hold at most ${this.options.maxPredictImages} ` +
          `images, got ${images.length}`,
        {
          index: this.options.maxPredictImages,
          count: images.length,
          maxPredictImages: this.options.maxPredictImages,
        },
      );
    }
    if (modelRef === ACTIVE_MODEL && !this.#active && this.#restoring) await this.#restoring;
    const entry = modelRef === ACTIVE_MODEL ? this.#active : this.#acquire(modelRef);
    if (!entry) {
      throw new RuntimeError(
        "unavailable",
        "no_active_model",
        "no model is active; activate one with POST /v1/models/{id}/activate",
        {},
      );
    }
    if (modelRef === ACTIVE_MODEL) entry.users++;
    try {
      const headers = await checkRequestPixels(images, "images", this.options);
      const decoded = await settleInOrder(
        images.map((bytes, index) =>
          decodeUploadedImage(bytes, { list: "images", index }, this.options, headers[index])
        ),
      );
      const model = await entry.model;
      const x = imagesToTensor(decoded, model.metadata.input);
      try {
        const reference = this.options.driftWindow ? model.metadata.driftReference : undefined;
        let predictions: Prediction[];
        if (!reference) predictions = await model.predict(x, topK);
        else {
          const served = await model.predictWatched(x, topK);
          this.#observeLater(entry.id, reference, served.watched);
          predictions = served.predictions;
        }
        this.options.traffic?.keep(entry.id, images);
        return { model: entry.id, predictions };
      } finally {
        x.dispose();
      }
    } finally {
      this.#release(entry);
    }
  }

  /**
   * The drift monitor's report of a model (`modelRef`: an id or `active`): the score of its window of
   * served images against the statistics of the images it was adapted on, the per-layer breakdown, the
   * history and the threshold crossings. A model made before the monitor existed, or a server with the
   * monitor off, gets `monitored: false` and the reason. `traffic` says how many of the model's served
   * images are kept for a `bn-refresh` from traffic (null when the server keeps none).
   *
   * @throws {RuntimeError} `not_found`/`model_not_found`, `unavailable`/`no_active_model`.
   */
  async drift(modelRef: string): Promise<ModelDrift> {
    const id = modelRef === ACTIVE_MODEL ? this.activeModelId() : modelRef;
    const report = await this.#monitorReport(id);
    return { ...report, traffic: this.options.traffic?.summary(report.modelId) ?? null };
  }

  // The monitor's share of a prediction (reading the watched layers' outputs, reducing them, re-scoring the
  // window) runs after the response has gone: in a task of its own, queued behind this request's, or first
  // thing when a drift report is asked for. It costs the same CPU, but not the client's wait (docs/DRIFT.md,
  // Serving cost). Until then the batch's watched tensors stay alive.
  #observeLater(id: string, reference: DriftReference, watched: WatchedOutputs) {
    this.#unobserved.push({ id, reference, watched });
    this.#observeTimer ??= setTimeout(() => void this.#observePending(), 0);
  }

  // Observes every batch served so far, in order; one drain at a time, so a report waits for all of them.
  #observePending(): Promise<void> {
    clearTimeout(this.#observeTimer);
    this.#observeTimer = undefined;
    this.#observing = this.#observing.then(async () => {
      while (this.#unobserved.length) {
        const { id, reference, watched } = this.#unobserved.shift()!;
        try {
          this.#monitor(id, reference).observe(imageStatistics(await readWatched(watched)));
        } catch (err) {
          console.error(`[drift] model ${id}: a served batch could not be observed:`, err);
        }
      }
    });
    return this.#observing;
  }

  async #monitorReport(id: string | undefined): Promise<DriftReport | UnmonitoredDrift> {
    if (!id) {
      throw new RuntimeError("unavailable", "no_active_model", "no model is active; activate one first", {});
    }
    const { metadata } = await this.models.detail(id);
    if (!this.options.driftWindow) {
      return {
        modelId: id,
        monitored: false,
        reason: "monitor_off",
        message: "the drift monitor is off on this server (drift window 0)",
      };
    }
    if (!metadata.driftReference) {
      return {
        modelId: id,
        monitored: false,
        reason: "no_reference",
        message: "this model was saved without reference statistics (made before the drift monitor); " +
          "adapt or refresh it again to monitor it",
      };
    }
    await this.#observePending();
    return this.#monitor(id, metadata.driftReference).report();
  }

  /**
   * Resolves once the drift monitors have read every batch served so far (they do so after each response,
   * see `predict`); for a benchmark that counts that work, or a test that counts tensors.
   */
  observed(): Promise<void> {
    return this.#observePending();
  }

  /** Calls `listener` with every drift event of any model, until the returned function is called. */
  onDriftEvent(listener: (event: DriftEvent) => void): () => void {
    this.#driftListeners.add(listener);
    return () => this.#driftListeners.delete(listener);
  }

  /**
   * A model's drift as it goes: first its report now, then each of its drift events, until `signal` aborts.
   * @throws {RuntimeError} `drift`'s errors (`model_not_found`), before anything is yielded.
   */
  async *followDrift(
    id: string,
    signal?: AbortSignal,
  ): AsyncGenerator<DriftReport | UnmonitoredDrift | DriftEvent> {
    const first = await this.drift(id);
    const batches = eventBatches<DriftEvent>((listener) =>
      this.onDriftEvent((event) => {
        if (event.modelId === first.modelId) listener(event);
      }), signal);
    try {
      yield first;
      for await (const batch of batches) yield* batch;
    } finally {
      await batches.return?.();
    }
  }

  #monitor(id: string, reference: DriftReference): DriftMonitor {
    let monitor = this.#monitors.get(id);
    if (!monitor) {
      monitor = new DriftMonitor(id, reference, {
        window: this.options.driftWindow!,
        threshold: this.options.driftThreshold ?? DEFAULT_DRIFT_THRESHOLD,
        onEvent: (event) => {
          for (const listener of this.#driftListeners) {
            try {
              listener(event);
            } catch (err) {
              console.error(`[drift] a listener failed:`, err);
            }
          }
        },
      });
      this.#monitors.set(id, monitor);
    }
    return monitor;
  }

  /** Unloads every model. */
  async dispose(): Promise<void> {
    clearTimeout(this.#observeTimer);
    this.#observeTimer = undefined;
    for (const b of this.#unobserved) tf.dispose(b.watched.outputs);
    this.#unobserved = [];
    this.#active = undefined;
    for (const entry of [...this.#cache.values()]) this.#evict(entry);
    await Promise.allSettled([...this.#cache.values()].map((e) => e.model));
  }

  #assertReady() {
    if (!this.options.isReady()) {
      throw new RuntimeError(
        "unavailable",
        "not_ready",
        "the compute backend is still starting; try again shortly",
        {},
      );
    }
  }

  // The cache entry of a model, loading it if needed (a failed load is not cached), counted as in use
  // until #release.
  #acquire(id: string): Loaded {
    let entry = this.#cache.get(id);
    if (!entry) {
      const model = this.models.dir(id).then((dir) => AdaptedModel.load(dir));
      const loaded: Loaded = { id, model, users: 0, evicted: false, lastUsed: 0 };
      this.#cache.set(id, loaded);
      model.catch(() => {
        if (this.#cache.get(id) === loaded) this.#cache.delete(id);
      });
      entry = loaded;
    }
    entry.users++;
    entry.lastUsed = performance.now();
    this.#trim();
    return entry;
  }

  // Evicts the least recently used idle models beyond the limit; the active model and models in use stay.
  #trim() {
    const idle = [...this.#cache.values()]
      .filter((e) => e !== this.#active && e.users === 0)
      .sort((a, b) => a.lastUsed - b.lastUsed);
    while (this.#cache.size > this.options.maxCachedModels && idle.length) this.#evict(idle.shift()!);
  }

  #evict(entry: Loaded) {
    if (this.#cache.get(entry.id) === entry) this.#cache.delete(entry.id);
    entry.evicted = true;
    if (entry.users === 0) entry.model.then((m) => m.dispose(), () => {});
  }

  #release(entry: Loaded) {
    entry.users--;
    if (entry.evicted && entry.users === 0 && entry !== this.#active) {
      entry.model.then((m) => m.dispose(), () => {});
    }
    if (!entry.evicted) this.#trim();
  }
}
