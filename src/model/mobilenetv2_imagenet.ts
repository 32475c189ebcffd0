import * as tf from "@tensorflow/tfjs";
import { Buffer } from "node:buffer";
import { MobileNetV2Model } from "nsfwjs/models/mobilenet_v2";
import { RuntimeError } from "../errors.ts";
import type { Backbone, BackboneOptions } from "./backbone.ts";
import { batchNormLayers } from "./batch_norm_layers.ts";

/** The npm package and version the MobileNetV2 weights ship in (pinned in deno.json). */
export const MOBILENETV2_PACKAGE = { name: "nsfwjs", version: "4.4.0", file: "dist/models/mobilenet_v2" };

/**
 * The last layer whose weights are the ImageNet ones: nsfwjs tuned the blocks after `block_10` for its own task.
 */
export const MOBILENETV2_DEFAULT_CUT = "block_10_project_BN";

/** Default input height and width. */
export const MOBILENETV2_DEFAULT_SIZE = 96;

// Decoded once per process: the weights as plain arrays, so each build gets fresh tensors.
let source:
  | Promise<{ topology: any; weights: Map<string, { shape: number[]; values: Float32Array }> }>
  | undefined;

function loadSource() {
  source ??= (async () => {
    const json = (await MobileNetV2Model.modelJson()).default as any;
    const shard = (await MobileNetV2Model.weightBundles[0]()).default as string;
    const bytes = Buffer.from(shard, "base64");
    const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const specs = json.weightsManifest.flatMap((g: tf.io.WeightsManifestConfig[number]) => g.weights);
    const decoded = tf.io.decodeWeights(data, specs);
    const weights = new Map<string, { shape: number[]; values: Float32Array }>();
    // Reads are async: WebGPU under Deno has no synchronous readback.
    for (const [name, t] of Object.entries(decoded)) {
      weights.set(name, { shape: t.shape, values: await t.data() as Float32Array });
      t.dispose();
    }
    return { topology: json.modelTopology, weights };
  })();
  return source;
}

/**
 * MobileNetV2 with ImageNet weights (Keras, as shipped in npm `nsfwjs`), cut at `block_10` and globally
 * average-pooled: 96x96x3 images in [0, 1] -> 96 features. Every call builds fresh weights.
 *
 * @example
 * ```ts
 * import { mobilenetV2ImageNet } from "./mobilenetv2_imagenet.ts";
 * const backbone = await mobilenetV2ImageNet({ inputSize: 96 });
 * console.log(backbone.featureDim, backbone.batchNormLayers.length); // 96 31
 * ```
 */
export async function mobilenetV2ImageNet(options: BackboneOptions = {}): Promise<Backbone> {
  const size = options.inputSize ?? MOBILENETV2_DEFAULT_SIZE;
  const cut = options.cutLayer ?? MOBILENETV2_DEFAULT_CUT;
  if (!Number.isInteger(size) || size < 32 || size > 512 || size % 16 !== 0) {
    throw new RuntimeError(
      "invalid",
      "invalid_input_size",
      `MobileNetV2 input size must be a multiple of 16 between 32 and 512, got ${size}`,
      { inputSize: size },
    );
  }
  const { topology, weights } = await loadSource();
  const config = structuredClone(topology.model_config.config);
  const cutIndex = config.layers.findIndex((l: any) => l.name === cut);
  if (cutIndex < 0) {
    throw new RuntimeError("invalid", "unknown_layer", `MobileNetV2 has no layer named '${cut}'`, {
      cutLayer: cut,
    });
  }
  config.layers = config.layers.slice(0, cutIndex + 1);
  config.layers[0].config.batch_input_shape = [null, size, size, 3];
  config.output_layers = [[cut, 0, 0]];
  for (const layer of config.layers) layer.config.trainable = true;

  const base = await tf.models.modelFromJSON({
    modelTopology: { ...topology, model_config: { ...topology.model_config, config } },
  });
  const kept = new Set(base.weights.map((w) => w.originalName));
  const values: tf.NamedTensorMap = {};
  for (const [name, w] of weights) if (kept.has(name)) values[name] = tf.tensor(w.values, w.shape);
  try {
    base.loadWeights(values, true);
  } finally {
    tf.dispose(Object.values(values));
  }
  const pooled = tf.layers.globalAveragePooling2d({ name: "features" }).apply(
    base.outputs[0],
  ) as tf.SymbolicTensor;
  const model = tf.model({ inputs: base.inputs, outputs: pooled, name: "mobilenetv2_imagenet" });
  return {
    name: "mobilenetv2-imagenet",
    model,
    // Keras' MobileNetV2 takes [-1, 1], but every BN layer's running statistics in this checkpoint match
    // real photos scaled to [0, 1] (nsfwjs feeds x / 255), several times closer than [-1, 1]: the layers
    // expect [0, 1]. tests/model_backbones.test.ts pins this.
    input: { height: size, width: size, channels: 3, range: [0, 1] },
    featureDim: pooled.shape[1] as number,
    batchNormLayers: batchNormLayers(model).map((l) => l.name),
    provenance: {
      source: "mobilenetv2-imagenet",
      package: MOBILENETV2_PACKAGE.name,
      version: MOBILENETV2_PACKAGE.version,
      path: MOBILENETV2_PACKAGE.file,
      featureLayer: cut,
      layersKept: cutIndex + 1,
      notes: "Keras MobileNetV2 (alpha 1.0); layers up to block_10 carry the ImageNet weights",
    },
  };
}
