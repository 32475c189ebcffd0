import type { EpochRecord } from "../adapt/adaptation_metrics.ts";
import type { BackendPolicy } from "../backend/init_backend.ts";
import type { WasmThreads } from "../backend/start_wasm_backend.ts";
import type {
  AdaptationRequest,
  JobError,
  JobMetrics,
  JobProgress,
  RefreshJobMetrics,
} from "./job_record.ts";

/** Everything a worker needs to run one job, without access to the main thread's state. */
export interface AdaptationTask {
  jobId: string;
  /** Id the new model will have; the worker saves it into the model store's staging directory for it. */
  modelId: string;
  dataDir: string;
  backend: BackendPolicy;
  /** Threads of the worker's wasm backend; default `auto`. */
  wasmThreads?: WasmThreads;
  request: AdaptationRequest;
  /** Image limits, as for uploads (the stored files already passed them). */
  maxImagePixels: number;
  /** Longest side an image decodes at, as for uploads. */
  maxImageSide: number;
}

/**
 * Main thread to worker. `cancelFlag` is shared memory: set to 1 it cancels even a busy event loop.
 * `servingDemand`, shared too, counts the predictions in progress; the worker gives way while it is non-zero.
 */
export type WorkerCommand =
  | { type: "start"; task: AdaptationTask; cancelFlag: Int32Array; servingDemand?: Int32Array }
  | { type: "cancel" };

/** Worker to main thread. Exactly one of `succeeded` or `failed` ends a job. */
export type WorkerReport =
  | {
    type: "started";
    backend: string;
    dataset: { id: string; name: string; counts: Record<string, number> };
  }
  | { type: "progress"; progress: JobProgress }
  | { type: "epoch"; record: EpochRecord }
  | { type: "succeeded"; metrics: JobMetrics | RefreshJobMetrics }
  | { type: "failed"; error: JobError };
