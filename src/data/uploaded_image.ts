import { decodeImage, type ImageInfo, probeImage, type RgbImage } from "../data/image.ts";
import { RuntimeError } from "../errors.ts";

/** Limits an uploaded image must meet. */
export interface ImageLimits {
  /** Largest file, in bytes. */
  maxImageBytes: number;
  /** Largest image, in pixels, checked from the header before decoding. */
  maxImagePixels: number;
  /** Longest side an image is decoded (and stored) at; larger ones are shrunk while decoding. */
  maxImageSide: number;
  /** Most source pixels (summed over the headers) one request may ask to decode. */
  maxRequestPixels: number;
}

/** Where an uploaded image sits in its request, for error messages: `samples[3]`, `images[0]`. */
export interface UploadPosition {
  /** The request's list: "samples" or "images". */
  list: string;
  index: number;
}

/**
 * Decodes one uploaded image (see `decodeImage` for the formats), enforcing the byte, pixel and side
 * limits, and names the item in any error (`details.index`, and the message starts with `samples[3]:`) so
 * a caller can fix exactly that one. Decoding runs off the event loop. `probed` is its header as
 * {@linkcode checkRequestPixels} already read it, so it is not read again.
 *
 * @throws {RuntimeError} `too_large`/`image_too_large` over either limit; decodeImage's `invalid_image`
 *   and `unsupported_image_type`, with the position added.
 *
 * @example
 * ```ts
 * import { decodeUploadedImage } from "./uploaded_image.ts";
 * import { encodePng } from "../data/image.ts";
 * const png = encodePng({ width: 1, height: 1, data: new Uint8Array([1, 2, 3]) });
 * const limits = { maxImageBytes: 1e6, maxImagePixels: 1e6, maxImageSide: 512, maxRequestPixels: 1e6 };
 * const image = await decodeUploadedImage(png, { list: "images", index: 0 }, limits);
 * console.assert(image.width === 1);
 * ```
 */
export function decodeUploadedImage(
  bytes: Uint8Array,
  at: UploadPosition,
  limits: Omit<ImageLimits, "maxRequestPixels">,
  probed?: ImageInfo,
): Promise<RgbImage> {
  return atPosition(at, () => {
    checkBytes(bytes, at, limits.maxImageBytes);
    return decodeImage(bytes, { maxPixels: limits.maxImagePixels, maxSide: limits.maxImageSide, probed });
  });
}

/**
 * Reads every image's header (no pixel decoded) and checks the request as a whole before any decoding
 * starts: each file within the byte and pixel limits, and the pixels of all of them together within
 * `maxRequestPixels`, so a request's decoding time and memory are bounded by configuration however its
 * files are built (eight all-zero 4096 x 4096 PNGs are 131 kB).
 *
 * @throws {RuntimeError} `too_large`/`pixel_budget_exceeded` naming `maxRequestPixels` and the first image
 *   over it (`details.index`); each image's header errors as {@link decodeUploadedImage}.
 *
 * @example
 * ```ts
 * import { checkRequestPixels } from "./uploaded_image.ts";
 * import { encodePng } from "../data/image.ts";
 * const png = encodePng({ width: 10, height: 10, data: new Uint8Array(300) });
 * const limits = { maxImageBytes: 1e6, maxImagePixels: 1e6, maxImageSide: 512, maxRequestPixels: 150 };
 * const infos = await checkRequestPixels([png], "images", limits);
 * console.assert(infos[0].width === 10);
 * const refused = await checkRequestPixels([png, png], "images", limits).catch((e) => e.code);
 * console.assert(refused === "pixel_budget_exceeded");
 * ```
 */
export async function checkRequestPixels(
  files: Uint8Array[],
  list: string,
  limits: ImageLimits,
): Promise<ImageInfo[]> {
  const infos = await settleInOrder(files.map((bytes, index) =>
    atPosition({ list, index }, () => {
      checkBytes(bytes, { list, index }, limits.maxImageBytes);
      return probeImage(bytes, { maxPixels: limits.maxImagePixels });
    })
  ));
  let total = 0;
  infos.forEach((info, index) => {
    total += info.width * info.height;
    if (total > limits.maxRequestPixels) {
      const all = infos.reduce((sum, i) => sum + i.width * i.height, 0);
      throw new RuntimeError(
        "too_large",
        "pixel_budget_exceeded",
        `${list}[${index}]: the request's images have ${all} pixels in all, more than maxRequestPixels ` +
          `(${limits.maxRequestPixels}); send fewer or smaller images per request`,
        { index, pixels: all, maxRequestPixels: limits.maxRequestPixels },
      );
    }
  });
  return infos;
}

/**
 * Awaits every promise and then either returns all values or throws the failure of the lowest index, so
 * the error a request gets does not depend on which decode happened to finish first.
 *
 * @example
 * ```ts
 * import { settleInOrder } from "./uploaded_image.ts";
 * const late = new Promise((_, reject) => setTimeout(() => reject(new Error("first")), 5));
 * const error = await settleInOrder([late, Promise.reject(new Error("second"))]).catch((e) => e.message);
 * console.assert(error === "first");
 * ```
 */
export async function settleInOrder<T>(promises: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

function checkBytes(bytes: Uint8Array, at: UploadPosition, maxImageBytes: number): void {
  if (bytes.length > maxImageBytes) {
    throw new RuntimeError(
      "too_large",
      "image_too_large",
      `the image is ${bytes.length} bytes, more than the limit of ${maxImageBytes}`,
      { index: at.index, bytes: bytes.length, maxImageBytes },
    );
  }
}

/**
 * Runs `fn`, prefixing any RuntimeError it throws with the item's position (`samples[3]: ...`,
 * `details.index`).
 *
 * @example
 * ```ts
 * import { atPosition } from "./uploaded_image.ts";
 * import { RuntimeError } from "../errors.ts";
 * const error = await atPosition({ list: "samples", index: 3 }, () => {
 *   throw new RuntimeError("invalid", "invalid_image", "corrupt");
 * }).catch((e) => e);
 * console.assert(error.message === "samples[3]: corrupt" && error.details.index === 3);
 * ```
 */
export async function atPosition<T>(at: UploadPosition, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof RuntimeError)) throw err;
    throw new RuntimeError(err.kind, err.code, `${at.list}[${at.index}]: ${err.message}`, {
      ...err.details,
      index: at.index,
    });
  }
}
