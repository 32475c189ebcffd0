import type { BackendPolicy } from "../backend/init_backend.ts";
import type { WasmThreads } from "../backend/start_wasm_backend.ts";
import { RuntimeError } from "../errors.ts";
import { KeyedLock } from "../keyed_lock.ts";
import type { DatasetStore } from "../store/dataset_store.ts";
import type { ModelStore } from "../store/model_store.ts";
import { newResourceId } from "../store/resource_id.ts";
import { admit } from "./admission.ts";
import { toJobError } from "./job_error.ts";
import { type JobEvent, JobEvents, jobNotFound } from "./job_events.ts";
import {
  type AdaptationSubmission,
  FINAL_JOB_STATUSES,
  type JobError,
  type JobRecord,
  type JobStatus,
} from "./job_record.ts";
import type { JobStore } from "./job_store.ts";
import { publishModel } from "./publish_model.ts";
import { type SupervisedWorker, superviseWorker } from "./worker_supervisor.ts";

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
  worker: SupervisedWorker;
}

const INTERRUPTED: JobError = {
  code: "interrupted",
  message:
    "the server stopped while this job was running; start it again with POST /v1/adaptations/{id}/retry",
  details: {},
};

/**
 * The adaptation queue schedules jobs: one runs at a time, in its own supervised Web Worker
 * (`superviseWorker`), so the compute has one owner and the HTTP thread stays free. At most `maxQueuedJobs`
 * wait behind the running one; more are refused with `busy`. Submissions pass `admit` first. Every change is
 * saved to the job store and published on `events`; a finished job's model is published by `publishModel`.
 *
 * Cancelling a queued job removes it; cancelling a running one asks its worker to stop within one training
 * step, and terminates it after `cancelGraceMs`.
 *
 * On open, a job the last process left `running` is marked `failed` with code `interrupted` (retry it with
 * {@linkcode AdaptationQueue.retry}), and `queued` jobs are queued again.
 *
 * @example
 * ```ts
 * import { AdaptationQueue } from "./adaptation_queue.ts";
 * import { JobStore } from "./job_store.ts";
 * import { openStores } from "../store/open_stores.ts";
 * const dataDir = await Deno.makeTempDir();
 * const stores = await openStores(dataDir);
 * const queue = await AdaptationQueue.open({ ...stores, jobs: await JobStore.open(`${dataDir}/jobs`),
 *   backend: "cpu", defaultBackbone: "tiny", maxQueuedJobs: 8, cancelGraceMs: 5000, maxImagePixels: 1 << 24,
 *   maxImageSide: 512 });
 * console.assert(queue.list().length === 0);
 * await queue.close();
 * ```
 */
