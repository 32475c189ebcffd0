import { encode as encodePngPixels } from "fast-png";
import { RuntimeError } from "../errors.ts";
import { LARGE_IMAGE_PIXELS, largeImages, loadSharp } from "./_sharp.ts";

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

/** The file formats {@link decodeImage} reads. GIF and TIFF give their first page. */
export const IMAGE_FORMATS = ["jpeg", "png", "webp", "gif", "avif", "tiff"] as const;

/** One of {@link IMAGE_FORMATS}. */
export type ImageFormat = typeof IMAGE_FORMATS[number];

/**
 * Options for {@link decodeImage} and {@link probeImage}.
 *
 * @example
 * ```ts
 * import type { DecodeImageOptions } from "./image.ts";
 * const thumbnailsOnly: DecodeImageOptions = { maxPixels: 512 * 512, maxSide: 256 };
 * console.assert(thumbnailsOnly.maxPixels === 262144);
 * ```
 */
export interface DecodeImageOptions {
  /**
   * The most pixels (`width * height`) an image may declare; larger images are refused from their header,
   * before any pixel is decoded. Default `4096 * 4096`.
   */
  maxPixels?: number;
  /**
   * The longest side of the decoded image: a larger image is shrunk to fit (aspect ratio kept) while it is
   * decoded, JPEG and WebP in the DCT domain first, then with an antialiased Lanczos-3 filter. Default
   * {@link DEFAULT_MAX_SIDE}; `Infinity` keeps the full size.
   */
  maxSide?: number;
  /**
   * The image's header as {@link probeImage} already read it from these bytes (with the same `maxPixels`),
   * so it is not read again.
   */
  probed?: ImageInfo;
}

/** What {@link probeImage} reads from a header. */
export interface ImageInfo {
  format: ImageFormat;
  /** Stored size, before the EXIF orientation is applied. */
  width: number;
  height: number;
  /** Whether the file needs no rotation or flip (EXIF orientation absent or 1). */
  upright: boolean;
}

/** Default for {@link DecodeImageOptions.maxPixels}. */
export const DEFAULT_MAX_PIXELS = 4096 * 4096;

/**
 * Default for {@link DecodeImageOptions.maxSide}: well above any backbone's input (96 to 224), so the
 * final antialiased resize in `imagesToTensor` always shrinks; large enough that a VGA camera frame
 * (640 x 480), the commonest thing a camera sends, is stored as it came, without a re-encoding (a third of
 * an upload's time at 512, and a generation of JPEG loss); small enough that a decoded image is at most
 * 1.2 MiB.
 */
export const DEFAULT_MAX_SIDE = 640;

const WHITE = { r: 255, g: 255, b: 255 };

/**
 * Reads an image's format and size from its header without decoding any pixel.
 *
 * @throws {RuntimeError} the same header errors as {@link decodeImage}: `unsupported_image_type`,
 *   `invalid_image`, and `image_too_large` over `maxPixels`.
 *
 * @example
 * ```ts
 * import { encodePng, probeImage } from "./image.ts";
 * const info = await probeImage(encodePng({ width: 3, height: 2, data: new Uint8Array(18) }));
 * console.assert(info.format === "png" && info.width === 3 && info.height === 2 && info.upright);
 * ```
 */
export async function probeImage(bytes: Uint8Array, options: DecodeImageOptions = {}): Promise<ImageInfo> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (bytes.length === 0) {
    throw new RuntimeError("invalid", "invalid_image", "the image is empty (0 bytes)", {});
  }
  const sniffed = sniff(bytes);
  // A HEIF container holds AVIF (AV1) or HEIC (HEVC, which libvips here does not decode): the header says.
  const expected = sniffed === "heif" ? "avif" : sniffed;
  if (!expected || !(IMAGE_FORMATS as readonly string[]).includes(expected)) throw unsupported(sniffed);
  let meta;
  try {
    // Header only; the pixel limit is ours, checked below with a clearer error than libvips' own.
    meta = await (await loadSharp())(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw invalid(expected, err);
  }
  const format = meta.format === "heif" ? (meta.compression === "av1" ? "avif" : "heic") : meta.format;
  if (format !== expected) throw unsupported(format);
  const { width, height } = meta;
  if (!width || !height) throw invalid(format, new Error("the header gives no size"));
  if (width * height > maxPixels) throw tooLarge(format, width, height, maxPixels);
  return { format: format as ImageFormat, width, height, upright: (meta.orientation ?? 1) === 1 };
}

