import jpeg from "jpeg-js";
import { RuntimeError } from "../errors.ts";
import { assertRgbImage, type RgbImage } from "./image.ts";
import { seededRandom } from "./random.ts";

/**
 * The corruptions {@linkcode corruptImage} applies, after ImageNet-C (Hendrycks & Dietterich, 2019) and
 * MNIST-C, with spatial sizes given for a 28-pixel image and scaled with the image's shorter side.
 */
export const CORRUPTIONS = [
  "gaussian-noise",
  "impulse-noise",
  "gaussian-blur",
  "contrast",
  "brightness",
  "rotation",
  "pixelate",
  "jpeg",
  "inversion",
] as const;

/** One of {@linkcode CORRUPTIONS}. */
export type Corruption = typeof CORRUPTIONS[number];

/** The strongest severity; severities are the integers 0 (the image unchanged) to this. */
export const MAX_SEVERITY = 5;

// Per-corruption parameter at severities 1..5 (index 0 is severity 1). Noise, contrast, brightness,
// pixelate and JPEG use ImageNet-C's values; blur and rotation are sized for 28-pixel digits.
const LEVELS: Record<Exclude<Corruption, "inversion">, number[]> = {
  "gaussian-noise": [0.08, 0.12, 0.18, 0.26, 0.38], // standard deviation, in units of 255
  "impulse-noise": [0.03, 0.06, 0.09, 0.17, 0.27], // share of pixels set to 0 or 255
  "gaussian-blur": [0.5, 0.75, 1, 1.5, 2], // sigma in pixels of a 28-pixel image
  "contrast": [0.4, 0.3, 0.2, 0.1, 0.05], // factor on the distance to the mean grey
  "brightness": [0.1, 0.2, 0.3, 0.4, 0.5], // added, in units of 255
  "rotation": [10, 20, 30, 40, 50], // degrees, sign drawn at random
  "pixelate": [0.6, 0.5, 0.4, 0.3, 0.25], // side of the coarse grid, as a share of the image's
  "jpeg": [25, 18, 15, 10, 7], // JPEG quality
};

/**
 * Applies one corruption at a severity from 0 (the image unchanged, as a copy) to {@linkcode MAX_SEVERITY}
 * and returns a new image of the same size; the input is not modified. The random parts (noise, impulse
 * positions, the sign of a rotation) come from `seed` alone, so the same arguments give the same bytes.
 *
 * - `gaussian-noise` and `impulse-noise` draw one value per pixel and apply it to all three channels, so a
 *   grey image stays grey (the noise is in luminance).
 * - `gaussian-blur`, `rotation` (bilinear, edges extended) and `pixelate` (box average onto a coarse grid,
 *   drawn back with nearest neighbours) act on each channel; `contrast` pulls each channel towards the
 *   image's mean grey; `brightness` adds a constant.
 * - `jpeg` round-trips through jpeg-js at a low quality; a grey image is made grey again afterwards (the
 *   codec's chroma subsampling would otherwise tint it).
 * - `inversion` maps each byte `v` to `255 - v` at every severity above 0: it has no degrees.
 *
 * Shapes: `image.data` has `width * height * 3` bytes; so has the result. Values stay in 0..255 (clipped,
 * never wrapped).
 *
 * @throws {RuntimeError} `invalid`/`invalid_corruption` for an unknown corruption or a severity that is not
 *   an integer in 0..5; `invalid`/`invalid_image` when the data length does not match the size.
 *
 * @example
 * ```ts
 * import { corruptImage } from "./corruptions.ts";
 * const grey = { width: 28, height: 28, data: new Uint8Array(28 * 28 * 3).fill(100) };
 * const noisy = corruptImage(grey, "gaussian-noise", 3, 7);
 * console.assert(noisy.data.length === grey.data.length && noisy.data.some((v) => v !== 100));
 * console.assert(corruptImage(grey, "gaussian-noise", 3, 7).data.join() === noisy.data.join());
 * console.assert(corruptImage(grey, "rotation", 0, 7).data.join() === grey.data.join());
 * ```
 */
export function corruptImage(
  image: RgbImage,
  corruption: Corruption,
  severity: number,
  seed: number,
): RgbImage {
  if (!CORRUPTIONS.includes(corruption)) {
    throw new RuntimeError("invalid", "invalid_corruption", `no corruption named '${corruption}'`, {
      corruption,
      available: [...CORRUPTIONS],
    });
  }
  if (!Number.isInteger(severity) || severity < 0 || severity > MAX_SEVERITY) {
    throw new RuntimeError(
      "invalid",
      "invalid_corruption",
      `severity must be an integer in 0..${MAX_SEVERITY}, got ${severity}`,
      { corruption, severity },
    );
  }
  assertRgbImage(image);
  const { width, height, data } = image;
  if (severity === 0) return { width, height, data: data.slice() };
  const random = seededRandom(seed);
  const scale = Math.min(width, height) / 28;
  if (corruption === "inversion") return { width, height, data: data.map((v) => 255 - v) };
  const level = LEVELS[corruption][severity - 1];
  switch (corruption) {
    case "gaussian-noise":
      return perPixel(image, (v, noise) => v + noise, () => level * 255 * gaussian(random));
    case "impulse-noise":
      return perPixel(image, (v, salt) => salt < 0 ? v : salt, () => {
        return random() < level ? (random() < 0.5 ? 0 : 255) : -1;
      });
    case "gaussian-blur":
      return gaussianBlur(image, level * scale);
    case "contrast": {
      let sum = 0;
      for (const v of data) sum += v;
      const mean = sum / data.length;
      return map(image, (v) => (v - mean) * level + mean);
    }
    case "brightness":
      return map(image, (v) => v + level * 255);
    case "rotation":
      return rotate(image, (random() < 0.5 ? -1 : 1) * level * Math.PI / 180);
    case "pixelate":
      return pixelate(image, level);
    case "jpeg":
      return jpegRoundTrip(image, level);
  }
}

