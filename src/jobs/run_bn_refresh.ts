import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { AdaptedModel } from "../adapt/adapted_model.ts";
import { refreshBatchNorm } from "../adapt/bn_refresh.ts";
import { driftReference } from "../adapt/drift_reference.ts";
import { refreshGuard } from "../adapt/refresh_guard.ts";
import { RuntimeError } from "../errors.ts";
import { InferencePlan } from "../model/inference_plan.ts";
import { countLabels, DatasetStore } from "../store/dataset_store.ts";
import type { RefreshJobMetrics } from "./job_record.ts";
import { ModelStore } from "../store/model_store.ts";
import type { RunAdaptationHooks } from "./run_adaptation.ts";
import { samplesToTensor } from "./samples_to_tensor.ts";
import type { AdaptationTask } from "./worker_messages.ts";

// The predicted class of each image, through a plan of the model's weights as they are now.
async function predictedClasses(model: tf.LayersModel, x: tf.Tensor4D): Promise<Int32Array> {
  const plan = InferencePlan.build(model);
  try {
    const predicted = tf.tidy(() => tf.argMax(plan.run(x, 32)[0], 1));
    const out = await predicted.data() as Int32Array;
    predicted.dispose();
    return out;
  } finally {
    plan.dispose();
  }
}

/**
 * A `bn-refresh` job: loads the model `task.request.model`, re-estimates its BN statistics on every image
 * of the dataset (labels, if any, are not read) with {@linkcode refreshBatchNorm}, and saves the result as a
 * new model into the staging directory for `task.modelId`, with a new drift reference (the refresh images:
 * the domain the model now expects), `refreshedFrom` in its metadata, and the refresh's activation guard
 * in the job's metrics. Every tensor it creates is disposed before it returns or throws.
 *
 * @throws {RuntimeError} `dataset_not_found`, `model_not_found`, `invalid`/`no_images`, `cancelled`.
 *
 * @example
 * ```ts
 * import { runBnRefresh } from "./run_bn_refresh.ts";
 * // const metrics = await runBnRefresh(task); // task.request: { method: "bn-refresh", model, dataset }
 * console.assert(typeof runBnRefresh === "function");
 * ```
 */
export async function runBnRefresh(
  task: AdaptationTask,
  hooks: RunAdaptationHooks = {},
): Promise<RefreshJobMetrics> {
  const started = performance.now();
  const { request } = task;
  hooks.onProgress?.({ phase: "loading", fraction: 0 });
  const datasets = DatasetStore.at(join(task.dataDir, "datasets"));
  const models = ModelStore.at(join(task.dataDir, "models"));
  const contents = await datasets.read(request.dataset);
  hooks.onStarted?.({
    id: contents.id,
    name: contents.name,
    counts: countLabels(contents.samples.flatMap((s) => (s.label === null ? [] : [s.label]))),
  });
  if (contents.samples.length === 0) {
    throw new RuntimeError("invalid", "no_images", `dataset ${contents.id} holds no images to refresh on`, {
      dataset: contents.id,
    });
  }
  const sourceId = request.model!;
  const source = await AdaptedModel.load(await models.dir(sourceId));
  let refreshed: AdaptedModel | undefined;
  let x: tf.Tensor4D | undefined;
  try {
    x = await samplesToTensor(
      contents.samples.map((s) => s.bytes),
      source.metadata.input,
      task,
      hooks.signal,
    );
    if (hooks.signal?.aborted) throw new RuntimeError("conflict", "cancelled", "the refresh was cancelled");
    const before = await predictedClasses(source.classifier, x);
    hooks.onProgress?.({ phase: "bn_refresh", fraction: 0.3 });
    const report = await refreshBatchNorm(source.classifier, x, request.batchSize ?? 32);
    hooks.onProgress?.({ phase: "evaluating", fraction: 0.8 });
    const after = await predictedClasses(source.classifier, x);
    refreshed = new AdaptedModel(source.classifier, {
      ...source.metadata,
      createdAt: new Date().toISOString(),
      backend: tf.getBackend(),
      refreshedFrom: { modelId: sourceId, images: x.shape[0] },
    });
    refreshed.metadata.driftReference = await driftReference(refreshed, x);
    const guard = refreshGuard(before, after);
    hooks.onProgress?.({ phase: "saving", fraction: 0.95 });
    await refreshed.save(models.stagingDir(task.modelId));
    return {
      method: "bn-refresh",
      sourceModel: sourceId,
      refresh: report,
      guard,
      classNames: source.metadata.classNames,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    x?.dispose();
    // The refreshed model wraps the source's classifier: dispose it once, with its plans.
    if (refreshed) refreshed.dispose();
    else source.dispose();
  }
}
