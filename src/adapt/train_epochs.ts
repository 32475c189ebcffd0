import * as tf from "@tensorflow/tfjs";
import { seededRandom } from "../data/random.ts";
import { RuntimeError } from "../errors.ts";
import { accuracyOf, predictedClasses } from "./_predicted_classes.ts";
import { throwIfAborted } from "./_phase.ts";
import type { EpochRecord } from "./adaptation_metrics.ts";
import { type AdaptOptions, type AdaptSettings, trainsAnything } from "./adapt_options.ts";
import { augmentBatch } from "./augment.ts";
import { balancedBatches, batchesPerEpoch } from "./balanced_batches.ts";
import type { InitializedHead } from "./init_head.ts";
import type { MethodRecipe } from "./methods.ts";
import { FusedMomentumOptimizer } from "./momentum_optimizer.ts";
import { type LayerChange, parameterChangeByLayer } from "./parameter_change.ts";
import type { PreparedSplit } from "./prepare_split.ts";
import { cosineLearningRate } from "./schedule.ts";
import { type StepState, trainingStep } from "./training_step.ts";

/** What training left: the kept checkpoint's score, the epochs run and how far the backbone moved. */
export interface TrainingOutcome {
  history: EpochRecord[];
  /** Validation accuracy of the kept checkpoint (of the untrained classifier when nothing trains). */
  valAccuracy: number;
  /** The kept checkpoint's predicted class of each validation image, those `valAccuracy` counts. */
  valPredictions: Int32Array;
  /** The kept checkpoint's epoch (0 when nothing trains). */
  bestEpoch: number;
  /** Epochs actually trained (see {@linkcode epochsToTrain}). */
  trainedEpochs: number;
  /** SGD steps actually taken. */
  steps: number;
  /** Per backbone layer, from the start of training (empty for a frozen backbone). */
  parameterChange: LayerChange[];
}

/**
 * How many epochs to train. A recipe that does not train (see `trainsAnything`) runs none. Otherwise the
 * requested `epochs`, raised to meet the step floor `minSteps`: a few shots make a few batches per epoch,
 * and the default epochs would leave the head short of its fit.
 *
 * @example
 * ```ts
 * import { epochsToTrain } from "./train_epochs.ts";
 * import { METHODS } from "./methods.ts";
 * console.assert(epochsToTrain(METHODS.daft, 10, 60, 2) === 30);
 * console.assert(epochsToTrain(METHODS.daft, 10, 60, 20) === 10);
 * console.assert(epochsToTrain(METHODS.lp, 10, 60, 2) === 0);
 * ```
 */
export function epochsToTrain(
  recipe: MethodRecipe,
  epochs: number,
  minSteps: number,
  stepsPerEpoch: number,
): number {
  return trainsAnything(recipe) ? Math.max(epochs, Math.ceil(minSteps / stepsPerEpoch)) : 0;
}

/**
 * Whether an epoch's weights replace the kept checkpoint. `last`: only the last epoch's (with 1-2
 * validation images per class the best-validation epoch is chosen by noise, and under the cosine schedule
 * the last epoch is the most trained); `best`: any epoch that beats the kept accuracy (ties keep the
 * earlier one).
 *
 * @example
 * ```ts
 * import { keepsEpoch } from "./train_epochs.ts";
 * console.assert(!keepsEpoch("last", 0.9, 0.5, false) && keepsEpoch("best", 0.9, 0.5, false));
 * console.assert(!keepsEpoch("best", 0.5, 0.5, true));
 * ```
 */
export function keepsEpoch(
  checkpoint: "best" | "last",
  valAccuracy: number,
  keptAccuracy: number,
  last: boolean,
): boolean {
  return checkpoint === "last" ? last : valAccuracy > keptAccuracy;
}

