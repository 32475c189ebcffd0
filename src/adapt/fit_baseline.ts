import * as tf from "@tensorflow/tfjs";
import type { BaselineReport } from "./adaptation_metrics.ts";
import { classificationMetrics } from "./classification_metrics.ts";
import { fitLogisticRegression, type LinearHead } from "./logistic_regression.ts";
import type { PreparedSplit } from "./prepare_split.ts";

/** The linear-probe baseline: the fitted head (the caller's to dispose) and its scores. */
export interface Baseline {
  probe: LinearHead;
  report: BaselineReport;
}

/**
 * The linear-probe baseline, fitted for every method on `trainFeatures` (the pretrained, not yet converted,
 * backbone's features of the split's training images, `[N, D]`) and scored on `valFeatures` (the same
 * backbone's features of the validation images, `[M, D]`): what the activation guard compares the adapted
 * model with, and LP's and LP-FT's head. Its kernel and bias are the caller's to dispose.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fitBaseline } from "./fit_baseline.ts";
 * import { prepareSplit } from "./prepare_split.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const { model } = await tinyBackbone();
 * const images = tf.randomUniform([8, 28, 28, 1]) as tf.Tensor4D;
 * const split = prepareSplit({ images, labels: [0, 0, 0, 0, 1, 1, 1, 1], classNames: ["a", "b"] }, 0.25, 0);
 * const trainFeatures = model.predict(split.trainX) as tf.Tensor2D;
 * const valFeatures = model.predict(split.valX) as tf.Tensor2D;
 * const { probe, report } = await fitBaseline(trainFeatures, split, valFeatures, ["a", "b"]);
 * console.assert(report.method === "lp" && report.validation.accuracy === report.valAccuracy);
 * tf.dispose([probe.kernel, probe.bias, trainFeatures, valFeatures, images]);
 * split.dispose();
 * ```
 */
export async function fitBaseline(
  trainFeatures: tf.Tensor2D,
  split: PreparedSplit,
  valFeatures: tf.Tensor2D,
  classNames: string[],
): Promise<Baseline> {
  const probe = await fitLogisticRegression(
    { x: trainFeatures, labels: split.trainLabels },
    { x: valFeatures, labels: split.valLabels },
    classNames.length,
  );
  const predicted = tf.tidy(() => tf.argMax(tf.add(tf.matMul(valFeatures, probe.kernel), probe.bias), 1));
  const values = await predicted.data();
  predicted.dispose();
  const validation = classificationMetrics(split.valLabels, values, classNames);
  return { probe, report: { method: "lp", valAccuracy: validation.accuracy, l2: probe.l2, validation } };
}
