import type * as tf from "@tensorflow/tfjs";
import { enterPhase } from "./_phase.ts";
import type { AdaptOptions, ResolvedRecipe } from "./adapt_options.ts";
import { type BnConversionReport, convertBatchNorm } from "./bn_conversion.ts";
import type { ChannelStatistics } from "./target_statistics.ts";

/**
 * The recipe's batch-norm step, in place on `model`: where `recipe.convertBatchNorm`, converts every BN
 * layer to the statistics of the training images `trainX` (`convertBatchNorm`, reported as phase
 * `bn_conversion`); then, for every method, sets each BN layer's momentum to `recipe.bnMomentum` for
 * fine-tuning. Returns the conversion's report, or null when the recipe converts nothing. `measured`: what a
 * pass over `trainX` measured already, for `convertBatchNorm` to reuse (see there).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { prepareBatchNorm } from "./prepare_batch_norm.ts";
 * import { METHODS, RECIPE_DEFAULTS } from "./methods.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const { model } = await tinyBackbone();
 * const images = tf.randomUniform([8, 28, 28, 1]) as tf.Tensor4D;
 * const report = await prepareBatchNorm(model, images, 4, { ...RECIPE_DEFAULTS, ...METHODS.daft }, {});
 * console.assert(report!.layersConverted === 4);
 * images.dispose();
 * ```
 */
export async function prepareBatchNorm(
  model: tf.LayersModel,
  trainX: tf.Tensor4D,
  batchSize: number,
  recipe: ResolvedRecipe,
  options: AdaptOptions,
  measured?: { output: tf.Tensor; statistics: ChannelStatistics[] },
): Promise<BnConversionReport | null> {
  let report: BnConversionReport | null = null;
  if (recipe.convertBatchNorm) {
    enterPhase(options, "bn_conversion");
    report = await convertBatchNorm(model, trainX, batchSize, measured);
  }
  for (const layer of model.layers) {
    if (layer.getClassName() === "BatchNormalization") {
      (layer as unknown as { momentum: number }).momentum = recipe.bnMomentum;
    }
  }
  return report;
}
