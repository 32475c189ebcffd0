/**
 * The library API of the edge fine-tuning runtime: bring up a backend, load a pretrained backbone, adapt
 * it to a few labelled images of a new domain with DAFT (BN conversion + integrated LP/FT) or a baseline,
 * then predict, save and load.
 *
 * @example
 * ```ts
 * import { adapt, imagesToTensor, initBackend, loadBackbone, readImageFolder, takePerClass } from "./mod.ts";
 * await initBackend("auto");
 * const backbone = await loadBackbone({ name: "tiny" });
 * const data = takePerClass(await readImageFolder("fixtures/digits"), 5, 1);
 * const images = imagesToTensor(data.images, backbone.input);
 * const model = await adapt(backbone, { images, labels: data.labels, classNames: data.classNames }, { epochs: 1 });
 * console.log(model.metadata.metrics.valAccuracy);
 * ```
 * @module
 */
export {
  type BackendInfo,
  backendInfo,
  type BackendPolicy,
  initBackend,
  type InitBackendOptions,
} from "./src/backend/init_backend.ts";
export { type AdapterReport, probeAdapter } from "./src/backend/probe_adapter.ts";
export { runSelfTest, type SelfTestResult } from "./src/backend/self_test.ts";
export {
  startWasmBackend,
  stopWasmBackend,
  type WasmBuild,
  type WasmThreads,
} from "./src/backend/start_wasm_backend.ts";
export { registerWasmTrainingKernels } from "./src/backend/wasm_training.ts";

export { decodeImage, encodePng, type RgbImage } from "./src/data/image.ts";
export { imagesToTensor, type InputSpec } from "./src/data/input_spec.ts";
export { readImageFolder } from "./src/data/folder.ts";
export type { LabeledImages } from "./src/data/labeled_images.ts";
export { readMnist } from "./src/data/mnist.ts";
export { readFashionMnist } from "./src/data/fashion_mnist.ts";
export { readOptdigits } from "./src/data/optdigits.ts";
export { takePerClass } from "./src/data/take_per_class.ts";
export { seededRandom } from "./src/data/random.ts";

export type { Backbone, BackboneOptions, Provenance } from "./src/model/backbone.ts";
export {
  type BackboneRequest,
  DEFAULT_BACKBONE,
  listBackbones,
  loadBackbone,
  registerBackbone,
} from "./src/model/registry.ts";
export { mobilenetV2ImageNet } from "./src/model/mobilenetv2_imagenet.ts";
export { buildTinyNet, tinyBackbone } from "./src/model/tiny.ts";
export { layersModelBackbone } from "./src/model/layers_model_backbone.ts";
export { directorySaver, loadModelFromDirectory } from "./src/model/artifacts_io.ts";
export { InferencePlan, type InferenceStep } from "./src/model/inference_plan.ts";
export { type BatchNormWeights, foldBatchNorm } from "./src/model/fold_batch_norm.ts";

export { adapt } from "./src/adapt/adapt.ts";
export type { AdaptOptions, AdaptProgress } from "./src/adapt/adapt_options.ts";
export type { TrainingSet } from "./src/adapt/training_set.ts";
export {
  AdaptedModel,
  type ImageStatistics,
  type ModelMetadata,
  type Prediction,
} from "./src/adapt/adapted_model.ts";
export {
  type DriftReference,
  driftReference,
  type LayerMoments,
  MomentSums,
} from "./src/adapt/drift_reference.ts";
export { type DriftScore, driftScore, type LayerDrift } from "./src/adapt/drift_score.ts";
export { driftTapLayers } from "./src/adapt/drift_taps.ts";
export { type BnRefreshReport, refreshBatchNorm } from "./src/adapt/bn_refresh.ts";
export { type RefreshGuard, refreshGuard } from "./src/adapt/refresh_guard.ts";
export { type Method, METHOD_NAMES, type MethodRecipe, METHODS } from "./src/adapt/methods.ts";
export {
  type BnConversionReport,
  convertBatchNorm,
  convertBatchNormParams,
} from "./src/adapt/bn_conversion.ts";
export { batchNormInputStatistics } from "./src/adapt/target_statistics.ts";
export { cosineLearningRate } from "./src/adapt/schedule.ts";
export { type FeatureDistortion, featureDistortion } from "./src/adapt/feature_distortion.ts";
export { classificationMetrics } from "./src/adapt/classification_metrics.ts";
export { fitLogisticRegression } from "./src/adapt/logistic_regression.ts";
export { stratifiedSplit } from "./src/adapt/stratified_split.ts";
export { type ErrorKind, RuntimeError } from "./src/errors.ts";
export { type DriftEvent, DriftMonitor, type DriftReport } from "./src/serve/drift_monitor.ts";
