import { decode as decodePngPixels, encode as encodePngPixels } from "fast-png";
import jpeg from "jpeg-js";
import { RuntimeError } from "../errors.ts";
import { pixelChunksOnly, PNG_SIGNATURE, pngToRgb, readPngHeader } from "./_png.ts";
import { readJpegSize } from "./_jpeg.ts";

/**
 * An 8-bit RGB image: the one pixel format every stage after decoding sees.
 *
 * `data` holds `height` rows of `width` pixels, each three bytes R, G, B (row-major, interleaved), so
 * `data.length === width * height * 3`. Grey sources have R = G = B.
 *
 * @example
 * ```ts
 * import type { RgbImage } from "./image.ts";
 * const red: RgbImage = { width: 1, height: 1, data: new Uint8Array([255, 0, 0]) };
 * console.assert(red.data.length === red.width * red.height * 3);
 * ```
 */
export interface RgbImage {
  /** Pixels per row, >= 1. */
  width: number;
  /** Rows, >= 1. */
  height: number;
  /** RGB interleaved, row-major; length `width * height * 3`. */
  data: Uint8Array;
}

/**
 * Options for {@link decodeImage}.
 *
 * @example
 * ```ts
 * import type { DecodeImageOptions } from "./image.ts";
 * const thumbnailsOnly: DecodeImageOptions = { maxPixels: 512 * 512 };
 * console.assert(thumbnailsOnly.maxPixels === 262144);
 * ```
 */
export interface DecodeImageOptions {
  /**
   * The most pixels (`width * height`) an image may declare; larger images are refused from their header,
   * before any pixel is decoded. Default `4096 * 4096`.
   */
  maxPixels?: number;
}

const DEFAULT_MAX_PIXELS = 4096 * 4096;

/**
 * Decodes PNG or JPEG bytes, recognised by their leading magic bytes, to an {@link RgbImage}.
 *
 * - PNG (fast-png): grey, grey+alpha, RGB, RGBA and palette images at every bit depth (1 to 16 bits) become
 *   8-bit RGB (16-bit samples are rounded to the nearest 8-bit value). Transparency, whether an alpha
 *   channel, palette alpha or a tRNS colour key, is composited onto white rather than dropped, because
 *   the colour under a transparent pixel is arbitrary (often black) and would otherwise show. Interlaced
 *   PNGs with fewer than 8 bits per sample are refused as unsupported (the decoder mishandles them).
 *   Metadata chunks are ignored; colour profiles (iCCP, gAMA) are not applied.
 * - JPEG (jpeg-js): baseline and progressive, grey, YCbCr and CMYK. The EXIF orientation is not applied.
 *
 * Decompression bombs are refused before decoding: the size in the PNG IHDR or JPEG frame header must not
 * exceed `maxPixels`, PNG image data may not inflate past what IHDR declares, and jpeg-js runs with a
 * resolution and memory cap derived from `maxPixels`.
 *
 * @throws {RuntimeError} `unsupported`/`unsupported_image_type` when the bytes are neither PNG nor JPEG
 *   (`details.detected` names GIF, WebP, BMP or TIFF when recognised); `invalid`/`invalid_image` when
 *   they are empty, truncated or corrupt; `too_large`/`image_too_large` when the image has more than
 *   `maxPixels` pixels.
 *
 * @example
 * ```ts
 * import { decodeImage, encodePng } from "./image.ts";
 * const png = encodePng({ width: 2, height: 1, data: new Uint8Array([255, 0, 0, 0, 0, 255]) });
 * const image = decodeImage(png);
 * console.assert(image.width === 2 && image.height === 1 && image.data[5] === 255);
 * ```
 */
export function decodeImage(bytes: Uint8Array, options: DecodeImageOptions = {}): RgbImage {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (bytes.length === 0) {
    throw new RuntimeError("invalid", "invalid_image", "the image is empty (0 bytes)", {});
  }
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return decodePng(bytes, maxPixels);
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return decodeJpeg(bytes, maxPixels);
  const detected = sniffOther(bytes);
  throw new RuntimeError(
    "unsupported",
    "unsupported_image_type",
    `unsupported image type${detected ? ` (${detected})` : ""}: only PNG and JPEG can be decoded`,
    { detected: detected ?? "unknown" },
  );
}

