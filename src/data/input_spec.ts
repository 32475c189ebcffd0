import * as tf from "@tensorflow/tfjs";
import { RuntimeError } from "../errors.ts";
import type { RgbImage } from "./image.ts";

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
 * Turns decoded images into one batch tensor for a backbone described by `spec`.
 *
 * Each image, of any size, is resized with `tf.image.resizeBilinear` (alignCorners false, halfPixelCenters
 * true) to `spec.height x spec.width`; an image already that size passes through unchanged. When
 * `spec.channels` is 1 it is reduced to grey with the ITU-R 601 luma weights 0.299 R + 0.587 G + 0.114 B
 * (before resizing, which is the same result in a third of the work since both are linear). Values are
 * then mapped linearly from [0, 255] to `spec.range`.
 *
 * Shapes: each `images[i].data` has `width * height * 3` bytes; the result is a float32
 * `[images.length, spec.height, spec.width, spec.channels]` tensor the caller owns (and disposes).
 * Intermediate tensors are freed.
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
  images.forEach(checkImage);
  const [low, high] = spec.range;
  return tf.tidy(() => {
    const perImage = images.map((img) => {
      let x: tf.Tensor3D = tf.tensor3d(img.data, [img.height, img.width, 3], "float32");
      if (spec.channels === 1) x = tf.sum(tf.mul(x, tf.tensor1d(LUMA)), -1, true);
      if (img.height !== spec.height || img.width !== spec.width) {
        x = tf.image.resizeBilinear(x, [spec.height, spec.width], false, true);
      }
      return x;
    });
    const batch = tf.stack(perImage) as tf.Tensor4D;
    return tf.add(tf.mul(batch, (high - low) / 255), low);
  });
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

function checkImage(img: RgbImage, index: number): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RuntimeError("invalid", "invalid_input", `image ${index} has size ${width}x${height}`, {
      index,
      width,
      height,
    });
  }
  if (data.length !== width * height * 3) {
    throw new RuntimeError(
      "invalid",
      "invalid_input",
      `image ${index} has ${data.length} bytes, expected ${width * height * 3} for ${width}x${height}x3`,
      { index, width, height, length: data.length },
    );
  }
}
