/**
 * The cosine learning-rate schedule DAFT uses, stepped per epoch and with no warm-up:
 * `lr(e) = base * (1 + cos(pi * e / epochs)) / 2` for epoch `e` in `[0, epochs)`.
 *
 * @example
 * ```ts
 * import { cosineLearningRate } from "./schedule.ts";
 * console.assert(cosineLearningRate(1, 0, 10) === 1);
 * console.assert(Math.abs(cosineLearningRate(1, 5, 10) - 0.5) < 1e-12);
 * ```
 */
export function cosineLearningRate(base: number, epoch: number, epochs: number): number {
  if (epochs <= 0) return base;
  return base * (1 + Math.cos(Math.PI * Math.min(epoch, epochs) / epochs)) / 2;
}