/**
 * Encodes an {@link RgbImage} as a lossless 8-bit PNG (fast-png). When every pixel has R = G = B the file is
 * written as single-channel grey, a third of the raw size; it decodes back to the same RGB bytes.
 *
 * @throws {RuntimeError} `invalid`/`invalid_image` when `data.length !== width * height * 3`.
 *
 * @example
 * ```ts
 * import { decodeImage, encodePng } from "./image.ts";
 * const grey = { width: 1, height: 2, data: new Uint8Array([7, 7, 7, 9, 9, 9]) };
 * console.assert(decodeImage(encodePng(grey)).data.join() === grey.data.join());
 * ```
 */
export function encodePng(img: RgbImage): Uint8Array {
  checkRgbImage(img);
  const { width, height, data } = img;
  let grey = true;
  for (let i = 0; i < data.length && grey; i += 3) grey = data[i] === data[i + 1] && data[i] === data[i + 2];
  if (!grey) return encodePngPixels({ width, height, data, channels: 3, depth: 8 });
  const luma = new Uint8Array(width * height);
  for (let p = 0; p < luma.length; p++) luma[p] = data[p * 3];
  return encodePngPixels({ width, height, data: luma, channels: 1, depth: 8 });
}

function checkRgbImage(img: RgbImage): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RuntimeError("invalid", "invalid_image", `image size ${width}x${height} is not positive`, {
      width,
      height,
    });
  }
  if (data.length !== width * height * 3) {
    throw new RuntimeError(
      "invalid",
      "invalid_image",
      `RGB data has ${data.length} bytes, expected ${width * height * 3} for ${width}x${height}x3`,
      { width, height, length: data.length },
    );
  }
}

function tooLarge(format: string, width: number, height: number, maxPixels: number): RuntimeError {
  return new RuntimeError(
    "too_large",
    "image_too_large",
    `${format} image is ${width}x${height} = ${width * height} pixels, more than the limit of ${maxPixels}`,
    { format, width, height, maxPixels },
  );
}

function decodePng(bytes: Uint8Array, maxPixels: number): RgbImage {
  const header = readPngHeader(bytes);
  if (header.width * header.height > maxPixels) throw tooLarge("png", header.width, header.height, maxPixels);
  if (header.interlaced && header.depth < 8) {
    throw new RuntimeError(
      "unsupported",
      "unsupported_image_type",
      `interlaced PNG with ${header.depth}-bit samples is not supported; re-save it without interlacing`,
      { format: "png", depth: header.depth, interlaced: true },
    );
  }
  const minimal = pixelChunksOnly(bytes, header);
  let rgb: Uint8Array;
  try {
    const png = decodePngPixels(minimal);
    rgb = pngToRgb(png, header.colorType);
  } catch (err) {
    if (err instanceof RuntimeError) throw err;
    throw new RuntimeError("invalid", "invalid_image", `invalid PNG: ${(err as Error).message}`, {
      format: "png",
    });
  }
  if (rgb.length !== header.width * header.height * 3) {
    throw new RuntimeError(
      "invalid",
      "invalid_image",
      "invalid PNG: image data is shorter than the header says",
      {
        format: "png",
      },
    );
  }
  return { width: header.width, height: header.height, data: rgb };
}

function decodeJpeg(bytes: Uint8Array, maxPixels: number): RgbImage {
  const { width, height } = readJpegSize(bytes);
  if (width * height > maxPixels) throw tooLarge("jpeg", width, height, maxPixels);
  try {
    const image = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      // A second line of defence; the header check above already enforces the same limit.
      maxResolutionInMP: maxPixels / 1e6,
      // Output, component planes and their up-sampled copies: generously 16 bytes a pixel.
      maxMemoryUsageInMB: Math.max(64, Math.ceil((maxPixels * 16) / 2 ** 20)),
    });
    return { width: image.width, height: image.height, data: image.data };
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if (/maxResolutionInMP|maxMemoryUsageInMB|allocate enough memory/.test(message)) {
      throw new RuntimeError(
        "too_large",
        "image_too_large",
        `JPEG image is too large to decode: ${message}`,
        {
          format: "jpeg",
          width,
          height,
          maxPixels,
        },
      );
    }
    throw new RuntimeError("invalid", "invalid_image", `invalid JPEG: ${message}`, { format: "jpeg" });
  }
}

function sniffOther(bytes: Uint8Array): string | undefined {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (ascii(0, 4) === "GIF8") return "gif";
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "webp";
  if (ascii(0, 2) === "BM") return "bmp";
  if (ascii(0, 4) === "II*\0" || ascii(0, 4) === "MM\0*") return "tiff";
  return undefined;
}
