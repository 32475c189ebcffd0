import type * as tf from "@tensorflow/tfjs";
import { batchNormLayers } from "../model/batch_norm_layers.ts";

/** How many intermediate activations the drift monitor watches, besides the pooled features. */
export const DRIFT_TAP_COUNT = 3;

/**
 * The layers whose outputs the drift monitor watches: the input activations of {@linkcode DRIFT_TAP_COUNT}
 * convolution + BN stages spread evenly over the network (the first stage's, the raw image, is skipped),
 * then the feature layer. A stage's input is the output of the step before its convolution (a ReLU, or a
 * BN for a linear bottleneck): the folded inference plan computes that tensor anyway, so watching it costs
 * no fusion, whereas the BN's own input (the convolution's output) only exists unfused. Names are layer
 * names, in topological order, without repeats.
 *
 * @example
 * ```ts
 * import { driftTapLayers } from "./drift_taps.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const { model } = await tinyBackbone();
 * console.assert(driftTapLayers(model, "features").join() === "relu1,relu2,relu3,features");
 * ```
 */
export function driftTapLayers(model: tf.LayersModel, featureLayer: string): string[] {
  const stageInputs: string[] = [];
  for (const bn of batchNormLayers(model)) {
    const conv = bn.inboundNodes[0]?.inputTensors[0]?.sourceLayer;
    let input = conv?.inboundNodes[0]?.inputTensors[0];
    if (input?.sourceLayer.getClassName() === "ZeroPadding2D") {
      input = input.sourceLayer.inboundNodes[0].inputTensors[0];
    }
    const source = input?.sourceLayer;
    if (!source || source.getClassName() === "InputLayer" || stageInputs.includes(source.name)) continue;
    if (source.name === featureLayer) continue;
    stageInputs.push(source.name);
  }
  const n = stageInputs.length;
  const count = Math.min(DRIFT_TAP_COUNT, n);
  // Evenly spaced, first and last included: early stages see pixel-level change, late ones semantic.
  const picked = Array.from(
    { length: count },
    (_, i) => stageInputs[count === 1 ? n - 1 : Math.round(i * (n - 1) / (count - 1))],
  );
  return [...new Set(picked), featureLayer];
}