/** A standard normal draw (Box-Muller). */
function gaussian(random: () => number): number {
  const u = 1 - random(); // in (0, 1]
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

const clip = (v: number) => Math.min(255, Math.max(0, Math.round(v)));

function map(image: RgbImage, f: (v: number) => number): RgbImage {
  const out = new Uint8Array(image.data.length);
  for (let i = 0; i < out.length; i++) out[i] = clip(f(image.data[i]));
  return { width: image.width, height: image.height, data: out };
}

/** One draw per pixel, shared by its three channels. */
function perPixel(image: RgbImage, f: (v: number, draw: number) => number, draw: () => number): RgbImage {
  const out = new Uint8Array(image.data.length);
  for (let p = 0; p < out.length; p += 3) {
    const d = draw();
    for (let c = 0; c < 3; c++) out[p + c] = clip(f(image.data[p + c], d));
  }
  return { width: image.width, height: image.height, data: out };
}

function gaussianBlur(image: RgbImage, sigma: number): RgbImage {
  const { width, height } = image;
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = Array.from(
    { length: 2 * radius + 1 },
    (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma ** 2)),
  );
  const total = kernel.reduce((a, b) => a + b, 0);
  const weights = kernel.map((k) => k / total);
  const pass = (src: Float32Array, dx: number, dy: number) => {
    const dst = new Float32Array(src.length);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < 3; c++) {
          let acc = 0;
          for (let k = -radius; k <= radius; k++) {
            const sx = Math.min(width - 1, Math.max(0, x + k * dx));
            const sy = Math.min(height - 1, Math.max(0, y + k * dy));
            acc += weights[k + radius] * src[(sy * width + sx) * 3 + c];
          }
          dst[(y * width + x) * 3 + c] = acc;
        }
      }
    }
    return dst;
  };
  const blurred = pass(pass(Float32Array.from(image.data), 1, 0), 0, 1);
  return { width, height, data: Uint8Array.from(blurred, clip) };
}

/** Bilinear sample of channel `c` at (x, y), with the edges extended. */
function sample(image: RgbImage, x: number, y: number, c: number): number {
  const { width, height, data } = image;
  const cx = Math.min(width - 1, Math.max(0, x)), cy = Math.min(height - 1, Math.max(0, y));
  const x0 = Math.floor(cx), y0 = Math.floor(cy);
  const x1 = Math.min(width - 1, x0 + 1), y1 = Math.min(height - 1, y0 + 1);
  const fx = cx - x0, fy = cy - y0;
  const at = (px: number, py: number) => data[(py * width + px) * 3 + c];
  return (at(x0, y0) * (1 - fx) + at(x1, y0) * fx) * (1 - fy) +
    (at(x0, y1) * (1 - fx) + at(x1, y1) * fx) * fy;
}

function rotate(image: RgbImage, angle: number): RgbImage {
  const { width, height } = image;
  const out = new Uint8Array(image.data.length);
  const [cx, cy] = [(width - 1) / 2, (height - 1) / 2];
  const [cos, sin] = [Math.cos(angle), Math.sin(angle)];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // The output pixel's source: the inverse rotation about the centre.
      const sx = cos * (x - cx) + sin * (y - cy) + cx;
      const sy = -sin * (x - cx) + cos * (y - cy) + cy;
      for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = clip(sample(image, sx, sy, c));
    }
  }
  return { width, height, data: out };
}

function pixelate(image: RgbImage, share: number): RgbImage {
  const { width, height, data } = image;
  const [gw, gh] = [Math.max(1, Math.round(width * share)), Math.max(1, Math.round(height * share))];
  const coarse = new Float32Array(gw * gh * 3);
  const counts = new Float32Array(gw * gh);
  const cell = (x: number, y: number) => Math.floor(y * gh / height) * gw + Math.floor(x * gw / width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = cell(x, y);
      counts[k]++;
      for (let c = 0; c < 3; c++) coarse[k * 3 + c] += data[(y * width + x) * 3 + c];
    }
  }
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = cell(x, y);
      for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = clip(coarse[k * 3 + c] / counts[k]);
    }
  }
  return { width, height, data: out };
}

function jpegRoundTrip(image: RgbImage, quality: number): RgbImage {
  const { width, height, data } = image;
  const rgba = new Uint8Array(width * height * 4);
  let grey = true;
  for (let p = 0; p < width * height; p++) {
    rgba.set(data.subarray(p * 3, p * 3 + 3), p * 4);
    rgba[p * 4 + 3] = 255;
    grey &&= data[p * 3] === data[p * 3 + 1] && data[p * 3] === data[p * 3 + 2];
  }
  // jpeg-js both ways, synchronously: the corruption is the codec's round trip, not the server's decoder.
  const encoded = jpeg.encode({ width, height, data: rgba }, quality).data;
  const raw = jpeg.decode(encoded, { useTArray: true, formatAsRGBA: false });
  const decoded: RgbImage = { width: raw.width, height: raw.height, data: raw.data };
  if (grey) {
    for (let p = 0; p < width * height; p++) {
      decoded.data[p * 3] = decoded.data[p * 3 + 2] = decoded.data[p * 3 + 1];
    }
  }
  return decoded;
}
