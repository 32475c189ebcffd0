import * as tf from "@tensorflow/tfjs";
import type { Backbone } from "../model/backbone.ts";
import { batchNormLayers } from "../model/batch_norm_layers.ts";
import { enterPhase } from "./_phase.ts";
import {
  type AdaptOptions,
  type AdaptSettings,
  checkedHyperparameters,
  resolveOptions,
} from "./adapt_options.ts";
import { AdaptedModel, type ModelMetadata } from "./adapted_model.ts";
import { driftReference } from "./drift_reference.ts";
import { evaluate } from "./evaluate.ts";
import { fitBaseline } from "./fit_baseline.ts";
import { initHead } from "./init_head.ts";
import { prepareBatchNorm } from "./prepare_batch_norm.ts";
import { prepareSplit } from "./prepare_split.ts";
import { outputAndBatchNormStatistics } from "./target_statistics.ts";
import { trainEpochs, type TrainingOutcome } from "./train_epochs.ts";
import type { TrainingSet } from "./training_set.ts";
import { validateTrainingSet } from "./validate_training_set.ts";

/**
 * Adapts `backbone` to a labelled set with one of the methods in `METHODS` (default `daft`), and returns
 * the adapted classifier with its metrics. The backbone's layers become the classifier's: pass a fresh
 * backbone per call. Tensors the call creates are disposed, except the returned model's weights.
 *
 * Every method runs the same steps, its recipe (`METHODS`) deciding what each does: resolve and check the
 * request (`resolveOptions`, `validateTrainingSet`); split the set (`prepareSplit`); fit the linear-probe
 * baseline on the pretrained features (`fitBaseline`), from a pass over the training images that also
 * measures BN's target statistics where the recipe converts (`outputAndBatchNormStatistics`); convert BN
 * or not (`prepareBatchNorm`); put the head on, with its rate (`initHead`); train (`trainEpochs`); score
 * (`evaluate`); record what the drift monitor compares with (`driftReference`).
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
  const settings = resolveOptions(options);
  validateTrainingSet(backbone, data, checkedHyperparameters(settings));
  const { recipe, batchSize } = settings;
  const net = backbone.model, classes = data.classNames.length;
  const featureLayer = net.outputs[0].sourceLayer.name;
  const split = prepareSplit(data, settings.valFraction, settings.seed);
  const owned: tf.Tensor[] = [];
  let classifier: tf.LayersModel | undefined;
  try {
    // The pretrained backbone's validation features: the baseline's, and the distortion's reference.
    const pretrained = net.predict(split.valX, { batchSize }) as tf.Tensor2D;
    owned.push(pretrained);
    enterPhase(options, "linear_probe");
    // The pretrained backbone's training features, the baseline's; where the recipe converts BN, the same
    // pass measures the conversion's statistics (the features are `net.predict`'s to the bit either way).
    const layers = recipe.convertBatchNorm ? batchNormLayers(net) : [];
    const measured = await outputAndBatchNormStatistics(net, layers, split.trainX, batchSize);
    const trainFeatures = measured.output as tf.Tensor2D;
    owned.push(trainFeatures);
    const baseline = await fitBaseline(trainFeatures, split, pretrained, data.classNames);
    owned.push(baseline.probe.kernel, baseline.probe.bias);
    const bnConversion = await prepareBatchNorm(net, split.trainX, batchSize, recipe, options, measured);
    // Converted or not, the backbone's eval-mode features are still those the baseline was fitted on (the
    // conversion keeps the eval output to float error; `bnConversion.maxAbsOutputDiff` reports by how much): the
    // head's rate and standardisation read them, with no second pass over the training images.
    const head = await initHead(backbone, classes, split.trainX, baseline.probe, settings, trainFeatures);
    classifier = head.probabilities;
    const training = await trainEpochs(net, head, split, classes, settings, options);
    const scored = {
      net,
      split,
      pretrained,
      baseline: baseline.report,
      training,
      started,
    };
    const metrics = await evaluate(scored, data.classNames, batchSize, options);
    const model = new AdaptedModel(classifier, {
      ...modelMetadata(backbone, featureLayer, data.classNames, settings, training),
      metrics,
      bnConversion,
    });
    // What the drift monitor compares served images with: the adapted model on the images it learnt from.
    model.metadata.driftReference = await driftReference(model, data.images, batchSize);
    classifier = undefined;
    return model;
  } finally {
    split.dispose();
    tf.dispose(owned);
    classifier?.dispose();
  }
}

/** The model's description: where it came from, and the settings with what the few-shot rules made of them. */
function modelMetadata(
  backbone: Backbone,
  featureLayer: string,
  classNames: string[],
  settings: AdaptSettings,
  training: TrainingOutcome,
): Omit<ModelMetadata, "metrics" | "bnConversion"> {
  const { epochs, batchSize, lrHead, lrBackbone, momentum, seed, valFraction, augment, recipe } = settings;
  return {
    format: "daft-edge-model/1",
    createdAt: new Date().toISOString(),
    method: settings.method,
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
      // Epochs actually trained, and how the kept checkpoint was chosen (see RECIPE_DEFAULTS).
      trainedEpochs: training.trainedEpochs,
      steps: training.steps,
      selection: recipe.checkpoint === "last" ? "last epoch" : "best validation accuracy",
      headInput: recipe.headInput,
      minSteps: settings.minSteps,
      evenBatches: recipe.evenBatches,
    },
    classNames,
    input: backbone.input,
    featureLayer,
    backbone: { name: backbone.name, provenance: backbone.provenance },
    backend: tf.getBackend(),
  };
}
