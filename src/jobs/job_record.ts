import type { AdaptationMetrics, EpochRecord } from "../adapt/adaptation_metrics.ts";
import type { BnConversionReport } from "../adapt/bn_conversion.ts";
import { DEFAULT_METHOD, type Method, METHOD_NAMES } from "../adapt/methods.ts";
import type { BnRefreshReport } from "../adapt/bn_refresh.ts";
import type { RefreshGuard } from "../adapt/refresh_guard.ts";

/** Where an adaptation job is in its life. */
export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** The statuses a job never leaves. */
export const FINAL_JOB_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "cancelled"];

/** What an adaptation job may run: a labelled method, or `bn-refresh` (AdaBN of a model, no labels). */
export type AdaptationMethod = Method | "bn-refresh";

/** Every {@linkcode AdaptationMethod}: the default first, the other labelled methods, then `bn-refresh`. */
export const ADAPTATION_METHODS: readonly [AdaptationMethod, ...AdaptationMethod[]] = [
  DEFAULT_METHOD,
  ...METHOD_NAMES.filter((m) => m !== DEFAULT_METHOD),
  "bn-refresh",
];

/** What a caller submits: a request whose backbone and method may be left to the defaults (see `admit`). */
export type AdaptationSubmission = Omit<AdaptationRequest, "backbone" | "method"> & {
  backbone?: string;
  method?: AdaptationMethod;
};

/** What an adaptation was asked to do. Unset hyperparameters take the method's defaults. */
export interface AdaptationRequest {
  /** Dataset id. */
  dataset: string;
  backbone: string;
  /** A labelled adaptation method, or `bn-refresh`: AdaBN of `model` on the dataset's images, no labels. */
  method: AdaptationMethod;
  /** With `bn-refresh`: the id of the model to refresh. */
  model?: string;
  /**
   * `traffic`: a `bn-refresh` on the images `model` served, copied into `dataset` (an unlabelled dataset
   * the server made for it) when the job was submitted.
   */
  source?: "traffic";
  epochs?: number;
  /** At least this many SGD steps (few-shot sets get more epochs); 0: exactly `epochs`. */
  minSteps?: number;
  batchSize?: number;
  lrHead?: number;
  lrBackbone?: number;
  seed?: number;
  /**
   * Make the new model the active one when the job succeeds and passes the activation guard (at chance or
   * below the linear-probe baseline: saved, not activated); `"force"` activates it whatever the guard says.
   */
  activate?: boolean | "force";
}

/** How far a running job has come. */
export interface JobProgress {
  phase:
    | "starting"
    | "loading"
    | "bn_conversion"
    | "bn_refresh"
    | "linear_probe"
    | "training"
    | "evaluating"
    | "saving";
  epoch?: number;
  epochs?: number;
  step?: number;
  steps?: number;
  loss?: number;
  /** Rough share of the job done, 0 to 1. */
  fraction: number;
}

/** What a finished job measured (the adapted model's metadata, minus what the model record repeats). */
export interface JobMetrics extends AdaptationMetrics {
  classNames: string[];
  bnConversion: BnConversionReport | null;
}

/** What a finished `bn-refresh` job measured. */
export interface RefreshJobMetrics {
  method: "bn-refresh";
  /** The model refreshed. */
  sourceModel: string;
  refresh: BnRefreshReport;
  /** The refresh's activation guard (no labels: see `refreshGuard`). */
  guard: RefreshGuard;
  classNames: string[];
  seconds: number;
}

/** Why a job did not succeed. */
export interface JobError {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

/** `jobs/<id>.json`: one adaptation job, rewritten atomically as it changes. */
export interface JobRecord {
  id: string;
  status: JobStatus;
  request: AdaptationRequest;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Set when a cancel was asked for and the job has not stopped yet. */
  cancelRequested?: boolean;
  progress?: JobProgress;
  /** One record per finished epoch. */
  history: EpochRecord[];
  /** The dataset as the job read it: its name and samples per label. */
  dataset?: { id: string; name: string; counts: Record<string, number> };
  metrics?: JobMetrics | RefreshJobMetrics;
  modelId?: string;
  /** Set when the request asked for `activate` and the new model became the active one. */
  activated?: boolean;
  /** Why the guard kept a model the request asked to activate from being activated (code: the verdict). */
  activationSkipped?: {
    code: "at_chance" | "below_baseline" | "too_few_images" | "collapsed";
    message: string;
  };
  /** Why a model the request asked to activate could not be (the job still succeeded). */
  activationError?: JobError;
  error?: JobError;
  /** The job this one retries, if any. */
  retryOf?: string;
}
