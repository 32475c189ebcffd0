// The two backbones the speed benchmark times, and the synthetic images it trains them on. Shared by the
// row worker (`_speed_row.ts`); the PyTorch peer (`peer_torch.py`) builds the same architectures.
import * as tf from "@tensorflow/tfjs";
import { seededRandom } from "../src/data/random.ts";
import type { Backbone } from "../src/model/backbone.ts";
import { mobilenetV2ImageNet } from "../src/model/mobilenetv2_imagenet.ts";
import { buildTinyNet, tinyBackboneOf } from "../src/model/tiny.ts";

/** The backbones the speed benchmark knows, by the short name its flags use. */
export type SpeedBackbone = "mobilenetv2" | "tiny";

/** Every speed backbone, the default one first. */
export const SPEED_BACKBONES: readonly SpeedBackbone[] = ["mobilenetv2", "tiny"];

/** What the report calls each backbone. */
export const BACKBONE_TITLES: Record<SpeedBackbone, string> = {
  mobilenetv2: "MobileNetV2 to block_10 + GAP, 96x96x3 -> 96 (default backbone)",
  tiny: "tiny: 4x (conv3x3 + BN + ReLU) 16, 32s2, 64s2, 64 + GAP, 28x28x1 -> 64",
};

/**
 * A fresh backbone by speed name: the real ImageNet MobileNetV2 cut (what `adapt()` gets by default), or
 * `buildTinyNet`'s architecture with untrained weights (the pretrained weights live in `fixtures/`, which
 * the bundled GPU run does not carry; speed does not depend on the values).
 */
export async function speedBackbone(name: SpeedBackbone): Promise<Backbone> {
  if (name === "mobilenetv2") return await mobilenetV2ImageNet({ inputSize: 96 });
  return tinyBackboneOf(buildTinyNet(1), { notes: "untrained buildTinyNet(1), for timing" });
}

/** Number of trainable values in a set of layers' weights. */
export function trainableParameters(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

/**
 * `classes x perClass` images `[N, H, W, C]` in [0, 1] for a backbone's input, with labels: each class is a
 * fixed random pattern plus per-image noise, so a job has something to learn and the timing is that of a
 * real job. Seeded, so both runs of a comparison see the same images.
 */
export function syntheticJob(
  backbone: Backbone,
  classes: number,
  perClass: number,
  seed = 0,
): { images: tf.Tensor4D; labels: number[]; classNames: string[] } {
  const { height, width, channels } = backbone.input;
  const size = height * width * channels;
  const random = seededRandom(seed);
  const patterns = Array.from({ length: classes }, () => Float32Array.from({ length: size }, random));
  const data = new Float32Array(classes * perClass * size);
  const labels: number[] = [];
  for (let i = 0; i < classes * perClass; i++) {
    const c = i % classes;
    labels.push(c);
    for (let j = 0; j < size; j++) data[i * size + j] = 0.7 * patterns[c][j] + 0.3 * random();
  }
  return {
    images: tf.tensor4d(data, [classes * perClass, height, width, channels]),
    labels,
    classNames: Array.from({ length: classes }, (_, c) => `class-${c}`),
  };
}