/**
 * The integrated LP/FT loop (and the baselines' fine-tuning): {@linkcode epochsToTrain} epochs of SGD
 * with momentum over class-balanced batches (`balancedBatches`, augmented per `settings.augment`), head
 * and backbone each at its own rate (`head.rate`, `settings.lrBackbone`; the backbone only where
 * `recipe.trainBackbone`), both on the per-epoch cosine schedule, BN in the recipe's mode. After each
 * epoch the classifier is scored on the validation images and {@linkcode keepsEpoch} decides whether it
 * becomes the kept checkpoint; at the end the classifier holds the kept weights, and the outcome their
 * validation predictions (what scoring them again would give). One random stream from
 * `settings.seed` draws batch order, then augmentation, step by step.
 *
 * Disposes `head.optimizer`. Throws `conflict`/`cancelled` between steps once `options.signal` is
 * aborted, and `invalid`/`diverged` on a non-finite loss; either way the classifier is left as it was
 * at the failing step.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { trainEpochs } from "./train_epochs.ts";
 * import { resolveOptions } from "./adapt_options.ts";
 * import { initHead } from "./init_head.ts";
 * import { prepareSplit } from "./prepare_split.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const backbone = await tinyBackbone();
 * const images = tf.randomUniform([8, 28, 28, 1]) as tf.Tensor4D;
 * const split = prepareSplit({ images, labels: [0, 0, 0, 0, 1, 1, 1, 1], classNames: ["a", "b"] }, 0.25, 0);
 * const settings = resolveOptions({ method: "ft", epochs: 2, minSteps: 0, batchSize: 4 });
 * const probe = { kernel: tf.zeros([64, 2]) as tf.Tensor2D, bias: tf.zeros([2]) as tf.Tensor1D, l2: 0, validationAccuracy: 0 };
 * const head = await initHead(backbone, 2, split.trainX, probe, settings);
 * const outcome = await trainEpochs(backbone.model, head, split, 2, settings, {});
 * console.assert(outcome.trainedEpochs === 2 && outcome.steps === 4 && outcome.bestEpoch === 1);
 * head.probabilities.dispose();
 * split.dispose();
 * tf.dispose([images, probe.kernel, probe.bias]);
 * ```
 */
export async function trainEpochs(
  backbone: tf.LayersModel,
  head: InitializedHead,
  split: PreparedSplit,
  classes: number,
  settings: AdaptSettings,
  options: AdaptOptions,
): Promise<TrainingOutcome> {
  const { recipe, batchSize, lrBackbone, momentum } = settings;
  const backboneVars = recipe.trainBackbone
    ? backbone.trainableWeights.map((w) => w.read() as tf.Variable)
    : [];
  const initial = backboneVars.map((v) => v.clone());
  const stepsPerEpoch = batchesPerEpoch(split.trainLabels, batchSize, recipe.evenBatches);
  const epochs = epochsToTrain(recipe, settings.epochs, settings.minSteps, stepsPerEpoch);
  const state: StepState = {
    logits: head.logits,
    headVars: head.vars,
    backboneVars,
    headOptimizer: head.optimizer,
    backboneOptimizer: new FusedMomentumOptimizer(lrBackbone, momentum),
    training: recipe.batchNorm === "train",
  };
  const random = seededRandom(settings.seed);
  const history: EpochRecord[] = [];
  // The kept checkpoint; no `weights` means the classifier as it stands (the last epoch, or no training).
  let kept: { accuracy: number; epoch: number; predictions?: Int32Array; weights?: tf.Tensor[] } = {
    accuracy: -1,
    epoch: -1,
  };
  try {
    try {
      if (epochs === 0) kept = { ...await validation(head.logits, split, batchSize), epoch: 0 };
      for (let epoch = 0; epoch < epochs; epoch++) {
        const started = performance.now();
        const rates = {
          lrHead: cosineLearningRate(head.rate, epoch, epochs),
          lrBackbone: cosineLearningRate(lrBackbone, epoch, epochs),
        };
        state.headOptimizer.setLearningRate(rates.lrHead);
        state.backboneOptimizer.setLearningRate(rates.lrBackbone);
        const fit = await trainEpoch(state, split, classes, epoch, epochs, random, settings, options);
        const { accuracy: valAccuracy, predictions } = await validation(head.logits, split, batchSize);
        const record: EpochRecord = {
          epoch,
          ...fit,
          valAccuracy,
          ...rates,
          seconds: (performance.now() - started) / 1000,
        };
        history.push(record);
        await options.inspectEpoch?.(head.probabilities, epoch);
        const last = epoch === epochs - 1;
        if (keepsEpoch(recipe.checkpoint, valAccuracy, kept.accuracy, last)) {
          tf.dispose(kept.weights ?? []);
          const weights = last ? undefined : snapshot(head.probabilities);
          kept = { accuracy: valAccuracy, epoch, predictions, weights };
        }
        options.onProgress?.({ phase: "training", epoch, epochs, record });
      }
    } catch (err) {
      tf.dispose(kept.weights ?? []); // a cancelled or diverged run keeps no checkpoint
      throw err;
    } finally {
      state.headOptimizer.dispose();
      state.backboneOptimizer.dispose();
    }
    if (kept.weights) {
      head.probabilities.setWeights(kept.weights);
      tf.dispose(kept.weights);
    }
    return {
      history,
      valAccuracy: kept.accuracy,
      // The kept weights' predictions: restored, they are the weights these were computed with.
      valPredictions: kept.predictions!,
      bestEpoch: kept.epoch,
      trainedEpochs: epochs,
      steps: epochs * stepsPerEpoch,
      parameterChange: await parameterChangeByLayer(backbone, backboneVars, initial),
    };
  } finally {
    tf.dispose(initial);
  }
}

