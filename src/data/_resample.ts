// Separable resampling with a triangle filter whose support widens with the shrink factor: PIL's
// `Image.resize(..., BILINEAR)` and torchvision's `resize(..., antialias=True)`. When shrinking by s, each
// output pixel averages about 2s input pixels per axis (an area average with soft edges) instead of the
// 2 that plain bilinear interpolation samples, so detail finer than the output grid is averaged out
// rather than aliased. When enlarging it is ordinary bilinear interpolation with half-pixel centres.

/** For each output index, the first input index it reads, how many, and their normalised weights. */
interface Taps {
  start: Int32Array;
  count: Int32Array;
  /** Row `i` of `size` weights belongs to output index `i`; only its first `count[i]` are used. */
  size: number;
  weights: Float32Array;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const support = Math.max(scale, 1);
  const size = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * size);
  for (let i = 0; i < outSize; i++) {
    const centre = (i + 0.5) * scale;
    const from = Math.max(Math.floor(centre - support + 0.5), 0);
    const to = Math.min(Math.floor(centre + support + 0.5), inSize, from + size);
    let total = 0;
    for (let x = from; x < to; x++) {
      const w = Math.max(0, 1 - Math.abs((x + 0.5 - centre) / support));
      weights[i * size + x - from] = w;
      total += w;
    }
    for (let k = 0; k < to - from; k++) weights[i * size + k] /= total;
    start[i] = from;
    count[i] = to - from;
  }
  return { start, count, size, weights };
}

/**
 * Resizes `channels`-interleaved float planes of `inW x inH` to `outW x outH`, writing into `out` from
 * `offset`. Rows first (on the input's height), then columns, as PIL does.
 */
export function resample(
  src: Float32Array | Uint8Array,
  inW: number,
  inH: number,
  channels: number,
  outW: number,
  outH: number,
  out: Float32Array,
  offset: number,
): void {
  const rows = inW === outW ? Float32Array.from(src) : resampleRows(src, inW, inH, channels, outW);
  const rowLength = outW * channels;
  if (inH === outH) {
    out.set(rows.subarray(0, outH * rowLength), offset);
    return;
  }
  const v = taps(inH, outH);
  for (let y = 0; y < outH; y++) {
    const first = v.start[y], n = v.count[y], wAt = y * v.size, at = offset + y * rowLength;
    out.fill(0, at, at + rowLength);
    for (let k = 0; k < n; k++) {
      const w = v.weights[wAt + k], from = (first + k) * rowLength;
      for (let i = 0; i < rowLength; i++) out[at + i] += w * rows[from + i];
    }
  }
}

// The horizontal pass, the costly one when shrinking (every input row, about 2s taps per output pixel).
function resampleRows(
  src: Float32Array | Uint8Array,
  inW: number,
  inH: number,
  channels: number,
  outW: number,
): Float32Array {
  const h = taps(inW, outW);
  const rows = new Float32Array(inH * outW * channels);
  for (let y = 0; y < inH; y++) {
    const rowIn = y * inW * channels, rowOut = y * outW * channels;
    for (let x = 0; x < outW; x++) {
      const n = h.count[x], wAt = x * h.size;
      let at = rowIn + h.start[x] * channels;
      if (channels === 3) {
        let r = 0, g = 0, b = 0;
        for (let k = 0; k < n; k++, at += 3) {
          const w = h.weights[wAt + k];
          r += w * src[at];
          g += w * src[at + 1];
          b += w * src[at + 2];
        }
        rows[rowOut + x * 3] = r;
        rows[rowOut + x * 3 + 1] = g;
        rows[rowOut + x * 3 + 2] = b;
      } else {
        let acc = 0;
        for (let k = 0; k < n; k++, at += channels) acc += h.weights[wAt + k] * src[at];
        rows[rowOut + x] = acc;
      }
    }
  }
  return rows;
}
