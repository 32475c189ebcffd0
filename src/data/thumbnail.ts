import { RuntimeError } from "../errors.ts";
import type { RgbImage } from "./image.ts";

/**
 * The image scaled down so its longer side is at most `maxSide`, each output pixel the mean of the source
 * pixels it covers (a box filter: no aliasing, no library). An image already small enough comes back as is.
 *
 * @throws {RuntimeError} `invalid`/`invalid_thumbnail_size` when `maxSide` is not a positive integer.
 *
 * @example
 * ```ts
 * import { thumbnail } from "./thumbnail.ts";
 * const img = { width: 4, height: 2, data: new Uint8Array(4 * 2 * 3).map((_, i) => (i < 12 ? 0 : 200)) };
 * const small = thumbnail(img, 2);
 * console.assert(small.width === 2 && small.height === 1 && small.data[0] === 100);
 * ```
 */
export function thumbnail(img: RgbImage, maxSide: number): RgbImage {
  if (!Number.isInteger(maxSide) || maxSide < 1) {
    throw new RuntimeError(
      "invalid",
      "invalid_thumbnail_size",
      `thumbnail size ${maxSide} is not a positive integer`,
      {
        maxSide,
      },
    );
  }
  const { width, height, data } = img;
  const scale = maxSide / Math.max(width, height);
  if (scale >= 1) return img;
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor((y * height) / h);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * height) / h));
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor((x * width) / w);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * width) / w));
      let r = 0, g = 0, b = 0;
      for (let sy = y0; sy < y1; sy++) {
        for (let sx = x0; sx < x1; sx++) {
          const i = (sy * width + sx) * 3;
          r += data[i];
          g += data[i + 1];
          b += data[i + 2];
        }
      }
      const n = (y1 - y0) * (x1 - x0);
      const o = (y * w + x) * 3;
      out[o] = Math.round(r / n);
      out[o + 1] = Math.round(g / n);
      out[o + 2] = Math.round(b / n);
    }
  }
  return { width: w, height: h, data: out };
}
