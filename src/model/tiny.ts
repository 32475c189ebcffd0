import * as tf from "@tensorflow/tfjs";
import { fileURLToPath } from "node:url";
import type { Backbone } from "./backbone.ts";
import { loadModelFromDirectory } from "./artifacts_io.ts";
import { batchNormLayers } from "./batch_norm_layers.ts";

/** Where the pretrained tiny backbone lives (written by `deno task pretrain`). */
export const TINY_WEIGHTS_DIR = fileURLToPath(new URL("../../fixtures/tiny", import.meta.url));

/** Input side of the tiny backbone, in pixels. */
export const TINY_INPUT_SIZE = 28;

/** The feature layer of the tiny net. */
export const TINY_FEATURE_LAYER = "features";

/**
 * The tiny backbone's architecture, untrained: four 3x3 conv + BN + ReLU stages (16, 32, 64, 64 channels,
 * the middle two with stride 2) and global average pooling. 28x28x1 images in [0, 1] -> 64 features.
 *
 * @example
 * ```ts
 * import { buildTinyNet } from "./tiny.ts";
 * const net = buildTinyNet(1);
 * console.log(net.outputs[0].shape); // [null, 64]
 * ```
 */
export function buildTinyNet(seed = 1): tf.LayersModel {
  const input = tf.input({ shape: [TINY_INPUT_SIZE, TINY_INPUT_SIZE, 1], name: "image" });
  let x: tf.SymbolicTensor = input;
  const stages: [number, number][] = [[16, 1], [32, 2], [64, 2], [64, 1]];
  stages.forEach(([filters, strides], i) => {
    x = tf.layers.conv2d({
      filters,
      kernelSize: 3,
      strides,
      padding: "same",
      useBias: false,
      kernelInitializer: tf.initializers.heNormal({ seed: seed + i }),
      name: `conv${i + 1}`,
    }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.batchNormalization({ name: `bn${i + 1}`, momentum: 0.9, epsilon: 1e-3 }).apply(
      x,
    ) as tf.SymbolicTensor;
    x = tf.layers.reLU({ name: `relu${i + 1}` }).apply(x) as tf.SymbolicTensor;
  });
  const features = tf.layers.globalAveragePooling2d({ name: TINY_FEATURE_LAYER }).apply(
    x,
  ) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: features, name: "tiny" });
}

/**
 * The tiny backbone with the weights the project pretrained on Fashion-MNIST (`fixtures/tiny`).
 *
 * @example
 * ```ts
 * import { tinyBackbone } from "./tiny.ts";
 * const backbone = await tinyBackbone();
 * console.log(backbone.featureDim); // 64
 * ```
 */
export async function tinyBackbone(): Promise<Backbone> {
  const model = await loadModelFromDirectory(TINY_WEIGHTS_DIR);
  const meta = JSON.parse(await Deno.readTextFile(`${TINY_WEIGHTS_DIR}/provenance.json`));
  return tinyBackboneOf(model, { path: "fixtures/tiny", notes: meta.notes });
}

/**
 * A tiny-architecture model (`buildTinyNet`'s layers, whatever its weights) as a backbone; `provenance`
 * says where the weights come from.
 *
 * @example
 * ```ts
 * import { buildTinyNet, tinyBackboneOf } from "./tiny.ts";
 * const backbone = tinyBackboneOf(buildTinyNet(1), { notes: "untrained" });
 * console.log(backbone.batchNormLayers.length); // 4
 * ```
 */
export function tinyBackboneOf(
  model: tf.LayersModel,
  provenance: { path?: string; notes?: string },
): Backbone {
  return {
    name: "tiny",
    model,
    input: { height: TINY_INPUT_SIZE, width: TINY_INPUT_SIZE, channels: 1, range: [0, 1] },
    featureDim: model.outputs[0].shape[1] as number,
    batchNormLayers: batchNormLayers(model).map((l) => l.name),
    provenance: {
      source: "tiny",
      ...provenance,
      featureLayer: TINY_FEATURE_LAYER,
      layersKept: model.layers.length,
    },
  };
}
