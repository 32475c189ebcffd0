import * as tf from "@tensorflow/tfjs";
import { RuntimeError } from "../errors.ts";
import { assertRgbImage, type RgbImage } from "./image.ts";
import { resample } from "./_resample.ts";

/**
 * What a backbone expects as input: the size it was trained at, grey or colour, and the interval pixel
 * values are mapped to.
 *
 * `range` gives what byte value 0 and byte value 255 map to, linearly: MobileNetV2 on ImageNet uses
 * `[-1, 1]`, a net trained on `x / 255` uses `[0, 1]`, a net trained on raw bytes `[0, 255]`.
 *
 * @example
 * ```ts
 * import type { InputSpec } from "./input_spec.ts";
 * const mobilenetV2: InputSpec = { height: 224, width: 224, channels: 3, range: [-1, 1] };
 * const mnistNet: InputSpec = { height: 28, width: 28, channels: 1, range: [0, 1] };
 * console.assert(mobilenetV2.channels === 3 && mnistNet.channels === 1);
 * ```
 */
export interface InputSpec {
  /** Rows of the input tensor, >= 1. */
  height: number;
  /** Columns of the input tensor, >= 1. */
  width: number;
  /** 1: grey (ITU-R 601 luma of RGB); 3: RGB. */
  channels: 1 | 3;
  /** `[value for byte 0, value for byte 255]`; finite and distinct (may be descending). */
  range: [number, number];
}

/** ITU-R BT.601 luma weights for R, G, B. */
const LUMA = [0.299, 0.587, 0.114];

/**
 * The one preprocessing step between a decoded image and a backbone, used for training, validation and
 * prediction alike: writes `image` as `spec.height x spec.width x spec.channels` float values into `out`
 * from `offset` (or into a new array).
 *
 * When `spec.channels` is 1 the image is first reduced to grey with the ITU-R 601 luma weights
 * 0.299 R + 0.587 G + 0.114 B. It is then resized with an antialiased triangle filter, PIL's
 * `resize(BILINEAR)` and torchvision's `resize(antialias=True)`: when shrinking by a factor s, each output
 * pixel averages about 2s input pixels per axis, so detail finer than the output grid is averaged, not
 * aliased; when enlarging it is bilinear interpolation with half-pixel centres; an image already the
 * right size passes through. Values are last mapped linearly from [0, 255] to `spec.range`.
 *
 * @throws {RuntimeError} `invalid`/`invalid_input` as {@link imagesToTensor}.
 *
 * @example
 * ```ts
 * import { imageToInput } from "./input_spec.ts";
 * const stripes = { width: 4, height: 1, data: new Uint8Array([0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255]) };
 * const [grey] = imageToInput(stripes, { height: 1, width: 1, channels: 1, range: [0, 255] });
 * console.assert(Math.abs(grey - 127.5) < 1e-3); // averaged, not one stripe picked
 * ```
 */
export function imageToInput(
  image: RgbImage,
  spec: InputSpec,
  out = new Float32Array(spec.height * spec.width * spec.channels),
  offset = 0,
): Float32Array {
  checkSpec(spec);
  assertRgbImage(image, { code: "invalid_input", index: 0 });
  const { width, height, data } = image;
  const channels = spec.channels;
  let planes: Float32Array | Uint8Array = data;
  if (channels === 1) {
    planes = new Float32Array(width * height);
    for (let p = 0; p < planes.length; p++) {
      planes[p] = LUMA[0] * data[p * 3] + LUMA[1] * data[p * 3 + 1] + LUMA[2] * data[p * 3 + 2];
    }
  }
  resample(planes, width, height, channels, spec.width, spec.height, out, offset);
  const [low, high] = spec.range;
  const scale = (high - low) / 255;
  const end = offset + spec.height * spec.width * channels;
  for (let i = offset; i < end; i++) out[i] = out[i] * scale + low;
  return out;
}

/**
 * Turns decoded images into one batch tensor for a backbone described by `spec`, each image through
 * {@link imageToInput}.
 *
 * Shapes: each `images[i].data` has `width * height * 3` bytes; the result is a float32
 * `[images.length, spec.height, spec.width, spec.channels]` tensor the caller owns (and disposes).
 *
 * @throws {RuntimeError} `invalid`/`invalid_input` when `images` is empty, an image's data length does not
 *   match its size, or `spec` has a non-positive size, a channel count other than 1 or 3, or a range that
 *   is not two distinct finite numbers.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { imagesToTensor } from "./input_spec.ts";
 * await tf.setBackend("cpu");
 * const white = { width: 4, height: 2, data: new Uint8Array(4 * 2 * 3).fill(255) };
 * const batch = imagesToTensor([white], { height: 3, width: 3, channels: 1, range: [-1, 1] });
 * console.assert(batch.shape.join() === "1,3,3,1");
 * console.assert(Math.abs(batch.dataSync()[0] - 1) < 1e-5);
 * batch.dispose();
 * ```
 */
export function imagesToTensor(images: RgbImage[], spec: InputSpec): tf.Tensor4D {
  checkSpec(spec);
  if (images.length === 0) {
    throw new RuntimeError("invalid", "invalid_input", "imagesToTensor needs at least one image", {});
  }
  images.forEach((image, index) => assertRgbImage(image, { code: "invalid_input", index }));
  const size = spec.height * spec.width * spec.channels;
  const values = new Float32Array(images.length * size);
  images.forEach((image, i) => imageToInput(image, spec, values, i * size));
  return tf.tensor4d(values, [images.length, spec.height, spec.width, spec.channels], "float32");
}

function checkSpec(spec: InputSpec): void {
  const { height, width, channels, range } = spec;
  const fail = (why: string) =>
    new RuntimeError("invalid", "invalid_input", `invalid input spec: ${why}`, { spec: { ...spec } });
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw fail(`size ${height}x${width} is not a positive integer size`);
  }
  if (channels !== 1 && channels !== 3) throw fail(`channels is ${channels}, expected 1 or 3`);
  if (
    !Array.isArray(range) || range.length !== 2 || !range.every(Number.isFinite) || range[0] === range[1]
  ) {
    throw fail(`range ${JSON.stringify(range)} is not two distinct finite numbers`);
  }
}
