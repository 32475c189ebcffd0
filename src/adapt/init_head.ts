import type * as tf from "@tensorflow/tfjs";
import type { Backbone } from "../model/backbone.ts";
import type { AdaptSettings } from "./adapt_options.ts";
import { attachHead, type HeadedClassifier } from "./classifier_head.ts";
import { type FeatureMoments, featureMoments, featureMomentsOf } from "./feature_moments.ts";
import type { LinearHead } from "./logistic_regression.ts";
import { FusedMomentumOptimizer } from "./momentum_optimizer.ts";
import { type HeadOptimizer, StandardizedHeadOptimizer } from "./standardized_head_optimizer.ts";

/** The new head, ready to train: where it starts, its rate and its optimiser. */
export interface InitializedHead extends HeadedClassifier {
  /** The head's kernel and bias. */
  vars: tf.Variable[];
  /** Its base learning rate (before the schedule). */
  rate: number;
  /** What steps it; the caller's to dispose. */
  optimizer: HeadOptimizer;
}

/**
 * Puts the recipe's head on the backbone (`attachHead`; after BN conversion, so on the converted
 * backbone) and decides how it trains. The rules, by `recipe.headInit`:
 * - `glorot` (plain FT): a Glorot head from `seed`, stepped at `lrHead` as given;
 * - `linear-probe` (LP, LP-FT): the baseline's fitted `probe` copied in, stepped at `lrHead` as given;
 * - `zeros` (integrated LP/FT): a zero head whose rate is in units of `1 / mean |f|^2` over the training
 *   images `trainX`, measured here. A head step moves the logits by about `lr * |f|^2 * gradient`, so one
 *   head rate cannot suit backbones whose feature norms differ tenfold (tiny ~50, MobileNetV2 ~240). With
 *   `recipe.headInput: "standardized"` the head trains in the coordinates of standardised features
 *   (`StandardizedHeadOptimizer`) and the norm is theirs; with `"raw"`, the raw features'.
 *
 * Every other head is stepped by plain SGD with momentum (`FusedMomentumOptimizer`). If measuring the
 * features fails, the new classifier is disposed (with the backbone's weights, as `adapt` would). A caller
 * that has the backbone's features of `trainX` as the backbone now stands (`predict` with `batchSize`)
 * passes them as `trainFeatures`, and they are not measured again.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initHead } from "./init_head.ts";
 * import { resolveOptions } from "./adapt_options.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const backbone = await tinyBackbone();
 * const images = tf.randomUniform([8, 28, 28, 1]) as tf.Tensor4D;
 * const probe = { kernel: tf.zeros([64, 2]) as tf.Tensor2D, bias: tf.zeros([2]) as tf.Tensor1D, l2: 0, validationAccuracy: 0 };
 * const head = await initHead(backbone, 2, images, probe, resolveOptions({ method: "daft" }));
 * console.assert(head.rate < 4); // 4 / mean |standardised f|^2
 * head.optimizer.dispose();
 * head.probabilities.dispose();
 * tf.dispose([images, probe.kernel, probe.bias]);
 * ```
 */
export async function initHead(
  backbone: Backbone,
  classes: number,
  trainX: tf.Tensor4D,
  probe: LinearHead,
  settings: AdaptSettings,
  trainFeatures?: tf.Tensor2D,
): Promise<InitializedHead> {
  const { recipe, lrHead, momentum, batchSize, seed } = settings;
  const headed = attachHead(backbone, classes, recipe.headInit === "glorot" ? "glorot" : "zeros", seed);
  if (recipe.headInit === "linear-probe") headed.head.setWeights([probe.kernel, probe.bias]);
  const vars = headed.head.trainableWeights.map((w) => w.read() as tf.Variable);
  if (recipe.headInit !== "zeros") {
    return { ...headed, vars, rate: lrHead, optimizer: new FusedMomentumOptimizer(lrHead, momentum) };
  }
  let moments: FeatureMoments;
  try {
    moments = trainFeatures
      ? await featureMomentsOf(trainFeatures)
      : await featureMoments(backbone.model, trainX, batchSize);
  } catch (err) {
    headed.probabilities.dispose();
    throw err;
  }
  if (recipe.headInput !== "standardized") {
    const rate = lrHead / moments.meanSquaredNorm;
    return { ...headed, vars, rate, optimizer: new FusedMomentumOptimizer(rate, momentum) };
  }
  const rate = lrHead / moments.standardizedSquaredNorm;
  const optimizer = new StandardizedHeadOptimizer(
    vars[0],
    vars[1],
    moments.mean,
    moments.scale,
    rate,
    momentum,
  );
  return { ...headed, vars, rate, optimizer };
}
