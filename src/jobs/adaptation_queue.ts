import type { Method } from "../adapt/methods.ts";
import { MIN_SAMPLES_PER_CLASS } from "../adapt/validate_training_set.ts";
import type { BackendPolicy } from "../backend/init_backend.ts";
import type { WasmThreads } from "../backend/start_wasm_backend.ts";
import { RuntimeError, scrubPaths } from "../errors.ts";
import { listBackbones } from "../model/registry.ts";
import type { DatasetStore } from "../store/dataset_store.ts";
import {
  type AdaptationRequest,
  FINAL_JOB_STATUSES,
  type JobError,
  type JobRecord,
  type JobStatus,
} from "../store/job_record.ts";
import type { JobStore } from "../store/job_store.ts";
import type { ModelStore } from "../store/model_store.ts";
import { newResourceId } from "../store/resource_id.ts";
import { toJobError } from "./job_error.ts";
import type { AdaptationTask, WorkerCommand, WorkerReport } from "./worker_messages.ts";

/** What a caller submits: the request, with backbone and method optional. */
export type AdaptationSubmission = Omit<AdaptationRequest, "backbone" | "method"> & {
  backbone?: string;
  method?: Method | "bn-refresh";
};

/** A change to a job, as subscribers see it. `done` is the last event of a job. */
export interface JobEvent {
  type: "status" | "progress" | "epoch" | "done";
  job: JobRecord;
}

/** Options of {@linkcode AdaptationQueue.open}. */
export interface AdaptationQueueOptions {
  dataDir: string;
  datasets: DatasetStore;
  models: ModelStore;
  jobs: JobStore;
  backend: BackendPolicy;
  /** Threads of each worker's wasm backend; default `auto`. */
  wasmThreads?: WasmThreads;
  defaultBackbone: string;
  /** Most jobs waiting behind the running one. */
  maxQueuedJobs: number;
  /** How long a cancelled job may take to stop before its worker is terminated. */
  cancelGraceMs: number;
  maxImagePixels: number;
  /** Longest side a stored image decodes at (uploads are stored within it already). */
  maxImageSide: number;
  /** The count of predictions in progress (`ServingDemand.buffer`); the job's worker pauses while it is non-zero. */
  servingDemand?: SharedArrayBuffer;
  /** Called when a job that asked for `activate` succeeds. */
  activate?: (modelId: string) => Promise<unknown>;
  /** The worker module; tests may substitute one. */
  workerUrl?: URL;
}

interface RunningJob {
  job: JobRecord;
  worker: Worker;
  cancelFlag: Int32Array;
  stop: (status: JobStatus, error?: JobError) => void;
}

// From source, the worker's module; in a release (cli/release.ts), its bundle, beside the server's.
const WORKER_URL = new URL(
  import.meta.url.endsWith(".ts") ? "./adaptation_worker.ts" : "./adaptation_worker.js",
  import.meta.url,
);

const INTERRUPTED: JobError = {
  code: "interrupted",
  message:
    "the server stopped while this job was running; start it again with POST /v1/adaptations/{id}/retry",
  details: {},
};

/**
 * The adaptation queue: jobs run one at a time, each in its own Web Worker (adaptation_worker.ts), so the
 * compute has one owner and the HTTP thread stays free. At most `maxQueuedJobs` wait behind the running one;
 * more are refused with `busy`. Every change is saved to the job store and sent to subscribers.
 *
 * Cancelling a queued job removes it. Cancelling a running one sets a shared-memory flag and sends a
 * message; the worker aborts the engine's signal, which stops within one training step; a worker that has
 * not stopped after `cancelGraceMs` is terminated.
 *
 * On open, a job the last process left `running` is marked `failed` with code `interrupted` (retry it with
 * {@linkcode AdaptationQueue.retry}), and `queued` jobs are queued again.
 *
 * @example
 * ```ts
 * import { AdaptationQueue } from "./adaptation_queue.ts";
 * import { openStores } from "../store/open_stores.ts";
 * const stores = await openStores(await Deno.makeTempDir());
 * const queue = await AdaptationQueue.open({ ...stores, backend: "cpu", defaultBackbone: "tiny",
 *   maxQueuedJobs: 8, cancelGraceMs: 5000, maxImagePixels: 1 << 24, maxImageSide: 512 });
 * console.assert(queue.list().length === 0);
 * await queue.close();
 * ```
 */
export class AdaptationQueue {
  #jobs = new Map<string, JobRecord>();
  #waiting: JobRecord[] = [];
  #running?: RunningJob;
  #runningDone?: Promise<void>;
  #started = false;
  #closed = false;
  #listeners = new Map<string, Set<(event: JobEvent) => void>>();

  private constructor(readonly options: AdaptationQueueOptions) {}