/** One pass over the training images; the mean loss and accuracy of its batches, as trained. */
async function trainEpoch(
  state: StepState,
  split: PreparedSplit,
  classes: number,
  epoch: number,
  epochs: number,
  random: () => number,
  settings: AdaptSettings,
  options: AdaptOptions,
): Promise<{ trainLoss: number; trainAccuracy: number }> {
  const { trainX, trainLabels } = split;
  const { recipe, batchSize, augment } = settings;
  const batches = balancedBatches(
    trainLabels,
    trainLabels.map((_, i) => i),
    batchSize,
    random,
    recipe.evenBatches,
  );
  let lossSum = 0, correct = 0, seen = 0;
  for (const [step, batch] of batches.entries()) {
    throwIfAborted(options.signal);
    const x = tf.tidy(() => augmentBatch(tf.gather(trainX, batch) as tf.Tensor4D, augment, random));
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(batch.map((i) => trainLabels[i]), "int32"), classes));
    const { loss, hits } = trainingStep(state, x, y);
    tf.dispose([x, y]);
    const [l, h] = [(await loss.data())[0], (await hits.data())[0]];
    tf.dispose([loss, hits]);
    if (!Number.isFinite(l)) {
      const { lrHead, lrBackbone } = settings;
      throw new RuntimeError(
        "invalid",
        "diverged",
        `training diverged at epoch ${epoch}, step ${step} (loss ${l}); lower the learning rates`,
        { epoch, step, lrHead, lrBackbone },
      );
    }
    lossSum += l * batch.length;
    correct += h;
    seen += batch.length;
    options.onProgress?.({
      phase: "training",
      epoch,
      epochs,
      step: step + 1,
      steps: batches.length,
      loss: l,
      batchSize: batch.length,
    });
  }
  return { trainLoss: lossSum / seen, trainAccuracy: correct / seen };
}

async function validation(
  logits: tf.LayersModel,
  split: PreparedSplit,
  batchSize: number,
): Promise<{ accuracy: number; predictions: Int32Array }> {
  const predictions = await predictedClasses(logits, split.valX, batchSize);
  return { accuracy: accuracyOf(predictions, split.valLabels), predictions };
}

function snapshot(model: tf.LayersModel): tf.Tensor[] {
  return tf.tidy(() => model.weights.map((w) => w.read().clone()));
}
