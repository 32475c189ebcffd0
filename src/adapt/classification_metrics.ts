/** Accuracy, per-class accuracy and the confusion matrix of a set of predictions. */
export interface ClassificationMetrics {
  accuracy: number;
  /** By class name; NaN-free: a class with no samples is left out. */
  perClassAccuracy: Record<string, number>;
  /** `confusion[true][predicted]` counts, rows and columns in `classNames` order. */
  confusion: number[][];
}

/**
 * Scores predicted class indices against true ones.
 *
 * @example
 * ```ts
 * import { classificationMetrics } from "./classification_metrics.ts";
 * const m = classificationMetrics([0, 1, 1], [0, 1, 0], ["a", "b"]);
 * console.assert(m.accuracy === 2 / 3 && m.confusion[1][0] === 1);
 * ```
 */
export function classificationMetrics(
  truth: ArrayLike<number>,
  predicted: ArrayLike<number>,
  classNames: string[],
): ClassificationMetrics {
  const k = classNames.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (let i = 0; i < truth.length; i++) {
    confusion[truth[i]][predicted[i]]++;
    if (truth[i] === predicted[i]) correct++;
  }
  const perClassAccuracy: Record<string, number> = {};
  confusion.forEach((row, c) => {
    const n = row.reduce((a, b) => a + b, 0);
    if (n > 0) perClassAccuracy[classNames[c]] = row[c] / n;
  });
  return { accuracy: truth.length ? correct / truth.length : 0, perClassAccuracy, confusion };
}
