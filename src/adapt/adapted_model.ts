import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import type { InputSpec } from "../data/input_spec.ts";
import { RuntimeError } from "../errors.ts";
import { directorySaver, loadModelFromDirectory } from "../model/artifacts_io.ts";
import type { Provenance } from "../model/backbone.ts";
import { InferencePlan } from "../model/inference_plan.ts";
import type { AdaptationMetrics } from "./adaptation_metrics.ts";
import type { BnConversionReport } from "./bn_conversion.ts";
import type { DriftReference } from "./drift_reference.ts";
import { driftTapLayers } from "./drift_taps.ts";
import { imageStatistics, readWatched, type WatchedOutputs } from "./image_statistics.ts";
import type { Method } from "./methods.ts";

/** The metadata file written beside the tfjs artifacts. */
export const METADATA_JSON = "metadata.json";

/** Everything needed to use and audit an adapted model, saved as `metadata.json`. */
export interface ModelMetadata {
  format: "daft-edge-model/1";
  createdAt: string;
  method: Method;
  hyperparameters: Record<string, unknown>;
  classNames: string[];
  /** How images must be preprocessed before `classifier`. */
  input: InputSpec;
  /** Name of the layer that outputs the backbone features `[N, D]`. */
  featureLayer: string;
  backbone: { name: string; provenance: Provenance };
  backend: string;
  metrics: AdaptationMetrics;
  bnConversion: BnConversionReport | null;
  /**
   * Statistics of the watched activations on the images the model was adapted on, for the drift monitor
   * (see `driftReference`). Absent in models made before the monitor existed: those are not monitored.
   */
  driftReference?: DriftReference;
  /** Set on a model made by `bn-refresh`: the model it refreshed and how many unlabelled images it used. */
  refreshedFrom?: { modelId: string; images: number };
}

/**
 * What the drift monitor reads of a batch: per image, the per-channel mean and mean square (over space)
 * of each watched layer's output, and the top-1 probability.
 */
export interface ImageStatistics {
  /** The watched layers (see `driftTapLayers`) and their channel counts, in row order. */
  layers: { layer: string; channels: number }[];
  /**
   * `[N, width]`, row-major: for each layer in turn, `channels` means then `channels` mean squares, so
   * `width` is twice the sum of the channel counts.
   */
  rows: Float32Array;
  width: number;
  /** `[N]`: each image's top-1 probability. */
  confidence: Float32Array;
}

/** One image's prediction: the best label, its probability, and the `k` best. */
export interface Prediction {
  label: string;
  score: number;
  topK: { label: string; score: number }[];
}

/**
 * A classifier adapted to a new domain: `classifier` maps preprocessed images `[N, H, W, C]` to class
 * probabilities `[N, classes]`, and `metadata` says how it was made.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { adapt } from "./adapt.ts";
 * import { initBackend } from "../backend/init_backend.ts";
 * await initBackend("auto");
 * import { AdaptedModel } from "./adapted_model.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const images = tf.randomUniform([8, 28, 28, 1]) as tf.Tensor4D;
 * const trained = await adapt(await tinyBackbone(), { images, labels: [0, 1, 0, 1, 0, 1, 0, 1], classNames: ["a", "b"] }, { epochs: 1 });
 * const dir = await Deno.makeTempDir();
 * await trained.save(dir);
 * const model = await AdaptedModel.load(dir);
 * const [p] = await model.predict(images.slice(0, 1), 2);
 * console.log(p.label, p.score, p.topK.length);
 * ```
 */
export class AdaptedModel {
  // Built on first use from the classifier's weights then: the classifier is not trained after this point.
  #predictionPlan?: InferencePlan;
  #featurePlan?: InferencePlan;
  #observedPlan?: { plan: InferencePlan; layers: { layer: string; channels: number }[] };

  constructor(readonly classifier: tf.LayersModel, readonly metadata: ModelMetadata) {}

  /**
   * Class probabilities for a batch `[N, H, W, C]` (per `metadata.input`), in input order, with the `topK`
   * best of each. Runs the classifier's {@linkcode InferencePlan}: batch norms folded into the convolutions,
   * the same outputs as `classifier.predict` up to float rounding.
   */
  async predict(images: tf.Tensor4D, topK = 3, batchSize = 32): Promise<Prediction[]> {
    this.#checkShape(images);
    this.#predictionPlan ??= InferencePlan.build(this.classifier);
    const [probabilities] = this.#predictionPlan.run(images, batchSize);
    let scores: Float32Array;
    try {
      scores = await probabilities.data() as Float32Array;
    } finally {
      probabilities.dispose();
    }
    return this.#rank(scores, images.shape[0], this.metadata.classNames.length, 0, topK);
  }

  /**
   * Runs the model once on one blank image: builds its inference plan and compiles the backend's kernels
   * now, and proves that the loaded weights run, before anyone is sent to the model.
   */
  async warmUp(): Promise<void> {
    const { height, width, channels } = this.metadata.input;
    const blank = tf.zeros([1, height, width, channels]) as tf.Tensor4D;
    try {
      await this.predict(blank, 1);
    } finally {
      blank.dispose();
    }
  }

  /**
   * {@linkcode AdaptedModel.predict}, plus what the drift monitor reads of the batch: the per-channel
   * moments of the watched layers (see `driftTapLayers`) and each image's top-1 probability.
   */
  async predictObserved(
    images: tf.Tensor4D,
    topK = 3,
    batchSize = 32,
  ): Promise<{ predictions: Prediction[]; statistics: ImageStatistics }> {
    const { predictions, watched } = await this.predictWatched(images, topK, batchSize);
    return { predictions, statistics: imageStatistics(await readWatched(watched)) };
  }

