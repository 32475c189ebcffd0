// Separable resampling with a triangle filter whose support widens with the shrink factor: PIL's
// `Image.resize(..., BILINEAR)` and torchvision's `resize(..., antialias=True)`. When shrinking by s, each
// output pixel averages about 2s input pixels per axis (an area average with soft edges) instead of the
// 2 that plain bilinear interpolation samples, so detail finer than the output grid is averaged out
// rather than aliased. When enlarging it is ordinary bilinear interpolation with half-pixel centres.

/** For each output index, the first input index it reads and its normalised weights. */
interface Taps {
  start: Int32Array;
  /** Taps per output index (the longest window; shorter ones are padded with zero weights). */
  size: number;
  weights: Float32Array;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const support = Math.max(scale, 1);
  const size = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const weights = new Float32Array(outSize * size);
  for (let i = 0; i < outSize; i++) {
    const centre = (i + 0.5) * scale;
    const from = Math.max(Math.floor(centre - support + 0.5), 0);
    const to = Math.min(Math.floor(centre + support + 0.5), inSize);
    let total = 0;
    for (let x = from; x < to && x - from < size; x++) {
      const w = Math.max(0, 1 - Math.abs((x + 0.5 - centre) / support));
      weights[i * size + x - from] = w;
      total += w;
    }
    if (total > 0) { for (let k = 0; k < size; k++) weights[i * size + k] /= total; }
    start[i] = from;
  }
  return { start, size, weights };
}

/**
 * Resizes `channels`-interleaved float planes of `inW x inH` to `outW x outH`, writing into `out` from
 * `offset`. Rows first (on the input's height), then columns, as PIL does.
 */
export function resample(
  src: Float32Array,
  inW: number,
  inH: number,
  channels: number,
  outW: number,
  outH: number,
  out: Float32Array,
  offset: number,
): void {
  const h = inW === outW ? undefined : taps(inW, outW);
  let rows = src;
  if (h) {
    rows = new Float32Array(inH * outW * channels);
    for (let y = 0; y < inH; y++) {
      const rowIn = y * inW * channels, rowOut = y * outW * channels;
      for (let x = 0; x < outW; x++) {
        const first = h.start[x], wAt = x * h.size;
        for (let c = 0; c < channels; c++) {
          let acc = 0;
          for (let k = 0; k < h.size; k++) {
            const w = h.weights[wAt + k];
            if (w !== 0) acc += w * src[rowIn + (first + k) * channels + c];
          }
          rows[rowOut + x * channels + c] = acc;
        }
      }
    }
  }
  const rowLength = outW * channels;
  if (inH === outH) {
    out.set(rows.subarray(0, outH * rowLength), offset);
    return;
  }
  const v = taps(inH, outH);
  for (let y = 0; y < outH; y++) {
    const first = v.start[y], wAt = y * v.size, at = offset + y * rowLength;
    out.fill(0, at, at + rowLength);
    for (let k = 0; k < v.size; k++) {
      const w = v.weights[wAt + k];
      if (w === 0) continue;
      const from = (first + k) * rowLength;
      for (let i = 0; i < rowLength; i++) out[at + i] += w * rows[from + i];
    }
  }
}
