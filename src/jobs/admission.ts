import { DEFAULT_METHOD } from "../adapt/methods.ts";
import { checkClassCounts } from "../adapt/validate_training_set.ts";
import { RuntimeError } from "../errors.ts";
import { listBackbones } from "../model/registry.ts";
import type { DatasetStore } from "../store/dataset_store.ts";
import type { ModelStore } from "../store/model_store.ts";
import type { AdaptationRequest, AdaptationSubmission } from "./job_record.ts";

/** What {@linkcode admit} reads. */
export interface AdmissionContext {
  datasets: DatasetStore;
  models: ModelStore;
  /** The backbone of a labelled adaptation that names none. */
  defaultBackbone: string;
}

/**
 * Checks a submission against what can be checked before a job is queued, and fills in its defaults (the
 * server's backbone, {@linkcode DEFAULT_METHOD}). A labelled adaptation needs a registered backbone and a
 * dataset whose labels pass the engine's own admission rule (`checkClassCounts`: two classes, two samples
 * each); a `bn-refresh` needs an existing model, whose backbone it keeps, and a dataset with images.
 *
 * @throws {RuntimeError} `not_found`/`dataset_not_found` or `model_not_found`, `invalid`/`unknown_backbone`,
 *   `too_few_classes`, `too_few_samples`, `missing_model`, `unexpected_model`, `no_images`.
 *
 * @example
 * ```ts
 * import { admit } from "./admission.ts";
 * import { DatasetStore } from "../store/dataset_store.ts";
 * import { ModelStore } from "../store/model_store.ts";
 * const dir = await Deno.makeTempDir();
 * const context = { datasets: await DatasetStore.open(dir), models: await ModelStore.open(dir), defaultBackbone: "tiny" };
 * const { id } = await context.datasets.create("empty");
 * await admit({ dataset: id }, context).catch((e) => console.assert(e.code === "too_few_classes"));
 * ```
 */
export async function admit(
  submission: AdaptationSubmission,
  context: AdmissionContext,
): Promise<AdaptationRequest> {
  const method = submission.method ?? DEFAULT_METHOD;
  if (method === "bn-refresh") {
    if (!submission.model) {
      throw new RuntimeError(
        "invalid",
        "missing_model",
        "a bn-refresh needs 'model', the id of the model to refresh",
      );
    }
    const model = await context.models.get(submission.model);
    const dataset = await context.datasets.get(submission.dataset);
    if (dataset.sampleCount === 0) {
      throw new RuntimeError("invalid", "no_images", `dataset ${dataset.id} holds no images to refresh on`, {
        dataset: dataset.id,
      });
    }
    return { ...submission, method, backbone: model.backbone };
  }
  if (submission.model !== undefined) {
    throw new RuntimeError(
      "invalid",
      "unexpected_model",
      `'model' names the model a bn-refresh refreshes; method ${method} adapts a backbone`,
      { method },
    );
  }
  const backbone = submission.backbone ?? context.defaultBackbone;
  const backbones = listBackbones().map((b) => b.name);
  if (!backbones.includes(backbone)) {
    throw new RuntimeError("invalid", "unknown_backbone", `no backbone named '${backbone}'`, {
      backbone,
      available: backbones,
    });
  }
  const dataset = await context.datasets.get(submission.dataset);
  checkClassCounts(dataset.counts, { dataset: dataset.id, unlabelled: dataset.unlabelled });
  return { ...submission, method, backbone };
}
