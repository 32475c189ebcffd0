import { RuntimeError } from "../errors.ts";
import type { Backbone } from "../model/backbone.ts";
import type { TrainingSet } from "./adapt.ts";

/** The smallest number of samples a class needs: one to train on and one to validate on. */
export const MIN_SAMPLES_PER_CLASS = 2;

/**
 * Rejects, before any work, a training set or hyperparameters the methods cannot use, with a message that
 * says what to change: fewer than two classes, a class without enough samples, labels out of range, images
 * of the wrong shape for the backbone, or rates and sizes out of range.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { validateTrainingSet } from "./validate_training_set.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const backbone = await tinyBackbone();
 * const set = { images: tf.zeros([2, 28, 28, 1]) as tf.Tensor4D, labels: [0, 0], classNames: ["a"] };
 * try { validateTrainingSet(backbone, set, {}); } catch (e) { console.log((e as Error).message); }
 * ```
 */
export function validateTrainingSet(
  backbone: Backbone,
  data: TrainingSet,
  hyper: Partial<
    Record<"epochs" | "minSteps" | "batchSize" | "lrHead" | "lrBackbone" | "momentum" | "valFraction", number>
  >,
): void {
  const fail = (code: string, message: string, details: Record<string, unknown> = {}) => {
    throw new RuntimeError("invalid", code, message, details);
  };
  const { height, width, channels } = backbone.input;
  const shape = data.images.shape;
  if (data.images.rank !== 4 || shape[1] !== height || shape[2] !== width || shape[3] !== channels) {
    fail(
      "shape_mismatch",
      `backbone '${backbone.name}' takes images [N, ${height}, ${width}, ${channels}], got [${shape}]`,
    );
  }
  if (shape[0] !== data.labels.length) {
    fail("shape_mismatch", `${shape[0]} images but ${data.labels.length} labels`);
  }
  const classes = data.classNames.length;
  if (classes < 2) {
    fail("too_few_classes", `adaptation needs at least 2 classes, got ${classes}`, { classes });
  }
  const counts = new Array<number>(classes).fill(0);
  data.labels.forEach((y, i) => {
    if (!Number.isInteger(y) || y < 0 || y >= classes) {
      fail("invalid_label", `label ${y} of sample ${i} is not a class index below ${classes}`);
    }
    counts[y]++;
  });
  const short = data.classNames.filter((_, c) => counts[c] < MIN_SAMPLES_PER_CLASS);
  if (short.length) {
    fail(
      "too_few_samples",
      `every class needs at least ${MIN_SAMPLES_PER_CLASS} samples (one to train, one to validate); short: ${
        short.join(", ")
      }`,
      { counts: Object.fromEntries(data.classNames.map((n, c) => [n, counts[c]])) },
    );
  }
  const check = (name: string, ok: (v: number) => boolean, rule: string) => {
    const v = (hyper as Record<string, number | undefined>)[name];
    if (v !== undefined && !(Number.isFinite(v) && ok(v))) {
      fail("invalid_hyperparameter", `${name} must be ${rule}, got ${v}`, { [name]: v });
    }
  };
  check("epochs", (v) => Number.isInteger(v) && v >= 1 && v <= 1000, "an integer in [1, 1000]");
  check("batchSize", (v) => Number.isInteger(v) && v >= 2 && v <= 1024, "an integer in [2, 1024]");
  check("minSteps", (v) => Number.isInteger(v) && v >= 0 && v <= 10_000, "an integer in [0, 10000]");
  // A zero rate leaves that part untrained (a zero head predicts 1/K for every class).
  check("lrHead", (v) => v > 0 && v <= 100, "in (0, 100]");
  check("lrBackbone", (v) => v > 0 && v <= 100, "in (0, 100]");
  check("momentum", (v) => v >= 0 && v < 1, "in [0, 1)");
  check("valFraction", (v) => v > 0 && v < 1, "in (0, 1)");
}
