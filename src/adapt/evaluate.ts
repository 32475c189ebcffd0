import type * as tf from "@tensorflow/tfjs";
import { predictedClasses } from "./_predicted_classes.ts";
import type { AdaptationMetrics, BaselineReport } from "./adaptation_metrics.ts";
import type { AdaptOptions } from "./adapt_options.ts";
import { activationGuard } from "./activation_guard.ts";
import { classificationMetrics } from "./classification_metrics.ts";
import { featureDistortion } from "./feature_distortion.ts";
import type { HeadedClassifier } from "./classifier_head.ts";
import type { PreparedSplit } from "./prepare_split.ts";
import type { TrainingOutcome } from "./train_epochs.ts";

/** What {@linkcode evaluate} scores and reports on. */
export interface Evaluation {
  /** The backbone's model, whose output is the adapted features. */
  backbone: tf.LayersModel;
  classifier: HeadedClassifier;
  split: PreparedSplit;
  /** The pretrained backbone's features of `split.valX` `[M, D]`, taken before any step changed it. */
  pretrainedValFeatures: tf.Tensor2D;
  baseline: BaselineReport;
  training: TrainingOutcome;
  classNames: string[];
  batchSize: number;
  /** `performance.now()` at the adaptation's start, for `seconds`. */
  started: number;
}

/**
 * The adaptation's metrics, reported as phase `evaluating`: the trained classifier's predictions on the
 * validation images (confusion, per-class scores), the activation guard's verdict against the linear-probe
 * `baseline`, the distortion of the adapted features from `pretrainedValFeatures`, and what `training`
 * recorded. Reads the models without changing them; creates no tensor that outlives the call.
 */
export async function evaluate(e: Evaluation, options: AdaptOptions): Promise<AdaptationMetrics> {
  const { split, training, classNames, batchSize } = e;
  options.onProgress?.({ phase: "evaluating" });
  const predicted = await predictedClasses(e.classifier.logits, split.valX, batchSize);
  const adaptedValFeatures = e.backbone.predict(split.valX, { batchSize }) as tf.Tensor2D;
  try {
    const validation = classificationMetrics(split.valLabels, predicted, classNames);
    return {
      valAccuracy: training.valAccuracy,
      bestEpoch: training.bestEpoch,
      history: training.history,
      validation,
      baseline: e.baseline,
      guard: activationGuard({
        accuracy: validation.accuracy,
        baseline: e.baseline.valAccuracy,
        samples: split.valLabels.length,
        classes: classNames.length,
      }),
      distortion: await featureDistortion(e.pretrainedValFeatures, adaptedValFeatures),
      parameterChange: training.parameterChange,
      trainSamples: split.train.length,
      valSamples: split.validation.length,
      seconds: (performance.now() - e.started) / 1000,
    };
  } finally {
    adaptedValFeatures.dispose();
  }
}
