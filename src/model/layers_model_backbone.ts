import * as tf from "@tensorflow/tfjs";
import { RuntimeError } from "../errors.ts";
import type { Backbone } from "./backbone.ts";
import { loadModelFromDirectory } from "./artifacts_io.ts";
import { batchNormLayers } from "./batch_norm_layers.ts";

/** How to turn any tfjs LayersModel directory into a backbone. */
export interface LayersModelBackboneOptions {
  /** Directory holding `model.json` and its weight shards. */
  path: string;
  /** Layer whose output is the feature: a 4-D output is globally average-pooled, a 2-D one used as is. */
  featureLayer: string;
  /** What pixel values 0 and 255 map to at the input (default [0, 1]). */
  inputRange?: [number, number];
}

/**
 * A backbone from a tfjs LayersModel on disk, cut at a named layer. The input size and channels come from
 * the model's input shape, which must be fully defined `[null, H, W, 1 | 3]`.
 *
 * @example
 * ```ts
 * import { layersModelBackbone } from "./layers_model_backbone.ts";
 * const backbone = await layersModelBackbone({ path: "fixtures/tiny", featureLayer: "relu3" });
 * console.log(backbone.featureDim); // 64
 * ```
 */
export async function layersModelBackbone(options: LayersModelBackboneOptions): Promise<Backbone> {
  const full = await loadModelFromDirectory(options.path);
  const shape = full.inputs[0].shape;
  if (
    full.inputs.length !== 1 || shape.length !== 4 || shape.slice(1).some((d) => d == null) ||
    ![1, 3].includes(shape[3]!)
  ) {
    throw new RuntimeError(
      "invalid",
      "unsupported_model",
      `the model at ${options.path} must take one [null, H, W, 1|3] image input, it takes ${
        JSON.stringify(full.inputs.map((i) => i.shape))
      }`,
      { path: options.path },
    );
  }
  let layer: tf.layers.Layer;
  try {
    layer = full.getLayer(options.featureLayer);
  } catch {
    throw new RuntimeError(
      "invalid",
      "unknown_layer",
      `the model at ${options.path} has no layer named '${options.featureLayer}'`,
      {
        path: options.path,
        featureLayer: options.featureLayer,
        layers: full.layers.map((l) => l.name),
      },
    );
  }
  let out = layer.output as tf.SymbolicTensor;
  if (out.shape.length === 4) {
    out = tf.layers.globalAveragePooling2d({ name: "features_pool" }).apply(out) as tf.SymbolicTensor;
  }
  if (out.shape.length !== 2) {
    throw new RuntimeError(
      "invalid",
      "unsupported_model",
      `layer '${options.featureLayer}' outputs ${
        JSON.stringify(out.shape)
      }; need [null, H, W, C] or [null, D]`,
      {},
    );
  }
  const model = tf.model({ inputs: full.inputs, outputs: out, name: "backbone" });
  return {
    name: "path",
    model,
    input: {
      height: shape[1]!,
      width: shape[2]!,
      channels: shape[3] as 1 | 3,
      range: options.inputRange ?? [0, 1],
    },
    featureDim: out.shape[1] as number,
    batchNormLayers: batchNormLayers(model).map((l) => l.name),
    provenance: {
      source: "path",
      path: options.path,
      featureLayer: options.featureLayer,
      layersKept: model.layers.length,
    },
  };
}
