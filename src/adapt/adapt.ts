import * as tf from "@tensorflow/tfjs";
import { seededRandom } from "../data/random.ts";
import { RuntimeError } from "../errors.ts";
import type { Backbone } from "../model/backbone.ts";
import type { AdaptationMetrics, BaselineReport, EpochRecord } from "./adaptation_metrics.ts";
import { AdaptedModel } from "./adapted_model.ts";
import { augmentBatch, type AugmentOptions } from "./augment.ts";
import { balancedBatches, batchesPerEpoch } from "./balanced_batches.ts";
import { type BnConversionReport, convertBatchNorm } from "./bn_conversion.ts";
import { classificationMetrics } from "./classification_metrics.ts";
import { attachHead } from "./classifier_head.ts";
import { FusedMomentumOptimizer } from "./momentum_optimizer.ts";
import { InferencePlan } from "../model/inference_plan.ts";
import { type StepState, trainingStep } from "./training_step.ts";
import { featureDistortion } from "./feature_distortion.ts";
import { driftReference } from "./drift_reference.ts";
import { fitLogisticRegression, type LinearHead } from "./logistic_regression.ts";
import { activationGuard } from "./activation_guard.ts";
import { DEFAULT_METHOD, type Method, type MethodRecipe, METHODS, RECIPE_DEFAULTS } from "./methods.ts";
import { StandardizedHeadOptimizer } from "./standardized_head_optimizer.ts";
import { cosineLearningRate } from "./schedule.ts";
import { stratifiedSplit } from "./stratified_split.ts";
import { validateTrainingSet } from "./validate_training_set.ts";

/** Labelled images, already preprocessed for the backbone (`imagesToTensor` with `backbone.input`). */
export interface TrainingSet {
  /** `[N, H, W, C]` matching the backbone's input spec. */
  images: tf.Tensor4D;
  /** Class index of each image, in `[0, classNames.length)`. */
  labels: number[];
  classNames: string[];
}

/** A progress event: which phase, and where in it. */
export interface AdaptProgress {
  phase: "bn_conversion" | "linear_probe" | "training" | "evaluating";
  epoch?: number;
  epochs?: number;
  step?: number;
  steps?: number;
  loss?: number;
  /** Images in the step's batch. */
  batchSize?: number;
  /** Set at the end of each epoch. */
  record?: EpochRecord;
}

/** Options of {@linkcode adapt}; defaults come from the method's recipe. */
export interface AdaptOptions {
  method?: Method;
  /** Passes over the training images; few-shot sets get more (see `minSteps`). */
  epochs?: number;
  /**
   * Train at least this many SGD steps: a set too small to fill `epochs` with them gets more epochs
   * (default: the recipe's, 60; 0 trains exactly `epochs`).
   */
  minSteps?: number;
  batchSize?: number;
  lrHead?: number;
  lrBackbone?: number;
  momentum?: number;
  /** Seed for the split, batch order, augmentation and head initialisation. */
  seed?: number;
  /** Share of each class held out for validation (see `stratifiedSplit` for the rule). */
  valFraction?: number;
  augment?: Partial<AugmentOptions>;
  /** Overrides of the method's recipe, for ablations (see `MethodRecipe`). */
  recipe?: Partial<MethodRecipe>;
  onProgress?: (progress: AdaptProgress) => void;
  /**
   * Called after each epoch's validation with the classifier as it stands (softmax outputs, BN in eval
   * mode), for benchmarks that score every epoch; it must not change the model.
   */
  inspectEpoch?: (classifier: tf.LayersModel, epoch: number) => Promise<void> | void;
  signal?: AbortSignal;
}

/** Defaults for the options that no method sets. */
export const ADAPT_DEFAULTS = {
  method: DEFAULT_METHOD,
  epochs: 10,
  batchSize: 16,
  momentum: 0.9,
  seed: 0,
  valFraction: 0.2,
  augment: { crop: false, flip: false },
};

function throwIfAborted(signal?: AbortSignal) {
  if (signal?.aborted) throw new RuntimeError("conflict", "cancelled", "the adaptation was cancelled");
}

function snapshot(model: tf.LayersModel): tf.Tensor[] {
  return tf.tidy(() => model.weights.map((w) => w.read().clone()));
}

