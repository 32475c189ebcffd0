import type * as tf from "@tensorflow/tfjs";
import type { AdaptationMetrics, BaselineReport } from "./adaptation_metrics.ts";
import type { AdaptOptions } from "./adapt_options.ts";
import { activationGuard } from "./activation_guard.ts";
import { classificationMetrics } from "./classification_metrics.ts";
import { featureDistortion } from "./feature_distortion.ts";
import type { PreparedSplit } from "./prepare_split.ts";
import type { TrainingOutcome } from "./train_epochs.ts";

/** What {@linkcode evaluate} scores and reports on. */
export interface Evaluation {
  /** The backbone's model, whose output is the adapted features. */
  net: tf.LayersModel;
  split: PreparedSplit;
  /** The pretrained backbone's features of `split.valX` `[M, D]`, taken before any step changed it. */
  pretrained: tf.Tensor2D;
  baseline: BaselineReport;
  training: TrainingOutcome;
  /** `performance.now()` at the adaptation's start, for `seconds`. */
  started: number;
}

/**
 * The adaptation's metrics, reported as phase `evaluating`: the trained classifier's predictions on the
 * validation images (confusion, per-class scores; `training.valPredictions`, which the kept checkpoint's
 * validation made), the activation guard's verdict against the linear-probe `baseline`, the distortion of
 * the adapted features from the `pretrained` ones, and what `training` recorded. Reads the backbone without
 * changing it; creates no tensor that outlives the call.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { evaluate } from "./evaluate.ts";
 * import { prepareSplit } from "./prepare_split.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const backbone = await tinyBackbone();
 * const images = tf.randomUniform([8, 28, 28, 1]) as tf.Tensor4D;
 * const split = prepareSplit({ images, labels: [0, 0, 0, 0, 1, 1, 1, 1], classNames: ["a", "b"] }, 0.25, 0);
 * const pretrained = backbone.model.predict(split.valX) as tf.Tensor2D;
 * const validation = { accuracy: 0.5, perClassAccuracy: {}, confusion: [[1, 0], [1, 0]] };
 * const baseline = { method: "lp" as const, valAccuracy: 0.5, l2: 0.1, validation };
 * const valPredictions = Int32Array.from([0, 0]);
 * const training = { history: [], valAccuracy: 0.5, valPredictions, bestEpoch: 0, trainedEpochs: 0, steps: 0, parameterChange: [] };
 * const metrics = await evaluate(
 *   { net: backbone.model, split, pretrained, baseline, training, started: performance.now() },
 *   ["a", "b"], 4, {},
 * );
 * console.assert(metrics.distortion.cosineMean > 0.999 && metrics.valSamples === 2); // nothing trained
 * split.dispose();
 * tf.dispose([images, pretrained]);
 * ```
 */
export async function evaluate(
  e: Evaluation,
  classNames: string[],
  batchSize: number,
  options: AdaptOptions,
): Promise<AdaptationMetrics> {
  const { split, training } = e;
  options.onProgress?.({ phase: "evaluating" });
  const adaptedValFeatures = e.net.predict(split.valX, { batchSize }) as tf.Tensor2D;
  try {
    const validation = classificationMetrics(split.valLabels, training.valPredictions, classNames);
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
      distortion: await featureDistortion(e.pretrained, adaptedValFeatures),
      parameterChange: training.parameterChange,
      trainSamples: split.train.length,
      valSamples: split.validation.length,
      seconds: (performance.now() - e.started) / 1000,
    };
  } finally {
    adaptedValFeatures.dispose();
  }
}
