import * as tf from "@tensorflow/tfjs";
import { imageToInput, type InputSpec } from "../data/input_spec.ts";
import { RuntimeError } from "../errors.ts";
import { decodeUploadedImage } from "../data/uploaded_image.ts";

/**
 * A job's input tensor from stored sample files, decoded one at a time straight into its slot, so memory is
 * the tensor plus one image of at most `maxImageSide` squared, whatever the dataset's files are.
 *
 * @throws {RuntimeError} `cancelled` once `signal` aborts; the decode errors of a damaged file.
 *
 * @example
 * ```ts
 * import { samplesToTensor } from "./samples_to_tensor.ts";
 * console.assert(typeof samplesToTensor === "function");
 * ```
 */
export async function samplesToTensor(
  files: Uint8Array[],
  spec: InputSpec,
  limits: { maxImagePixels: number; maxImageSide: number },
  signal?: AbortSignal,
): Promise<tf.Tensor4D> {
  const size = spec.height * spec.width * spec.channels;
  const values = new Float32Array(files.length * size);
  for (const [index, bytes] of files.entries()) {
    if (signal?.aborted) throw new RuntimeError("conflict", "cancelled", "the adaptation was cancelled");
    const image = await decodeUploadedImage(bytes, { list: "samples", index }, {
      ...limits,
      maxImageBytes: Infinity,
    });
    imageToInput(image, spec, values, index * size);
  }
  return tf.tensor4d(values, [files.length, spec.height, spec.width, spec.channels], "float32");
}
