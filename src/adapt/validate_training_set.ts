import { RuntimeError } from "../errors.ts";
import type { Backbone } from "../model/backbone.ts";
import type { TrainingSet } from "./training_set.ts";

/** The smallest number of samples a class needs: one to train on and one to validate on. */
export const MIN_SAMPLES_PER_CLASS = 2;

/**
 * The admission rule every labelled adaptation shares, for the engine (on the training set) and the job
 * queue (on the dataset's counts, before a job is queued): at least two classes, and
 * {@linkcode MIN_SAMPLES_PER_CLASS} samples in each.
 *
 * @param counts samples per class name.
 * @param about what the counts describe, for the message and details: a dataset id, and how many of its
 *   samples are unlabelled (they do not count).
 * @throws {RuntimeError} `invalid`/`too_few_classes`, `invalid`/`too_few_samples`.
 *
 * @example
 * ```ts
 * import { checkClassCounts } from "./validate_training_set.ts";
 * checkClassCounts({ cat: 2, dog: 3 });
 * try { checkClassCounts({ cat: 2, dog: 1 }); } catch (e) { console.log((e as Error).message); }
 * ```
 */
export function checkClassCounts(
  counts: Record<string, number>,
  about: { dataset?: string; unlabelled?: number } = {},
): void {
  const labels = Object.keys(counts);
  const subject = about.dataset ? `dataset ${about.dataset} has` : "got";
  if (labels.length < 2) {
    const unlabelled = about.unlabelled
      ? ` (its ${about.unlabelled} unlabelled samples are for bn-refresh and do not count)`
      : "";
    throw new RuntimeError(
      "invalid",
      "too_few_classes",
      `adaptation needs at least 2 classes; ${subject} ${labels.length}${unlabelled}`,
      { ...about, classes: labels.length, counts },
    );
  }
  const short = labels.filter((l) => counts[l] < MIN_SAMPLES_PER_CLASS);
  if (short.length) {
    throw new RuntimeError(
      "invalid",
      "too_few_samples",
      `every class needs at least ${MIN_SAMPLES_PER_CLASS} samples (one to train, one to validate); short: ${
        short.join(", ")
      }`,
      { ...about, counts },
    );
  }
}

/**
 * Rejects, before any work, a training set or hyperparameters the methods cannot use, with a message that
 * says what to change: labels out of range, the class counts {@linkcode checkClassCounts} refuses, images of
 * the wrong shape for the backbone, or rates and sizes out of range.
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
  const counts = new Array<number>(classes).fill(0);
  data.labels.forEach((y, i) => {
    if (!Number.isInteger(y) || y < 0 || y >= classes) {
      fail("invalid_label", `label ${y} of sample ${i} is not a class index below ${classes}`);
    }
    counts[y]++;
  });
  checkClassCounts(Object.fromEntries(data.classNames.map((n, c) => [n, counts[c]])));
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
