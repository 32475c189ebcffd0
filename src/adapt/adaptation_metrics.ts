import type { ClassificationMetrics } from "./classification_metrics.ts";
import type { FeatureDistortion } from "./feature_distortion.ts";

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
  /** Pretrained vs adapted features on the validation images. */
  distortion: FeatureDistortion;
  /** Per backbone layer with trainable weights: |w - w0| and |w - w0| / |w0| from the start of training. */
  parameterChange: { layer: string; norm: number; relative: number }[];
  trainSamples: number;
  valSamples: number;
  seconds: number;
}