/**
 * Decodes JPEG, PNG, WebP, GIF, AVIF or TIFF bytes (recognised by their leading bytes) to an upright,
 * bounded {@link RgbImage}, with libvips (sharp), off the event loop.
 *
 * - The EXIF orientation (JPEG, WebP, AVIF, TIFF) is applied, so a phone photo comes out the right way up.
 * - Images whose longest side exceeds `maxSide` are shrunk while decoding: a JPEG decodes at 1/2, 1/4 or
 *   1/8 scale straight from its DCT coefficients, then an antialiased Lanczos-3 filter takes it the rest of
 *   the way, so memory and time follow the output size, not the file's.
 * - Grey, palette, 16-bit and CMYK images become 8-bit sRGB (an embedded ICC profile is applied);
 *   transparency is composited onto white rather than dropped, because the colour under a transparent
 *   pixel is arbitrary (often black) and would otherwise show. GIF and TIFF give their first page.
 *
 * Decompression bombs are refused from the header, before decoding: `width * height` must not exceed
 * `maxPixels`.
 *
 * @throws {RuntimeError} `unsupported`/`unsupported_image_type` for any other format (`details.detected`
 *   names BMP, SVG, HEIC, ... when recognised); `invalid`/`invalid_image` when the bytes are empty,
 *   truncated or corrupt; `too_large`/`image_too_large` when the image has more than `maxPixels` pixels.
 *
 * @example
 * ```ts
 * import { decodeImage, encodePng } from "./image.ts";
 * const png = encodePng({ width: 2, height: 1, data: new Uint8Array([255, 0, 0, 0, 0, 255]) });
 * const image = await decodeImage(png);
 * console.assert(image.width === 2 && image.height === 1 && image.data[5] === 255);
 * ```
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeImageOptions = {}): Promise<RgbImage> {
  const info = options.probed ?? await probeImage(bytes, options);
  try {
    const { data, info: out } = await inLane(
      info,
      async () =>
        (await pipeline(bytes, info, options)).raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true }),
    );
    if (out.channels !== 3) throw new Error(`decoded to ${out.channels} channels`);
    return {
      width: out.width,
      height: out.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    };
  } catch (err) {
    throw invalid(info.format, err);
  }
}

/**
 * The file to keep for an image: its own bytes when they already decode to themselves at full size (upright
 * and no side over `maxSide`), otherwise what {@link decodeImage} gives, encoded again: as a JPEG of
 * quality 95 without chroma subsampling when the source is a JPEG (within about one level of the decoded
 * pixels, far less than the source's own compression error), as a lossless PNG otherwise. So a stored
 * sample trains on what a prediction on the original file sees, and storage is bounded by `maxSide`.
 *
 * @throws {RuntimeError} {@link decodeImage}'s errors.
 *
 * @example
 * ```ts
 * import { boundedImageFile, decodeImage, encodePng } from "./image.ts";
 * const wide = encodePng({ width: 40, height: 10, data: new Uint8Array(1200).fill(90) });
 * const kept = await boundedImageFile(wide, { maxSide: 20 });
 * console.assert(kept.format === "png" && kept.width === 20 && kept.height === 5);
 * console.assert((await decodeImage(kept.bytes)).width === 20);
 * ```
 */
export async function boundedImageFile(
  bytes: Uint8Array,
  options: DecodeImageOptions = {},
): Promise<{ bytes: Uint8Array; format: ImageFormat; width: number; height: number }> {
  const info = options.probed ?? await probeImage(bytes, options);
  const maxSide = options.maxSide ?? DEFAULT_MAX_SIDE;
  if (info.upright && Math.max(info.width, info.height) <= maxSide && info.format !== "tiff") {
    // Decoded once all the same: a file that does not decode is refused now, not when it trains.
    await decodeImage(bytes, { ...options, probed: info });
    return { bytes, format: info.format, width: info.width, height: info.height };
  }
  // A JPEG stays a JPEG (quality 95, no chroma subsampling: about one level of error on top of the source's
  // own, at a tenth of a PNG's encoding time); anything else becomes a lossless PNG.
  const format = info.format === "jpeg" ? "jpeg" : "png";
  try {
    const { data, info: out } = await inLane(info, async () => {
      const image = await pipeline(bytes, info, options);
      return (format === "jpeg"
        ? image.jpeg({ quality: 95, chromaSubsampling: "4:4:4" })
        : image.png({ compressionLevel: 6 })).toBuffer({ resolveWithObject: true });
    });
    return {
      bytes: new Uint8Array(data.buffer, data.byteOffset, data.length),
      format,
      width: out.width,
      height: out.height,
    };
  } catch (err) {
    throw invalid(info.format, err);
  }
}

function inLane<T>(info: ImageInfo, fn: () => Promise<T>): Promise<T> {
  return info.width * info.height > LARGE_IMAGE_PIXELS ? largeImages.run(fn) : fn();
}