// Eval-mode predictions through an inference plan (batch norms folded into the convolutions), built for the
// weights of the moment: a few small kernels, then a forward pass that costs about half of model.predict's.
async function evalLogits(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  batchSize: number,
): Promise<Int32Array> {
  const plan = InferencePlan.build(model);
  try {
    const predicted = tf.tidy(() => tf.argMax(plan.run(images, batchSize)[0], 1));
    const out = await predicted.data() as Int32Array;
    predicted.dispose();
    return out;
  } finally {
    plan.dispose();
  }
}

const accuracyOf = (predicted: ArrayLike<number>, labels: number[]) =>
  labels.reduce((n, y, i) => n + (predicted[i] === y ? 1 : 0), 0) / Math.max(labels.length, 1);

/**
 * Adapts `backbone` to a labelled set with one of the methods in `METHODS` (default `daft`), and returns
 * the adapted classifier with its metrics. The backbone's layers become the classifier's: pass a fresh
 * backbone per call. Tensors the call creates are disposed, except the returned model's weights.
 *
 * @example
 * ```ts
 * import { adapt } from "./adapt.ts";
 * import { initBackend } from "../backend/init_backend.ts";
 * await initBackend("auto");
 * import { tinyBackbone } from "../model/tiny.ts";
 * import { imagesToTensor } from "../data/input_spec.ts";
 * import { readImageFolder } from "../data/folder.ts";
 * import { takePerClass } from "../data/take_per_class.ts";
 * const backbone = await tinyBackbone();
 * const data = takePerClass(await readImageFolder("fixtures/digits"), 5, 1);
 * const images = imagesToTensor(data.images, backbone.input);
 * const model = await adapt(backbone, { images, labels: data.labels, classNames: data.classNames }, { epochs: 2 });
 * console.log(model.metadata.metrics.valAccuracy);
 * images.dispose();
 * model.dispose();
 * ```
 */
