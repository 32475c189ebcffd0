import { RuntimeError } from "../errors.ts";
import type { AdaptationQueue } from "../jobs/adaptation_queue.ts";
import type { AdaptationSubmission, JobRecord } from "../jobs/job_record.ts";
import type { DatasetStore } from "../store/dataset_store.ts";
import type { ModelStore } from "../store/model_store.ts";
import type { ImageLimits } from "../data/uploaded_image.ts";
import { validateSamples, type ValidSample } from "../store/validate_samples.ts";
import type { TrafficWindow } from "./traffic_window.ts";

/**
 * An adaptation as a client asks for it: a dataset to learn from, or, for a `bn-refresh` only, the
 * served traffic (`source: "traffic"`) instead of a dataset.
 */
export type AdaptationAsked = Omit<AdaptationSubmission, "dataset" | "source"> & {
  dataset?: string;
  source?: "traffic";
};

/** What {@linkcode submitAdaptation} works with. */
export interface SubmitAdaptationServices {
  queue: AdaptationQueue;
  datasets: DatasetStore;
  models: ModelStore;
  /** The kept served images; unset when the server keeps none. */
  traffic?: TrafficWindow;
  /** Limits the kept images are checked against again when they become a dataset. */
  limits: ImageLimits;
}

/**
 * Queues an adaptation. A `bn-refresh` with `source: "traffic"` first copies the images `model` has served
 * (as {@linkcode TrafficWindow} keeps them) into a new unlabelled dataset, `traffic of <model> at <time>`,
 * and refreshes on that: the job then reads a fixed set of images, can be retried, and its record names
 * the dataset (which the client may delete once the job is done). If the job cannot be queued, the dataset
 * is removed again, so a refused request changes nothing.
 *
 * @throws {RuntimeError} `forbidden`/`traffic_not_kept` when the server keeps no traffic (`--keep-traffic
 *   0`); `not_found`/`model_not_found`; `conflict`/`no_traffic` when the model has served no image since
 *   the server started; `invalid`/`missing_dataset` without a dataset or a traffic source; and
 *   {@linkcode AdaptationQueue.submit}'s errors.
 *
 * @example
 * ```ts
 * import { submitAdaptation } from "./submit_adaptation.ts";
 * // const job = await submitAdaptation(services, { method: "bn-refresh", model: "mdl_...", source: "traffic" });
 * console.assert(typeof submitAdaptation === "function");
 * ```
 */
export async function submitAdaptation(
  services: SubmitAdaptationServices,
  asked: AdaptationAsked,
): Promise<JobRecord> {
  const { source, dataset, ...rest } = asked;
  if (source !== "traffic") {
    if (dataset === undefined) {
      throw new RuntimeError("invalid", "missing_dataset", "'dataset' names the images to adapt on", {});
    }
    return await services.queue.submit({ ...rest, dataset });
  }
  if (!services.traffic) {
    throw new RuntimeError(
      "forbidden",
      "traffic_not_kept",
      "this server keeps no served images, so it cannot refresh from traffic; start it with " +
        "--keep-traffic N (KEEP_TRAFFIC) to keep the last N images each model serves, or upload unlabelled " +
        "images to a dataset and refresh on that",
      {},
    );
  }
  if (!asked.model) {
    throw new RuntimeError(
      "invalid",
      "missing_model",
      "a bn-refresh needs 'model', the id of the model to refresh",
    );
  }
  const model = await services.models.get(asked.model);
  const images = services.traffic.images(model.id);
  if (images.length === 0) {
    throw new RuntimeError(
      "conflict",
      "no_traffic",
      `model ${model.id} has served no images since the server started (kept traffic lives in memory); ` +
        "send it predictions first, or refresh on a dataset of unlabelled images",
      { model: model.id },
    );
  }
  // One image at a time: each passed the request limits alone when it was served, and a window may hold more
  // source pixels than one request may decode.
  const samples: ValidSample[] = [];
  for (const bytes of images) {
    samples.push(
      ...await validateSamples([{ bytes }], { ...services.limits, maxSamplesPerRequest: 1 }, {
        unlabelled: true,
      }),
    );
  }
  const created = await services.datasets.create(`traffic of ${model.id} at ${new Date().toISOString()}`);
  try {
    await services.datasets.add(created.id, samples);
    return await services.queue.submit({ ...rest, dataset: created.id, source });
  } catch (err) {
    await services.datasets.delete(created.id).catch(() => {});
    throw err;
  }
}