// The one decoding pipeline: orientation, bounded size, white background, 8-bit sRGB.
async function pipeline(bytes: Uint8Array, info: ImageInfo, options: DecodeImageOptions) {
  const maxSide = options.maxSide ?? DEFAULT_MAX_SIDE;
  let image = (await loadSharp())(bytes, {
    failOn: "truncated",
    limitInputPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS,
    sequentialRead: true,
  }).autoOrient();
  if (Math.max(info.width, info.height) > maxSide) {
    image = image.resize({ width: maxSide, height: maxSide, fit: "inside", withoutEnlargement: true });
  }
  return image.flatten({ background: WHITE }).toColourspace("srgb");
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
 * console.assert((await decodeImage(encodePng(grey))).data.join() === grey.data.join());
 * ```
 */
export function encodePng(img: RgbImage): Uint8Array {
  assertRgbImage(img);
  const { width, height, data } = img;
  let grey = true;
  for (let i = 0; i < data.length && grey; i += 3) grey = data[i] === data[i + 1] && data[i] === data[i + 2];
  if (!grey) return encodePngPixels({ width, height, data, channels: 3, depth: 8 });
  const luma = new Uint8Array(width * height);
  for (let p = 0; p < luma.length; p++) luma[p] = data[p * 3];
  return encodePngPixels({ width, height, data: luma, channels: 1, depth: 8 });
}

/**
 * Checks that `img` is a well-formed {@link RgbImage}: positive integer sizes and `width * height * 3` bytes.
 * The one check of the shape, for every function that takes decoded images.
 *
 * @param at names the image in the message (`image 3`) and `details.index`, for functions that take lists.
 * @throws {RuntimeError} `invalid`/`code` (default `invalid_image`).
 *
 * @example
 * ```ts
 * import { assertRgbImage } from "./image.ts";
 * assertRgbImage({ width: 1, height: 1, data: new Uint8Array(3) });
 * try { assertRgbImage({ width: 2, height: 1, data: new Uint8Array(3) }); } catch (e) { console.log((e as Error).message); }
 * ```
 */
export function assertRgbImage(img: RgbImage, at: { code?: string; index?: number } = {}): void {
  const { width, height, data } = img;
  const code = at.code ?? "invalid_image";
  const name = at.index === undefined ? "image" : `image ${at.index}`;
  const where = at.index === undefined ? {} : { index: at.index };
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RuntimeError("invalid", code, `${name} has size ${width}x${height}, not positive integers`, {
      ...where,
      width,
      height,
    });
  }
  if (data.length !== width * height * 3) {
    throw new RuntimeError(
      "invalid",
      code,
      `${name} has ${data.length} bytes, expected ${width * height * 3} for ${width}x${height}x3`,
      { ...where, width, height, length: data.length },
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

function invalid(format: string, err: unknown): RuntimeError {
  if (err instanceof RuntimeError) return err;
  const message = (err as Error)?.message ?? String(err);
  // libvips' messages name the loader and the fault ("VipsJpeg: Premature end of input file"), never a path:
  // the input is always a buffer.
  return new RuntimeError(
    "invalid",
    "invalid_image",
    `invalid ${format.toUpperCase()}: ${firstLine(message)}`,
    {
      format,
    },
  );
}

function firstLine(text: string): string {
  return text.split("\n").map((l) => l.trim()).filter(Boolean)[0] ?? "cannot be decoded";
}

function unsupported(detected: string | undefined): RuntimeError {
  return new RuntimeError(
    "unsupported",
    "unsupported_image_type",
    `unsupported image type${detected ? ` (${detected})` : ""}: send ${IMAGE_FORMATS.join(", ")}`,
    { detected: detected ?? "unknown", supported: [...IMAGE_FORMATS] },
  );
}

// The format from the leading bytes, before any decoder sees them: only the formats listed can reach
// libvips (not SVG, PDF or the other loaders it has).
function sniff(bytes: Uint8Array): string | undefined {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  if (ascii(1, 4) === "PNG" && bytes[0] === 0x89) return "png";
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "webp";
  if (ascii(0, 4) === "GIF8") return "gif";
  if (ascii(4, 8) === "ftyp" && /^(heic|heix|hevc|hevx)$/.test(ascii(8, 12))) return "heic";
  if (ascii(4, 8) === "ftyp" && /^(avif|avis|mif1|msf1)$/.test(ascii(8, 12))) return "heif";
  if (ascii(0, 4) === "II*\0" || ascii(0, 4) === "MM\0*") return "tiff";
  if (ascii(0, 2) === "BM") return "bmp";
  if (/^\s*<(\?xml|svg)/.test(ascii(0, 64))) return "svg";
  return undefined;
}