export async function adapt(
  backbone: Backbone,
  data: TrainingSet,
  options: AdaptOptions = {},
): Promise<AdaptedModel> {
  const started = performance.now();
  const method = options.method ?? ADAPT_DEFAULTS.method;
  const base = METHODS[method];
  if (!base) {
    throw new RuntimeError("invalid", "unknown_method", `no method named '${method}'`, {
      method,
      available: Object.keys(METHODS),
    });
  }
  const recipe: MethodRecipe & typeof RECIPE_DEFAULTS = { ...RECIPE_DEFAULTS, ...base, ...options.recipe };
  const epochs = options.epochs ?? ADAPT_DEFAULTS.epochs;
  const batchSize = options.batchSize ?? ADAPT_DEFAULTS.batchSize;
  const seed = options.seed ?? ADAPT_DEFAULTS.seed;
  const momentum = options.momentum ?? ADAPT_DEFAULTS.momentum;
  const lrHead = options.lrHead ?? recipe.lrHead;
  const lrBackbone = options.lrBackbone ?? recipe.lrBackbone;
  const augment = { ...ADAPT_DEFAULTS.augment, ...options.augment };
  const valFraction = options.valFraction ?? ADAPT_DEFAULTS.valFraction;
  const minSteps = options.minSteps ?? recipe.minSteps;
  validateTrainingSet(backbone, data, {
    epochs,
    minSteps,
    batchSize,
    // LP fits its head in closed form and trains nothing: its rates are unused.
    ...(recipe.trainBackbone || recipe.headInit !== "linear-probe" ? { lrHead, lrBackbone } : {}),
    momentum,
    valFraction,
  });
  const { signal, onProgress } = options;
  const random = seededRandom(seed);
  const classes = data.classNames.length;

  const split = stratifiedSplit(data.labels, valFraction, seed);
  const trainLabels = split.train.map((i) => data.labels[i]);
  const valLabels = split.validation.map((i) => data.labels[i]);
  const trainX = tf.gather(data.images, split.train) as tf.Tensor4D;
  const valX = tf.gather(data.images, split.validation) as tf.Tensor4D;
  const owned: tf.Tensor[] = [trainX, valX];
  let classifier: tf.LayersModel | undefined;
  try {
    const pretrainedValFeatures = backbone.model.predict(valX, { batchSize }) as tf.Tensor2D;
    owned.push(pretrainedValFeatures);
    // The linear-probe baseline on the same split, for every method: what the activation guard compares
    // the adapted model with, and LP-FT's starting head.
    throwIfAborted(signal);
    onProgress?.({ phase: "linear_probe" });
    const baseline = await linearProbeBaseline(
      backbone.model,
      trainX,
      trainLabels,
      pretrainedValFeatures,
      valLabels,
      data.classNames,
      batchSize,
    );
    owned.push(baseline.probe.kernel, baseline.probe.bias);

    let bnConversion: BnConversionReport | null = null;
    if (recipe.convertBatchNorm) {
      throwIfAborted(signal);
      onProgress?.({ phase: "bn_conversion" });
      bnConversion = await convertBatchNorm(backbone.model, trainX, batchSize);
    }
    for (const layer of backbone.model.layers) {
      if (layer.getClassName() === "BatchNormalization") {
        (layer as unknown as { momentum: number }).momentum = recipe.bnMomentum;
      }
    }

    const featureOut = backbone.model.outputs[0];
    const headed = attachHead(backbone, classes, recipe.headInit === "glorot" ? "glorot" : "zeros", seed);
    const { head, logits: logitsModel } = headed;
    classifier = headed.probabilities;

    if (recipe.headInit === "linear-probe") head.setWeights([baseline.probe.kernel, baseline.probe.bias]);

    // A head step moves the logits by about lr * |f|^2 * gradient, so one head rate cannot suit backbones
    // whose feature norms differ tenfold (tiny ~50, MobileNetV2 ~240): the integrated methods give lrHead
    // in units of 1 / mean |f|^2 over the training images (of the standardised features when the head
    // trains on those), measured here after conversion.
    const featureStats = recipe.headInit === "zeros"
      ? await featureMoments(backbone.model, trainX, batchSize)
      : undefined;
    const standardize = recipe.headInput === "standardized" && featureStats !== undefined;
    const headRate = featureStats
      ? lrHead / (standardize ? featureStats.standardizedSquaredNorm : featureStats.meanSquaredNorm)
      : lrHead;
    const headVars = head.trainableWeights.map((w) => w.read() as tf.Variable);
    const backboneVars = recipe.trainBackbone
      ? backbone.model.trainableWeights.map((w) => w.read() as tf.Variable)
      : [];
    const initial = backboneVars.map((v) => v.clone());
    owned.push(...initial);

    const history: EpochRecord[] = [];
    // The kept checkpoint; no `weights` means the classifier as it stands (the last epoch, or no training).
    let best: { accuracy: number; epoch: number; weights?: tf.Tensor[] } = { accuracy: -1, epoch: -1 };
    const stepsPerEpoch = batchesPerEpoch(trainLabels, batchSize, recipe.evenBatches);
    const trainEpochs = recipe.trainBackbone || recipe.headInit !== "linear-probe"
      ? Math.max(epochs, Math.ceil(minSteps / stepsPerEpoch))
      : 0;
    const state: StepState = {
      logits: logitsModel,
      headVars,
      backboneVars,
      headOptimizer: standardize
        ? new StandardizedHeadOptimizer(
          headVars[0],
          headVars[1],
          featureStats!.mean,
          featureStats!.scale,
          headRate,
          momentum,
        )
        : new FusedMomentumOptimizer(headRate, momentum),
      backboneOptimizer: new FusedMomentumOptimizer(lrBackbone, momentum),
      training: recipe.batchNorm === "train",
    };
    try {
      if (trainEpochs === 0) {
        best.accuracy = accuracyOf(await evalLogits(logitsModel, valX, batchSize), valLabels);
        best.epoch = 0;
      }
      for (let epoch = 0; epoch < trainEpochs; epoch++) {
        const epochStarted = performance.now();
        const rates = {
          lrHead: cosineLearningRate(headRate, epoch, trainEpochs),
          lrBackbone: cosineLearningRate(lrBackbone, epoch, trainEpochs),
        };
        state.headOptimizer.setLearningRate(rates.lrHead);
        state.backboneOptimizer.setLearningRate(rates.lrBackbone);
        const batches = balancedBatches(
          trainLabels,
          trainLabels.map((_, i) => i),
          batchSize,
          random,
          recipe.evenBatches,
        );
        let lossSum = 0, correct = 0, seen = 0;
        for (const [step, batch] of batches.entries()) {
          throwIfAborted(signal);
          const x = tf.tidy(() => augmentBatch(tf.gather(trainX, batch) as tf.Tensor4D, augment, random));
          const y = tf.tidy(() => tf.oneHot(tf.tensor1d(batch.map((i) => trainLabels[i]), "int32"), classes));
          const { loss, hits } = trainingStep(state, x, y);
          tf.dispose([x, y]);
          const [l, h] = [(await loss.data())[0], (await hits.data())[0]];
          tf.dispose([loss, hits]);
          if (!Number.isFinite(l)) {
            throw new RuntimeError(
              "invalid",
              "diverged",
              `training diverged at epoch ${epoch}, step ${step} (loss ${l}); lower the learning rates`,
              {
                epoch,
                step,
                lrHead,
                lrBackbone,
              },
            );
          }
          lossSum += l * batch.length;
          correct += h;
          seen += batch.length;
          onProgress?.({
            phase: "training",
            epoch,
            epochs: trainEpochs,
            step: step + 1,
            steps: batches.length,
            loss: l,
            batchSize: batch.length,
          });
        }
        const valAccuracy = accuracyOf(await evalLogits(logitsModel, valX, batchSize), valLabels);
        const record: EpochRecord = {
          epoch,
          trainLoss: lossSum / seen,
          trainAccuracy: correct / seen,
          valAccuracy,
          ...rates,
          seconds: (performance.now() - epochStarted) / 1000,
        };
        history.push(record);
        await options.inspectEpoch?.(classifier, epoch);
        const last = epoch === trainEpochs - 1;
        const keep = recipe.checkpoint === "last" ? last : valAccuracy > best.accuracy;
        if (keep) {
          tf.dispose(best.weights ?? []);
          best = { accuracy: valAccuracy, epoch, weights: last ? undefined : snapshot(classifier) };
        }
        onProgress?.({ phase: "training", epoch, epochs: trainEpochs, record });
      }
    } catch (err) {
      tf.dispose(best.weights ?? []); // a cancelled or diverged run keeps no checkpoint
      throw err;
    } finally {
      state.headOptimizer.dispose();
      state.backboneOptimizer.dispose();
    }
    if (best.weights) {
      classifier.setWeights(best.weights);
      tf.dispose(best.weights);
    }

    onProgress?.({ phase: "evaluating" });
    const predicted = await evalLogits(logitsModel, valX, batchSize);
    const adaptedValFeatures = backbone.model.predict(valX, { batchSize }) as tf.Tensor2D;
    owned.push(adaptedValFeatures);
    const parameterChange = await parameterChangeByLayer(backbone.model, backboneVars, initial);
    const validation = classificationMetrics(valLabels, predicted, data.classNames);
    const metrics: AdaptationMetrics = {
      valAccuracy: best.accuracy,
      bestEpoch: best.epoch,
      history,
      validation,
      baseline: baseline.report,
      guard: activationGuard({
        accuracy: validation.accuracy,
        baseline: baseline.report.valAccuracy,
        samples: valLabels.length,
        classes,
      }),
      distortion: await featureDistortion(pretrainedValFeatures, adaptedValFeatures),
      parameterChange,
      trainSamples: split.train.length,
      valSamples: split.validation.length,
      seconds: (performance.now() - started) / 1000,
    };
    const model = new AdaptedModel(classifier, {
      format: "daft-edge-model/1",
      createdAt: new Date().toISOString(),
      method,
      hyperparameters: {
        epochs,
        batchSize,
        lrHead,
        lrBackbone,
        momentum,
        seed,
        valFraction,
        augment,
        bnMomentum: recipe.bnMomentum,
        // What the few-shot rules made of the request: epochs actually trained, and how the kept
        // checkpoint was chosen (see RECIPE_DEFAULTS).
        trainedEpochs: trainEpochs,
        steps: trainEpochs * stepsPerEpoch,
        selection: recipe.checkpoint === "last" ? "last epoch" : "best validation accuracy",
        headInput: recipe.headInput,
        minSteps,
        evenBatches: recipe.evenBatches,
      },
      classNames: data.classNames,
      input: backbone.input,
      featureLayer: featureOut.sourceLayer.name,
      backbone: { name: backbone.name, provenance: backbone.provenance },
      backend: tf.getBackend(),
      metrics,
      bnConversion,
    });
    // What the drift monitor compares served images with: the adapted model on the images it learnt from.
    model.metadata.driftReference = await driftReference(model, data.images, batchSize);
    classifier = undefined;
    return model;
  } finally {
    tf.dispose(owned);
    classifier?.dispose();
  }
}

