// PNG specifics for `image.ts`: the header read before decoding (so a bomb is refused before any
// inflation), the chunk filter that bounds what the decoder inflates, and the conversion of every
// PNG pixel format to 8-bit RGB.
import { inflateSync } from "node:zlib";
import type { DecodedPng } from "fast-png";
import { RuntimeError } from "../errors.ts";

/** The PNG signature, the first eight bytes of every PNG file. */
export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Channels per pixel for each PNG colour type (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA). */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Bit depths the PNG specification allows for each colour type. */
const DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

/** The chunks that decide the pixels; every other chunk is dropped before decoding. */
const PIXEL_CHUNKS = new Set(["IHDR", "PLTE", "tRNS", "IDAT", "IEND"]);

/** Deflate cannot expand data by more than about 1032:1; past that bound an inflation check is needed. */
const MAX_DEFLATE_RATIO = 1032;

export interface PngHeader {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlaced: boolean;
}

function invalid(message: string): RuntimeError {
  return new RuntimeError("invalid", "invalid_image", `invalid PNG: ${message}`, { format: "png" });
}

function uint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

function chunkType(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
}

/** Reads and validates IHDR, which the specification requires to be the first chunk. */
export function readPngHeader(bytes: Uint8Array): PngHeader {
  if (bytes.length < 33 || uint32(bytes, 8) !== 13 || chunkType(bytes, 12) !== "IHDR") {
    throw invalid("the file does not start with an IHDR chunk");
  }
  const header = {
    width: uint32(bytes, 16),
    height: uint32(bytes, 20),
    depth: bytes[24],
    colorType: bytes[25],
    interlaced: bytes[28] === 1,
  };
  if (header.width === 0 || header.height === 0) throw invalid("width or height is zero");
  if (!(header.colorType in CHANNELS)) throw invalid(`unknown colour type ${header.colorType}`);
  if (!DEPTHS[header.colorType].includes(header.depth)) {
    throw invalid(`bit depth ${header.depth} is not allowed for colour type ${header.colorType}`);
  }
  if (bytes[28] > 1) throw invalid(`unknown interlace method ${bytes[28]}`);
  return header;
}

/** Bytes of filtered scanlines the IDAT stream must inflate to for this header. */
function inflatedSize(h: PngHeader): number {
  const bitsPerPixel = CHANNELS[h.colorType] * h.depth;
  const scanlines = (w: number, rows: number) =>
    w > 0 && rows > 0 ? rows * (1 + Math.ceil((w * bitsPerPixel) / 8)) : 0;
  if (!h.interlaced) return scanlines(h.width, h.height);
  // Adam7: seven reduced images, each with its own scanlines.
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [
    0,
    1,
    1,
    2,
  ]];
  let total = 0;
  for (const [x, y, dx, dy] of passes) {
    total += scanlines(Math.ceil((h.width - x) / dx), Math.ceil((h.height - y) / dy));
  }
  return total;
}

/**
 * Returns a PNG holding only the chunks that decide the pixels, after checking that the image data cannot
 * inflate past what the header declares. Dropping the other chunks keeps the decoder from inflating
 * compressed metadata (iCCP, zTXt) of any size; the check bounds IDAT, which the decoder inflates whole.
 */
export function pixelChunksOnly(bytes: Uint8Array, header: PngHeader): Uint8Array {
  const kept: Uint8Array[] = [bytes.subarray(0, 8)];
  const idat: Uint8Array[] = [];
  let at = 8;
  let sawEnd = false;
  while (at + 12 <= bytes.length && !sawEnd) {
    const length = uint32(bytes, at);
    const type = chunkType(bytes, at + 4);
    const end = at + 12 + length;
    if (end > bytes.length) throw invalid(`chunk ${type} runs past the end of the file`);
    if (PIXEL_CHUNKS.has(type)) kept.push(bytes.subarray(at, end));
    if (type === "IDAT") idat.push(bytes.subarray(at + 8, at + 8 + length));
    sawEnd = type === "IEND";
    at = end;
  }
  if (!sawEnd) throw invalid("the file is truncated (no IEND chunk)");
  if (idat.length === 0) throw invalid("the file has no image data (no IDAT chunk)");

  const expected = inflatedSize(header);
  const compressed = idat.reduce((sum, c) => sum + c.length, 0);
  if (compressed * MAX_DEFLATE_RATIO > expected) {
    // Only highly compressed data could hide a bomb; zlib stops as soon as the output passes the bound.
    try {
      inflateSync(concat(idat, compressed), { maxOutputLength: expected + 1024 });
    } catch (err) {
      if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
        throw new RuntimeError(
          "too_large",
          "image_too_large",
          `PNG image data inflates past the ${expected} bytes its ${header.width}x${header.height} header declares`,
          { format: "png", width: header.width, height: header.height },
        );
      }
      throw invalid(`image data does not inflate (${(err as Error).message})`);
    }
  }
  return concat(kept, kept.reduce((sum, c) => sum + c.length, 0));
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Converts a decoded PNG of any colour type and depth to 8-bit RGB, compositing any transparency (alpha
 * channel, palette alpha, or tRNS colour key) onto white.
 */
export function pngToRgb(png: DecodedPng, colorType: number): Uint8Array {
  const { width, height, depth, channels } = png;
  const maxSample = 2 ** depth - 1;
  const rowBytes = depth < 8 ? Math.ceil((width * depth) / 8) : width * channels;
  const data = png.data;
  const sample = depth < 8
    ? (pixel: number, _channel: number) => {
      const row = Math.floor(pixel / width), col = pixel % width;
      const bit = col * depth;
      const byte = data[row * rowBytes + (bit >> 3)];
      return (byte >> (8 - depth - (bit & 7))) & maxSample;
    }
    : (pixel: number, channel: number) => data[pixel * channels + channel];

  const key = png.transparency;
  if (colorType === 2 && depth === 8 && !key) return Uint8Array.from(data); // the common photo case
  if (colorType === 0 && depth === 8 && !key) {
    // Grey scans and digits (and what encodePng writes for them): the general loop below gives each sample
    // back unchanged, at ten times the cost, about 1 ms a 256x256 image, as much as a prediction.
    const out = new Uint8Array(width * height * 3);
    for (let p = 0; p < width * height; p++) out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = data[p];
    return out;
  }
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    let r: number, g: number, b: number, a = 1;
    if (colorType === 3) {
      const entry = png.palette?.[sample(p, 0)];
      if (!entry) throw invalid(`palette index ${sample(p, 0)} is out of range`);
      [r, g, b] = [entry[0] / 255, entry[1] / 255, entry[2] / 255];
      if (entry.length === 4) a = entry[3] / 255;
    } else if (channels <= 2) {
      const v = sample(p, 0);
      r = g = b = v / maxSample;
      if (channels === 2) a = sample(p, 1) / maxSample;
      else if (key && key.length >= 1 && v === key[0]) a = 0;
    } else {
      const [vr, vg, vb] = [sample(p, 0), sample(p, 1), sample(p, 2)];
      [r, g, b] = [vr / maxSample, vg / maxSample, vb / maxSample];
      if (channels === 4) a = sample(p, 3) / maxSample;
      else if (key && key.length >= 3 && vr === key[0] && vg === key[1] && vb === key[2]) a = 0;
    }
    out[p * 3] = Math.round(255 * (r * a + 1 - a));
    out[p * 3 + 1] = Math.round(255 * (g * a + 1 - a));
    out[p * 3 + 2] = Math.round(255 * (b * a + 1 - a));
  }
  return out;
}
