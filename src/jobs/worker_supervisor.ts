import { scrubPaths } from "../errors.ts";
import type { JobError, JobRecord } from "./job_record.ts";
import type { AdaptationTask, WorkerCommand, WorkerReport } from "./worker_messages.ts";

// From source, the worker's module; in a release (cli/release.ts), its bundle, beside the server's.
const WORKER_URL = new URL(
  import.meta.url.endsWith(".ts") ? "./adaptation_worker.ts" : "./adaptation_worker.js",
  import.meta.url,
);

/** How a job's worker ended: what the worker reported, or why it was stopped. */
export interface WorkerOutcome {
  status: "succeeded" | "failed" | "cancelled";
  error?: JobError;
  metrics?: JobRecord["metrics"];
}

/** Options of {@linkcode superviseWorker}. */
export interface SupervisorOptions {
  /** How long a cancelled job may take to stop before its worker is terminated. */
  cancelGraceMs: number;
  /** The count of predictions in progress (`ServingDemand.buffer`); the worker pauses while it is non-zero. */
  servingDemand?: SharedArrayBuffer;
  /** The worker module; tests may substitute one. */
  workerUrl?: URL;
  /** Every report but the last (`started`, `progress`, `epoch`), as it arrives. */
  onReport: (report: Exclude<WorkerReport, { type: "succeeded" | "failed" }>) => void;
}

/** A running job's worker, from {@linkcode superviseWorker}. */
export interface SupervisedWorker {
  /** Settles once, when the worker has reported its end, crashed or been stopped; it never rejects. */
  outcome: Promise<WorkerOutcome>;
  /**
   * Asks the worker to stop within one training step (a shared flag it reads at every step, and a message);
   * terminates it as cancelled if it has not stopped after the grace period.
   */
  cancel(): void;
  /** Terminates the worker now; the outcome is `status` with `error`. */
  stop(status: WorkerOutcome["status"], error?: JobError): void;
}

/**
 * Runs one adaptation task in a fresh Web Worker (adaptation_worker.ts) and supervises it: relays its
 * reports, turns a crash into a `worker_crashed` failure (paths scrubbed), cancels it cooperatively with a
 * deadline, and terminates it once it has ended, so nothing it allocated outlives the job.
 *
 * @example
 * ```ts ignore
 * import { superviseWorker } from "./worker_supervisor.ts";
 * const worker = superviseWorker(task, { cancelGraceMs: 10_000, onReport: (r) => console.log(r.type) });
 * const { status } = await worker.outcome;
 * ```
 */
export function superviseWorker(task: AdaptationTask, options: SupervisorOptions): SupervisedWorker {
  const worker = new Worker((options.workerUrl ?? WORKER_URL).href, { type: "module" });
  const cancelFlag = new Int32Array(new SharedArrayBuffer(4));
  let settle: (outcome: WorkerOutcome) => void = () => {};
  let ended = false;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const outcome = new Promise<WorkerOutcome>((resolve) => (settle = resolve));
  const end = (result: WorkerOutcome) => {
    if (ended) return;
    ended = true;
    clearTimeout(graceTimer);
    worker.terminate();
    settle(result);
  };
  worker.onmessage = (event: MessageEvent<WorkerReport>) => {
    const report = event.data;
    if (report.type === "succeeded") end({ status: "succeeded", metrics: report.metrics });
    else if (report.type === "failed") {
      end({ status: report.error.code === "cancelled" ? "cancelled" : "failed", error: report.error });
    } else if (!ended) options.onReport(report);
  };
  worker.onerror = (event) => {
    event.preventDefault();
    end({
      status: "failed",
      error: {
        code: "worker_crashed",
        message: `the adaptation worker crashed: ${scrubPaths(event.message ?? "", task.dataDir)}`,
        details: {},
      },
    });
  };
  const servingDemand = options.servingDemand && new Int32Array(options.servingDemand);
  worker.postMessage({ type: "start", task, cancelFlag, servingDemand } satisfies WorkerCommand);
  return {
    outcome,
    cancel() {
      if (ended || Atomics.load(cancelFlag, 0) !== 0) return;
      Atomics.store(cancelFlag, 0, 1);
      worker.postMessage({ type: "cancel" } satisfies WorkerCommand);
      graceTimer = setTimeout(() => {
        end({
          status: "cancelled",
          error: {
            code: "cancelled",
            message:
              `the adaptation was cancelled by terminating its worker after ${options.cancelGraceMs} ms`,
            details: {},
          },
        });
      }, options.cancelGraceMs);
    },
    stop: (status, error) => end({ status, error }),
  };
}