/** Fits the linear probe on the pretrained features and scores it on the validation features. */
async function linearProbeBaseline(
  model: tf.LayersModel,
  trainX: tf.Tensor4D,
  trainLabels: number[],
  valFeatures: tf.Tensor2D,
  valLabels: number[],
  classNames: string[],
  batchSize: number,
): Promise<{ probe: LinearHead; report: BaselineReport }> {
  const trainFeatures = model.predict(trainX, { batchSize }) as tf.Tensor2D;
  try {
    const probe = await fitLogisticRegression(
      { x: trainFeatures, labels: trainLabels },
      { x: valFeatures, labels: valLabels },
      classNames.length,
    );
    const predicted = tf.tidy(() => tf.argMax(tf.add(tf.matMul(valFeatures, probe.kernel), probe.bias), 1));
    const values = await predicted.data();
    predicted.dispose();
    const validation = classificationMetrics(valLabels, values, classNames);
    return { probe, report: { method: "lp", valAccuracy: validation.accuracy, l2: probe.l2, validation } };
  } finally {
    trainFeatures.dispose();
  }
}

/** Per-channel mean and scale of the features over `images`, and the mean squared norms they give. */
async function featureMoments(model: tf.LayersModel, images: tf.Tensor4D, batchSize: number) {
  const [moments, norm] = tf.tidy(() => {
    const f = model.predict(images, { batchSize }) as tf.Tensor2D;
    const { mean, variance } = tf.moments(f, 0);
    return [tf.stack([mean, variance]), tf.mean(tf.sum(tf.square(f), 1))];
  });
  const [m, n] = await Promise.all([moments.data() as Promise<Float32Array>, norm.data()]);
  tf.dispose([moments, norm]);
  const d = m.length / 2;
  const mean = m.slice(0, d), variance = m.slice(d);
  // A channel that barely varies on these images (a dead ReLU) must not get a huge step: its scale is
  // floored at a tenth of the typical channel's.
  const floor = 1e-2 * variance.reduce((a, b) => a + b, 0) / d + 1e-12;
  const scale = variance.map((v) => Math.sqrt(v + floor));
  const standardizedSquaredNorm = variance.reduce((a, v, i) => a + v / (scale[i] * scale[i]), 0);
  return {
    mean,
    scale,
    meanSquaredNorm: Math.max(n[0], 1e-6),
    standardizedSquaredNorm: Math.max(standardizedSquaredNorm, 1e-6),
  };
}

