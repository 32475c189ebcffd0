import { decodeImage, type RgbImage } from "../data/image.ts";
import { RuntimeError } from "../errors.ts";

/** Limits an uploaded image must meet. */
export interface ImageLimits {
  /** Largest file, in bytes. */
  maxImageBytes: number;
  /** Largest image, in pixels, checked from the header before decoding. */
  maxImagePixels: number;
}

/** Where an uploaded image sits in its request, for error messages: `samples[3]`, `images[0]`. */
export interface UploadPosition {
  /** The request's list: "samples" or "images". */
  list: string;
  index: number;
}

/**
 * Decodes one uploaded PNG or JPEG, enforcing the byte and pixel limits, and names the item in any error
 * (`details.index`, and the message starts with `samples[3]:`) so a caller can fix exactly that one.
 *
 * @throws {RuntimeError} `too_large`/`image_too_large` over either limit; decodeImage's `invalid_image`
 *   and `unsupported_image_type`, with the position added.
 *
 * @example
 * ```ts
 * import { decodeUploadedImage } from "./decode_uploaded_image.ts";
 * import { encodePng } from "../data/image.ts";
 * const png = encodePng({ width: 1, height: 1, data: new Uint8Array([1, 2, 3]) });
 * const image = decodeUploadedImage(png, { list: "images", index: 0 }, { maxImageBytes: 1e6, maxImagePixels: 1e6 });
 * console.assert(image.width === 1);
 * ```
 */
export function decodeUploadedImage(bytes: Uint8Array, at: UploadPosition, limits: ImageLimits): RgbImage {
  const where = `${at.list}[${at.index}]`;
  if (bytes.length > limits.maxImageBytes) {
    throw new RuntimeError(
      "too_large",
      "image_too_large",
      `${where}: the image is ${bytes.length} bytes, more than the limit of ${limits.maxImageBytes}`,
      { index: at.index, bytes: bytes.length, maxImageBytes: limits.maxImageBytes },
    );
  }
  try {
    return decodeImage(bytes, { maxPixels: limits.maxImagePixels });
  } catch (err) {
    if (!(err instanceof RuntimeError)) throw err;
    throw new RuntimeError(err.kind, err.code, `${where}: ${err.message}`, {
      ...err.details,
      index: at.index,
    });
  }
}
