import type { ModelStore } from "../store/model_store.ts";
import { toJobError } from "./job_error.ts";
import type { JobRecord } from "./job_record.ts";
import type { WorkerOutcome } from "./worker_supervisor.ts";

/** What {@linkcode publishModel} needs. */
export interface PublishOptions {
  models: ModelStore;
  /** For scrubbing host paths out of error messages. */
  dataDir: string;
  /** Makes a model the active one (the prediction service's `activate`). */
  activate?: (modelId: string) => Promise<unknown>;
}

/**
 * The end of a job's model: a successful job's staged model is committed as a new version and, when the
 * request asked for it, activated, unless the activation guard holds it back; any other outcome discards the
 * staging. Sets `metrics`, `modelId`, `activated`, `activationSkipped` and `activationError` on `job`, and
 * returns the job's final outcome: a model that cannot be committed (a full disk, say) fails the job.
 *
 * The guard: a model at chance or below the linear-probe baseline (`metrics.guard`) is saved, not activated,
 * unless the request says `"force"`; predictions keep coming from the previous active model. The job is done
 * when its model serves, so `done` means "predict now".
 *
 * @example
 * ```ts ignore
 * import { publishModel } from "./publish_model.ts";
 * const final = await publishModel(job, modelId, await worker.outcome, { models, dataDir, activate });
 * ```
 */
export async function publishModel(
  job: JobRecord,
  modelId: string,
  outcome: WorkerOutcome,
  options: PublishOptions,
): Promise<WorkerOutcome> {
  if (outcome.status !== "succeeded") {
    await options.models.discard(modelId);
    return outcome;
  }
  try {
    await options.models.commit({
      id: modelId,
      createdAt: new Date().toISOString(),
      jobId: job.id,
      dataset: { id: job.request.dataset, name: job.dataset?.name ?? "" },
    });
  } catch (err) {
    await options.models.discard(modelId);
    return { status: "failed", error: toJobError(err, options.dataDir) };
  }
  job.metrics = outcome.metrics;
  job.modelId = modelId;
  const { activate } = job.request;
  const guard = outcome.metrics?.guard;
  if (activate && guard && guard.verdict !== "ok" && activate !== "force") {
    job.activated = false;
    job.activationSkipped = { code: guard.verdict, message: guard.message };
  } else if (activate && options.activate) {
    try {
      await options.activate(modelId);
      job.activated = true;
    } catch (err) {
      job.activationError = toJobError(err, options.dataDir);
    }
  }
  return outcome;
}
