import { join } from "node:path";
import { adapt } from "../adapt/adapt.ts";
import type { AdaptProgress } from "../adapt/adapt_options.ts";
import type { EpochRecord } from "../adapt/adaptation_metrics.ts";
import { RuntimeError } from "../errors.ts";
import { loadBackbone } from "../model/registry.ts";
import { countLabels, DatasetStore } from "../store/dataset_store.ts";
import type { JobMetrics, JobProgress, RefreshJobMetrics } from "./job_record.ts";
import { ModelStore } from "../store/model_store.ts";
import { runBnRefresh } from "./run_bn_refresh.ts";
import { samplesToTensor } from "./samples_to_tensor.ts";
import type { AdaptationTask } from "./worker_messages.ts";

/** Callbacks of {@linkcode runAdaptation}. */
export interface RunAdaptationHooks {
  onStarted?: (dataset: { id: string; name: string; counts: Record<string, number> }) => void;
  onProgress?: (progress: JobProgress) => void;
  onEpoch?: (record: EpochRecord) => void;
  signal?: AbortSignal;
}

/** Share of a job each phase is taken to end at, for `progress.fraction`. */
const PHASE_END = { loading: 0.05, bn_conversion: 0.08, linear_probe: 0.1, training: 0.95, evaluating: 0.98 };

/** Rough share of the whole job done at a progress event. */
export function progressFraction(p: AdaptProgress): number {
  if (p.phase !== "training") return PHASE_END[p.phase] - 0.02;
  const epochs = Math.max(p.epochs ?? 1, 1);
  const within = p.record ? 1 : (p.step ?? 0) / Math.max(p.steps ?? 1, 1);
  const done = ((p.epoch ?? 0) + within) / epochs;
  return PHASE_END.linear_probe + (PHASE_END.training - PHASE_END.linear_probe) * done;
}

/**
 * One adaptation job from stored dataset to stored model, on the tfjs backend already brought up in this
 * thread: reads the dataset's images from the store, decodes them, preprocesses them for the backbone
 * (`imagesToTensor` with `backbone.input`), runs `adapt`, and saves the model into the model store's staging
 * directory for `task.modelId` (the caller commits it). Class names are the dataset's labels in code-point
 * order. Every tensor it creates is disposed before it returns or throws.
 *
 * A `bn-refresh` request goes to `runBnRefresh` instead. The adaptation worker runs this; it is a plain
 * function so tests can run it in-process too.
 *
 * @throws {RuntimeError} from the store (`dataset_not_found`), the registry (`unknown_backbone`) and the
 *   engine (`too_few_samples`, `diverged`, `cancelled`, ...).
 *
 * @example
 * ```ts
 * import { runAdaptation } from "./run_adaptation.ts";
 * // const metrics = await runAdaptation(task, { onProgress: (p) => console.log(p.phase, p.fraction) });
 * console.assert(typeof runAdaptation === "function");
 * ```
 */
export async function runAdaptation(
  task: AdaptationTask,
  hooks: RunAdaptationHooks = {},
): Promise<JobMetrics | RefreshJobMetrics> {
  const { request } = task;
  if (request.method === "bn-refresh") return await runBnRefresh(task, hooks);
  hooks.onProgress?.({ phase: "loading", fraction: 0 });
  // Opened with `at`, not `open`: the start-up clean-up of staging directories is the main thread's.
  const datasets = DatasetStore.at(join(task.dataDir, "datasets"));
  const models = ModelStore.at(join(task.dataDir, "models"));
  const contents = await datasets.read(request.dataset);
  // Labelled training reads labelled samples only: unlabelled ones are for bn-refresh.
  const samples = contents.samples.flatMap((
    s,
  ) => (s.label === null ? [] : [{ label: s.label, bytes: s.bytes }]));
  const counts = countLabels(samples.map((s) => s.label));
  hooks.onStarted?.({ id: contents.id, name: contents.name, counts });

  const classNames = Object.keys(counts);
  const labels = samples.map((s) => classNames.indexOf(s.label));
  if (hooks.signal?.aborted) throw new RuntimeError("conflict", "cancelled", "the adaptation was cancelled");
  const backbone = await loadBackbone({ name: request.backbone });
  let x;
  try {
    x = await samplesToTensor(samples.map((s) => s.bytes), backbone.input, task, hooks.signal);
  } catch (err) {
    backbone.model.dispose();
    throw err;
  }
  let model;
  try {
    model = await adapt(backbone, { images: x, labels, classNames }, {
      method: request.method,
      epochs: request.epochs,
      minSteps: request.minSteps,
      batchSize: request.batchSize,
      lrHead: request.lrHead,
      lrBackbone: request.lrBackbone,
      seed: request.seed,
      signal: hooks.signal,
      onProgress: (p) => {
        hooks.onProgress?.({
          phase: p.phase,
          epoch: p.epoch,
          epochs: p.epochs,
          step: p.step,
          steps: p.steps,
          loss: p.loss,
          fraction: progressFraction(p),
        });
        if (p.record) hooks.onEpoch?.(p.record);
      },
    });
  } catch (err) {
    // adapt disposes what it built; the backbone's own weights are still ours.
    try {
      backbone.model.dispose();
    } catch { /* already disposed with a partly built classifier */ }
    throw err;
  } finally {
    x.dispose();
  }
  try {
    hooks.onProgress?.({ phase: "saving", fraction: 0.99 });
    await model.save(models.stagingDir(task.modelId));
    return { ...model.metadata.metrics, classNames, bnConversion: model.metadata.bnConversion };
  } finally {
    model.dispose();
  }
}
