import type { ClassificationMetrics } from "./classification_metrics.ts";
import type { FeatureDistortion } from "./feature_distortion.ts";
import type { ActivationGuard } from "./activation_guard.ts";

/** One epoch of training, as reported in progress events and kept in the metrics. */
export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valAccuracy: number;
  lrHead: number;
  lrBackbone: number;
  seconds: number;
}

/** The metrics an adaptation leaves in the model's metadata. */
export interface AdaptationMetrics {
  /** Validation accuracy of the kept (best) checkpoint. */
  valAccuracy: number;
  bestEpoch: number;
  history: EpochRecord[];
  validation: ClassificationMetrics;
  /** The linear probe on the pretrained features, fitted and scored on the same split. */
  baseline: BaselineReport;
  /** Whether the model is fit to replace the active one (see `activationGuard`). */
  guard: ActivationGuard;
  /** Pretrained vs adapted features on the validation images. */
  distortion: FeatureDistortion;
  /** Per backbone layer with trainable weights: |w - w0| and |w - w0| / |w0| from the start of training. */
  parameterChange: { layer: string; norm: number; relative: number }[];
  trainSamples: number;
  valSamples: number;
  seconds: number;
}

/** The linear-probe baseline every adaptation reports beside its model. */
export interface BaselineReport {
  method: "lp";
  /** Its accuracy on the adaptation's validation split. */
  valAccuracy: number;
  /** The L2 strength chosen on that split. */
  l2: number;
  validation: ClassificationMetrics;
}