// tfjs 4.22's MomentumOptimizer.dispose() frees its accumulators and momentum but not its learning-rate
// scalar, one tensor per optimiser and run.
async function parameterChangeByLayer(model: tf.LayersModel, current: tf.Variable[], initial: tf.Tensor[]) {
  const byLayer = new Map<string, { diff: number; base: number }>();
  const owner = new Map<string, string>();
  for (const layer of model.layers) {
    for (const w of layer.trainableWeights) owner.set((w.read() as tf.Variable).name, layer.name);
  }
  const diffs = tf.tidy(() =>
    current.map((v, i) => tf.stack([tf.sum(tf.square(tf.sub(v, initial[i]))), tf.sum(tf.square(initial[i]))]))
  );
  const values = await Promise.all(diffs.map((d) => d.data()));
  diffs.forEach((_, i) => {
    const [diff, base] = values[i];
    const name = owner.get(current[i].name) ?? current[i].name;
    const acc = byLayer.get(name) ?? { diff: 0, base: 0 };
    byLayer.set(name, { diff: acc.diff + diff, base: acc.base + base });
  });
  tf.dispose(diffs);
  return [...byLayer].map(([layer, { diff, base }]) => ({
    layer,
    norm: Math.sqrt(diff),
    relative: base > 0 ? Math.sqrt(diff / base) : 0,
  }));
}