export class AdaptationQueue {
  /** Every change to a job, per job. */
  readonly events = new JobEvents();
  #jobs = new Map<string, JobRecord>();
  #waiting: JobRecord[] = [];
  #running?: RunningJob;
  #runningDone?: Promise<void>;
  #started = false;
  #closed = false;
  // Held per dataset id from admission to queueing, and around a dataset's deletion: a dataset cannot be
  // deleted between a job's check of it and the job joining the queue.
  #datasetLock = new KeyedLock();

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
    if (!job) throw jobNotFound(id);
    return job;
  }

  /**
   * One job's events as it runs, from its state now to its end (see `JobEvents.follow`).
   * @throws {RuntimeError} `not_found`/`job_not_found`, before anything is yielded.
   */
  follow(id: string, signal?: AbortSignal): AsyncGenerator<JobEvent> {
    return this.events.follow(this.get(id), signal);
  }

  /**
   * Queues an adaptation after `admit` has checked it, and returns the job as queued.
   *
   * @throws {RuntimeError} `admit`'s errors, `busy`/`queue_full` (with `details.retryAfterSeconds`),
   *   `unavailable`/`shutting_down`.
   */
  submit(submission: AdaptationSubmission, retryOf?: string): Promise<JobRecord> {
    return this.#datasetLock.run(submission.dataset, async () => {
      const request = await admit(submission, this.options);
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
      this.events.emit("status", job);
      this.#pump();
      return queued;
    });
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
   * worker after the grace period). Returns the job as the cancel left it: cancelled, or running with
   * `cancelRequested`.
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
      await this.#finish(job, "cancelled", {
        code: "cancelled",
        message: "the adaptation was cancelled before it started",
        details: {},
      });
      return job;
    }
    if (job.cancelRequested) return structuredClone(job);
    job.cancelRequested = true;
    // The answer is the job as the request left it: the worker may stop, and the job end, before the save
    // below returns, and "cancellation under way" must not read as "cancelled" by then.
    const asked = structuredClone(job);
    this.#running!.worker.cancel();
    await this.options.jobs.save(job);
    this.events.emit("status", job);
    return asked;
  }

  /** Whether a queued or running job reads this dataset. */
  usesDataset(datasetId: string): boolean {
    return this.#waiting.some((j) => j.request.dataset === datasetId) ||
      this.#running?.job.request.dataset === datasetId;
  }

  /**
   * Runs `change` (a deletion, a relabelling) on dataset `id` unless a queued or running job reads it: a
   * queued job reads its dataset when it starts, so changing the samples under it would change what it
   * trains on. Atomic with respect to `submit`: no job is admitted on the dataset while `change` runs.
   * @throws {RuntimeError} `conflict`/`dataset_in_use`, and what `change` throws.
   */
  changeDataset<T>(id: string, change: () => Promise<T>): Promise<T> {
    return this.#datasetLock.run(id, () => {
      if (this.usesDataset(id)) {
        throw new RuntimeError(
          "conflict",
          "dataset_in_use",
          `dataset ${id} is used by a queued or running adaptation`,
          { id },
        );
      }
      return change();
    });
  }

  /**
   * Stops taking jobs and ends the running one as `failed`/`interrupted` (it can be retried); queued jobs
   * stay queued on disk and run after the next start.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#running?.worker.stop("failed", INTERRUPTED);
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

  async #run(job: JobRecord): Promise<void> {
    const modelId = newResourceId("model");
    Object.assign(job, { status: "running", startedAt: new Date().toISOString() });
    job.progress = { phase: "starting", fraction: 0 };
    // A failed save of the running state is superseded by the final one; it must not go unwatched meanwhile.
    const saved = this.options.jobs.save(job).catch((err) => this.#logSaveFailure(job, err));
    this.events.emit("status", job);
    const worker = superviseWorker({
      jobId: job.id,
      modelId,
      dataDir: this.options.dataDir,
      backend: this.options.backend,
      wasmThreads: this.options.wasmThreads,
      request: job.request,
      maxImagePixels: this.options.maxImagePixels,
      maxImageSide: this.options.maxImageSide,
    }, {
      cancelGraceMs: this.options.cancelGraceMs,
      servingDemand: this.options.servingDemand,
      workerUrl: this.options.workerUrl,
      onReport: (report) => {
        switch (report.type) {
          case "started":
            job.dataset = report.dataset;
            break;
          case "progress":
            job.progress = report.progress;
            this.events.emit("progress", job);
            break;
          case "epoch":
            job.history.push(report.record);
            this.options.jobs.save(job).catch((err) => this.#logSaveFailure(job, err));
            this.events.emit("epoch", job);
            break;
        }
      },
    });
    this.#running = { job, worker };
    const outcome = await worker.outcome;
    await saved;
    const final = await publishModel(job, modelId, outcome, this.options);
    await this.#finish(job, final.status, final.error);
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
      this.events.emit("done", job);
    }
  }

  #logSaveFailure(job: JobRecord, err: unknown) {
    console.error(
      `[jobs] job ${job.id}'s record could not be saved: ${toJobError(err, this.options.dataDir).message}`,
    );
  }
}
