import type * as tf from "@tensorflow/tfjs";

/**
 * The BatchNormalization layers of a model, in topological order.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { batchNormLayers } from "./batch_norm_layers.ts";
 * const m = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] }), tf.layers.batchNormalization()] });
 * console.assert(batchNormLayers(m).length === 1);
 * ```
 */
export function batchNormLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.filter((l) => l.getClassName() === "BatchNormalization");
}