  /**
   * {@linkcode AdaptedModel.predict}, plus the watched layers' outputs as tensors, not read yet: the
   * caller reads them with `readWatched` (which disposes them) and reduces them with `imageStatistics`,
   * when it likes (the server does so after the response has gone). The watched tensors are ones the
   * folded plan computes anyway, and they are reduced in JavaScript, so the monitor adds no kernel to the
   * forward pass (on a busy wasm thread pool, each kernel dispatch costs more than these reductions).
   */
  async predictWatched(
    images: tf.Tensor4D,
    topK = 3,
    batchSize = 32,
  ): Promise<{ predictions: Prediction[]; watched: WatchedOutputs }> {
    this.#checkShape(images);
    const { plan, layers } = this.#observed();
    const [probabilities, ...outputs] = plan.run(images, batchSize);
    let scores: Float32Array;
    try {
      scores = await probabilities.data() as Float32Array;
    } catch (err) {
      tf.dispose(outputs);
      throw err;
    } finally {
      probabilities.dispose();
    }
    const predictions = this.#rank(scores, images.shape[0], this.metadata.classNames.length, 0, topK);
    return {
      predictions,
      watched: { layers, outputs, confidence: Float32Array.from(predictions, (p) => p.score) },
    };
  }

  /** The layers {@linkcode AdaptedModel.predictObserved} watches, with their channel counts. */
  watchedLayers(): { layer: string; channels: number }[] {
    return this.#observed().layers.map((l) => ({ ...l }));
  }

  #observed() {
    if (!this.#observedPlan) {
      const names = driftTapLayers(this.classifier, this.metadata.featureLayer);
      const tensors = names.map((name) => this.classifier.getLayer(name).output as tf.SymbolicTensor);
      const watcher = tf.model({
        inputs: this.classifier.inputs,
        outputs: [this.classifier.outputs[0], ...tensors],
      });
      this.#observedPlan = {
        plan: InferencePlan.build(watcher),
        layers: names.map((layer, i) => ({
          layer,
          channels: tensors[i].shape[tensors[i].shape.length - 1]!,
        })),
      };
    }
    return this.#observedPlan;
  }

  #checkShape(images: tf.Tensor4D) {
    const { height, width, channels } = this.metadata.input;
    if (
      images.rank !== 4 || images.shape[1] !== height || images.shape[2] !== width ||
      images.shape[3] !== channels
    ) {
      throw new RuntimeError(
        "invalid",
        "shape_mismatch",
        `the model takes images [N, ${height}, ${width}, ${channels}], got [${images.shape}]`,
      );
    }
  }

  // The top-k of each of `n` rows of `classes` scores, rows `classes + gap` apart. One read and a sort of a
  // few class scores per image, rather than a top-k kernel and two reads.
  #rank(scores: Float32Array, n: number, classes: number, gap: number, topK: number): Prediction[] {
    const names = this.metadata.classNames;
    const k = Math.max(1, Math.min(Math.floor(topK), names.length));
    const order = names.map((_, c) => c);
    return Array.from({ length: n }, (_, i) => {
      const row = scores.subarray(i * (classes + gap), i * (classes + gap) + classes);
      const top = order.toSorted((a, b) => row[b] - row[a] || a - b).slice(0, k)
        .map((c) => ({ label: names[c], score: row[c] }));
      return { label: top[0].label, score: top[0].score, topK: top };
    });
  }

  /** Backbone features `[N, D]` of a batch, in eval mode (the caller disposes the result). */
  features(images: tf.Tensor4D, batchSize = 32): tf.Tensor2D {
    if (!this.#featurePlan) {
      const layer = this.classifier.getLayer(this.metadata.featureLayer);
      const extractor = tf.model({
        inputs: this.classifier.inputs,
        outputs: layer.output as tf.SymbolicTensor,
      });
      this.#featurePlan = InferencePlan.build(extractor);
    }
    return this.#featurePlan.run(images, batchSize)[0] as tf.Tensor2D;
  }

  /** Writes `model.json`, `weights.bin` and `metadata.json` into `dir`. */
  async save(dir: string): Promise<void> {
    await this.classifier.save(directorySaver(dir));
    await Deno.writeTextFile(join(dir, METADATA_JSON), JSON.stringify(this.metadata, null, 2));
  }

  /** Reads a model written by {@linkcode AdaptedModel.save}. */
  static async load(dir: string): Promise<AdaptedModel> {
    let metadata: ModelMetadata;
    try {
      metadata = JSON.parse(await Deno.readTextFile(join(dir, METADATA_JSON)));
    } catch (err) {
      throw new RuntimeError("not_found", "model_not_found", `no readable ${METADATA_JSON} in ${dir}`, {
        path: dir,
        cause: (err as Error).message,
      });
    }
    if (metadata.format !== "daft-edge-model/1") {
      throw new RuntimeError(
        "invalid",
        "invalid_model",
        `${dir} holds format '${metadata.format}', not daft-edge-model/1`,
      );
    }
    return new AdaptedModel(await loadModelFromDirectory(dir), metadata);
  }

  /** Frees the model's weights and its inference plans. */
  dispose(): void {
    this.#predictionPlan?.dispose();
    this.#featurePlan?.dispose();
    this.#observedPlan?.plan.dispose();
    this.classifier.dispose();
  }
}