  /** Loads the stored jobs and recovers those the last process left unfinished. Call `start` to run jobs. */
  static async open(options: AdaptationQueueOptions): Promise<AdaptationQueue> {
    const queue = new AdaptationQueue(options);
    for (const job of await options.jobs.list()) {
      queue.#jobs.set(job.id, job);
      if (job.status === "running") {
        Object.assign(job, { status: "failed", finishedAt: new Date().toISOString(), error: INTERRUPTED });
        delete job.cancelRequested;
        await options.jobs.save(job);
      } else if (job.status === "queued") {
        queue.#waiting.push(job);
      }
    }
    return queue;
  }

  /** Starts running queued jobs. */
  start(): void {
    this.#started = true;
    this.#pump();
  }

  /** Every job, newest first. */
  list(): JobRecord[] {
    return [...this.#jobs.values()].reverse();
  }

  /** One job. @throws {RuntimeError} `not_found`/`job_not_found`. */
  get(id: string): JobRecord {
    const job = this.#jobs.get(id);
    if (!job) {
      throw new RuntimeError("not_found", "job_not_found", `no adaptation job with id '${id}'`, { id });
    }
    return job;
  }

  /**
   * Queues an adaptation after checking what can be checked now: the dataset exists with at least two
   * labels of at least two samples each, and the backbone is registered. Returns the job as queued.
   *
   * @throws {RuntimeError} `not_found`/`dataset_not_found`, `invalid`/`unknown_backbone`,
   *   `invalid`/`too_few_classes`, `invalid`/`too_few_samples`, `busy`/`queue_full` (with
   *   `details.retryAfterSeconds`), `unavailable`/`shutting_down`.
   */
  async submit(submission: AdaptationSubmission, retryOf?: string): Promise<JobRecord> {
    const request: AdaptationRequest = {
      ...submission,
      backbone: submission.backbone ?? this.options.defaultBackbone,
      method: submission.method ?? "daft",
    };
    if (request.method === "bn-refresh") {
      request.backbone = await checkRefresh(request, this.options.models, this.options.datasets);
    } else {
      if (request.model !== undefined) {
        throw new RuntimeError(
          "invalid",
          "unexpected_model",
          `'model' names the model a bn-refresh refreshes; method ${request.method} adapts a backbone`,
          { method: request.method },
        );
      }
      const backbones = listBackbones().map((b) => b.name);
      if (!backbones.includes(request.backbone)) {
        throw new RuntimeError("invalid", "unknown_backbone", `no backbone named '${request.backbone}'`, {
          backbone: request.backbone,
          available: backbones,
        });
      }
      const dataset = await this.options.datasets.get(request.dataset);
      checkCounts(dataset.id, dataset.counts, dataset.unlabelled);
    }
    if (this.#closed) throw new RuntimeError("unavailable", "shutting_down", "the server is shutting down");
    this.#assertRoom();
    const job: JobRecord = {
      id: newResourceId("job"),
      status: "queued",
      request,
      createdAt: new Date().toISOString(),
      history: [],
      ...(retryOf ? { retryOf } : {}),
    };
    this.#jobs.set(job.id, job);
    this.#waiting.push(job);
    try {
      await this.options.jobs.save(job);
    } catch (err) {
      // Not on disk (a full disk): not queued either, so the caller's error is the whole truth.
      this.#jobs.delete(job.id);
      this.#waiting = this.#waiting.filter((j) => j !== job);
      throw err;
    }
    const queued = structuredClone(job);
    this.#emit("status", job);
    this.#pump();
    return queued;
  }

  /**
   * Queues a failed (or interrupted) or cancelled job's request again, as a new job, and returns it as
   * queued.
   * @throws {RuntimeError} `conflict`/`job_not_retryable` unless the job failed or was cancelled, and
   *   {@linkcode AdaptationQueue.submit}'s errors.
   */
  async retry(id: string): Promise<JobRecord> {
    const job = this.get(id);
    if (job.status !== "failed" && job.status !== "cancelled") {
      throw new RuntimeError(
        "conflict",
        "job_not_retryable",
        `job ${id} is ${job.status}; only failed or cancelled jobs can be retried`,
        { id, status: job.status },
      );
    }
    return await this.submit(job.request, id);
  }

  /**
   * Cancels a job: a queued one at once, a running one within one training step (or by terminating its
   * worker after the grace period). Returns the job as it is now.
   * @throws {RuntimeError} `not_found`/`job_not_found`; `conflict`/`job_finished` for a finished job.
   */
  async cancel(id: string): Promise<JobRecord> {
    const job = this.get(id);
    if (FINAL_JOB_STATUSES.includes(job.status)) {
      throw new RuntimeError("conflict", "job_finished", `job ${id} has already ${job.status}`, {
        id,
        status: job.status,
      });
    }
    if (job.status === "queued") {
      this.#waiting = this.#waiting.filter((j) => j !== job);
      await this.#finish(job, "cancelled", cancelledError("before it started"));
      return job;
    }
    const running = this.#running!;
    if (!job.cancelRequested) {
      job.cancelRequested = true;
      Atomics.store(running.cancelFlag, 0, 1);
      running.worker.postMessage({ type: "cancel" } satisfies WorkerCommand);
      const timer = setTimeout(() => {
        if (this.#running === running) {
          running.stop(
            "cancelled",
            cancelledError(`by terminating its worker after ${this.options.cancelGraceMs} ms`),
          );
        }
      }, this.options.cancelGraceMs);
      this.#runningDone?.finally(() => clearTimeout(timer));
      await this.options.jobs.save(job);
      this.#emit("status", job);
    }
    return job;
  }

  /** Whether a queued or running job reads this dataset. */
  usesDataset(datasetId: string): boolean {
    return this.#waiting.some((j) => j.request.dataset === datasetId) ||
      this.#running?.job.request.dataset === datasetId;
  }

  /**
   * Calls `listener` with every later change to a job, until the returned function is called.
   * @throws {RuntimeError} `not_found`/`job_not_found`.
   */
  subscribe(id: string, listener: (event: JobEvent) => void): () => void {
    this.get(id);
    const set = this.#listeners.get(id) ?? new Set();
    set.add(listener);
    this.#listeners.set(id, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(id);
    };
  }

  /**
   * Stops taking jobs and ends the running one as `failed`/`interrupted` (it can be retried); queued jobs
   * stay queued on disk and run after the next start.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#running?.stop("failed", INTERRUPTED);
    await this.#runningDone;
  }

  #assertRoom() {
    const waitingAfter = this.#waiting.length + 1 - (this.#running || !this.#started ? 0 : 1);
    if (waitingAfter <= this.options.maxQueuedJobs) return;
    const retryAfterSeconds = this.#estimateWait();
    throw new RuntimeError(
      "busy",
      "queue_full",
      `${this.#waiting.length} adaptation jobs are already waiting (the limit is ${this.options.maxQueuedJobs}); ` +
        `try again in about ${retryAfterSeconds} s`,
      { maxQueuedJobs: this.options.maxQueuedJobs, retryAfterSeconds },
    );
  }

  // Until the running job ends, judged from its progress so far; 30 s when there is nothing to judge by.
  #estimateWait(): number {
    const job = this.#running?.job;
    const fraction = job?.progress?.fraction ?? 0;
    if (!job?.startedAt || fraction < 0.05) return 30;
    const elapsed = (Date.now() - Date.parse(job.startedAt)) / 1000;
    return Math.min(3600, Math.max(1, Math.ceil(elapsed / fraction - elapsed)));
  }

  #pump() {
    if (!this.#started || this.#closed || this.#running) return;
    const job = this.#waiting.shift();
    if (!job) return;
    this.#runningDone = this.#run(job).catch((err) => {
      console.error(`[jobs] job ${job.id} could not be run:`, err);
    }).finally(() => {
      this.#running = undefined;
      this.#pump();
    });
  }

  #run(job: JobRecord): Promise<void> {
    const modelId = newResourceId("model");
    const task: AdaptationTask = {
      jobId: job.id,
      modelId,
      dataDir: this.options.dataDir,
      backend: this.options.backend,
      wasmThreads: this.options.wasmThreads,
      request: job.request,
      maxImagePixels: this.options.maxImagePixels,
      maxImageSide: this.options.maxImageSide,
    };
    Object.assign(job, { status: "running", startedAt: new Date().toISOString() });
    job.progress = { phase: "starting", fraction: 0 };
    // A failed save of the running state is superseded by the final one; it must not go unwatched meanwhile.
    const saved = this.options.jobs.save(job).catch((err) => this.#logSaveFailure(job, err));
    this.#emit("status", job);

    const worker = new Worker((this.options.workerUrl ?? WORKER_URL).href, { type: "module" });
    const cancelFlag = new Int32Array(new SharedArrayBuffer(4));
    return new Promise<void>((resolve, reject) => {
      let ended = false;
      const end = async (status: JobStatus, error?: JobError, metrics?: JobRecord["metrics"]) => {
        if (ended) return;
        ended = true;
        worker.terminate();
        try {
          await saved;
          if (status === "succeeded") {
            try {
              await this.options.models.commit({
                id: modelId,
                createdAt: new Date().toISOString(),
                jobId: job.id,
                dataset: { id: job.request.dataset, name: job.dataset?.name ?? "" },
              });
              job.metrics = metrics;
              job.modelId = modelId;
            } catch (err) {
              // The model could not be published (a full disk, say): the job fails and the staging goes.
              [status, error] = ["failed", toJobError(err, this.options.dataDir)];
              await this.options.models.discard(modelId);
            }
          } else {
            await this.options.models.discard(modelId);
          }
          if (status === "succeeded") {
            // The job is done when its model serves, if it asked to: `done` then means "predict now".
            // The guard: a model at chance or below the linear-probe baseline is saved, not activated,
            // unless the request says "force"; predictions keep coming from the previous active model.
            const guard = metrics?.guard;
            if (job.request.activate && guard && guard.verdict !== "ok" && job.request.activate !== "force") {
              job.activated = false;
              job.activationSkipped = { code: guard.verdict, message: guard.message };
            } else if (job.request.activate && this.options.activate) {
              try {
                await this.options.activate(modelId);
                job.activated = true;
              } catch (err) {
                job.activationError = toJobError(err, this.options.dataDir);
              }
            }
          }
          await this.#finish(job, status, error);
          resolve();
        } catch (err) {
          reject(err);
        }
      };
      this.#running = { job, worker, cancelFlag, stop: (status, error) => void end(status, error) };
      worker.onmessage = (event: MessageEvent<WorkerReport>) => {
        const report = event.data;
        switch (report.type) {
          case "started":
            job.dataset = report.dataset;
            break;
          case "progress":
            job.progress = report.progress;
            this.#emit("progress", job);
            break;
          case "epoch":
            job.history.push(report.record);
            this.options.jobs.save(job).catch((err) => this.#logSaveFailure(job, err));
            this.#emit("epoch", job);
            break;
          case "succeeded":
            void end("succeeded", undefined, report.metrics);
            break;
          case "failed":
            void end(report.error.code === "cancelled" ? "cancelled" : "failed", report.error);
            break;
        }
      };
      worker.onerror = (event) => {
        event.preventDefault();
        void end("failed", {
          code: "worker_crashed",
          message: `the adaptation worker crashed: ${scrubPaths(event.message ?? "", this.options.dataDir)}`,
          details: {},
        });
      };
      const servingDemand = this.options.servingDemand && new Int32Array(this.options.servingDemand);
      worker.postMessage({ type: "start", task, cancelFlag, servingDemand } satisfies WorkerCommand);
    });
  }

  async #finish(job: JobRecord, status: JobStatus, error?: JobError) {
    job.status = status;
    job.finishedAt = new Date().toISOString();
    delete job.cancelRequested;
    if (status === "succeeded") job.progress = { phase: "saving", fraction: 1 };
    if (error) job.error = error;
    try {
      await this.options.jobs.save(job);
    } finally {
      // Subscribers learn the end even when the record could not be saved (the next start then finds the
      // job running and marks it interrupted).
      this.#emit("done", job);
    }
  }

  #logSaveFailure(job: JobRecord, err: unknown) {
    console.error(
      `[jobs] job ${job.id}'s record could not be saved: ${toJobError(err, this.options.dataDir).message}`,
    );
  }

  #emit(type: JobEvent["type"], job: JobRecord) {
    for (const listener of this.#listeners.get(job.id) ?? []) {
      try {
        listener({ type, job });
      } catch (err) {
        console.error(`[jobs] a listener of job ${job.id} failed:`, err);
      }
    }
  }
}

function cancelledError(how: string): JobError {
  return { code: "cancelled", message: `the adaptation was cancelled ${how}`, details: {} };
}

// A bn-refresh names an existing model and a dataset with images; it keeps the model's backbone.
async function checkRefresh(request: AdaptationRequest, models: ModelStore, datasets: DatasetStore) {
  if (!request.model) {
    throw new RuntimeError(
      "invalid",
      "missing_model",
      "a bn-refresh needs 'model', the id of the model to refresh",
    );
  }
  const model = await models.get(request.model);
  const dataset = await datasets.get(request.dataset);
  if (dataset.sampleCount === 0) {
    throw new RuntimeError("invalid", "no_images", `dataset ${dataset.id} holds no images to refresh on`, {
      dataset: dataset.id,
    });
  }
  return model.backbone;
}

function checkCounts(datasetId: string, counts: Record<string, number>, unlabelled = 0) {
  const labels = Object.keys(counts);
  if (labels.length < 2) {
    throw new RuntimeError(
      "invalid",
      "too_few_classes",
      `dataset ${datasetId} has ${labels.length} label(s); adaptation needs at least 2` +
        (unlabelled ? ` (its ${unlabelled} unlabelled samples are for bn-refresh and do not count)` : ""),
      { dataset: datasetId, counts, unlabelled },
    );
  }
  const short = labels.filter((l) => counts[l] < MIN_SAMPLES_PER_CLASS);
  if (short.length) {
    throw new RuntimeError(
      "invalid",
      "too_few_samples",
      `every label needs at least ${MIN_SAMPLES_PER_CLASS} samples (one to train, one to validate); ` +
        `short: ${short.join(", ")}`,
      { dataset: datasetId, counts },
    );
  }
}
