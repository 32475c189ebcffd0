import type * as tf from "@tensorflow/tfjs";
import type { WasmBackend } from "./_wasm_scratch.ts";

// Data movement the wasm backend does slowly (its StridedSlice and 2-D Transpose compute an index per
// element in C++), done here as plain copies between heap views.

type HeapBackend = WasmBackend & { typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray };

/** A typed-array view of `t`'s data on the wasm heap; take it after allocating, as growth detaches views. */
export function heap(backend: WasmBackend, t: tf.TensorInfo): tf.TypedArray {
  return (backend as HeapBackend).typedArrayFromHeap(t);
}

/**
 * One filter tap's im2col patch of `x` `[N, H, W, C]`: `x[n, top + sh*h, left + sw*w, c]` for `h < ho`,
 * `w < wo`, zero where that falls outside `x` (the convolution's padding), written channel-major as
 * `[C, N*ho*wo]`: the left operand of a matrix product over output positions.
 */
export function channelMajorWindow(
  backend: WasmBackend,
  x: tf.TensorInfo,
  top: number,
  left: number,
  sh: number,
  sw: number,
  ho: number,
  wo: number,
): tf.TensorInfo {
  const [n, hx, wx, c] = x.shape;
  const m = n * ho * wo;
  const out = backend.makeOutput([c, m], "float32");
  // Views only after allocating: growing the heap detaches earlier ones.
  const src = heap(backend, x), dst = heap(backend, out);
  const rowStride = wx * c, imageStride = hx * rowStride;
  let p = 0;
  for (let b = 0; b < n; b++) {
    for (let h = 0; h < ho; h++) {
      const row = top + h * sh;
      for (let w = 0; w < wo; w++, p++) {
        const col = left + w * sw;
        if (row < 0 || row >= hx || col < 0 || col >= wx) {
          for (let k = 0, d = p; k < c; k++, d += m) dst[d] = 0;
          continue;
        }
        const s = b * imageStride + row * rowStride + col * c;
        for (let k = 0, d = p; k < c; k++, d += m) dst[d] = src[s + k];
      }
    }
  }
  return out;
}

/** `x` `[R, C]` transposed to `[C, R]`, one output row at a time (sequential writes). */
export function transpose2d(backend: WasmBackend, x: tf.TensorInfo): tf.TensorInfo {
  const [r, c] = x.shape;
  const out = backend.makeOutput([c, r], x.dtype);
  const src = heap(backend, x), dst = heap(backend, out);
  for (let j = 0, d = 0; j < c; j++) {
    for (let i = 0, s = j; i < r; i++, s += c) dst[d++] = src[s];
  }
  return out;
}

/**
 * Undoes a sub-pixel split: `phases` `[N, Hq, Wq, sh*sw*C]` holds, at channel `(a*sw + b)*C + c` of
 * position `(P, Q)`, the value of a padded image at `(sh*P + a, sw*Q + b, c)`. Returns that image cropped
 * to rows `top..top+h-1` and columns `left..left+w-1`: `[N, h, w, C]`.
 */
export function interleavePhases(
  backend: WasmBackend,
  phases: tf.TensorInfo,
  sh: number,
  sw: number,
  top: number,
  left: number,
  h: number,
  w: number,
): tf.TensorInfo {
  const [n, hq, wq, depth] = phases.shape;
  const c = depth / (sh * sw);
  const out = backend.makeOutput([n, h, w, c], "float32");
  const src = heap(backend, phases), dst = heap(backend, out);
  let d = 0;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      const p = y + top, row = (b * hq + Math.floor(p / sh)) * wq, phaseRow = (p % sh) * sw;
      for (let x = 0; x < w; x++) {
        const q = x + left;
        let s = (row + Math.floor(q / sw)) * depth + (phaseRow + (q % sw)) * c;
        for (let k = 0; k < c; k++) dst[d++] = src[s++];
      }
    }
  }
  return out;
}

/**
 * The stride phases of a zero-padded `x` `[N, H, W, C]`: `[sh*sw, N + 1, hq, wq, C]` where phase
 * `a*sw + b`, image `n`, position `(P, Q)` holds `x[n, sh*P + a - top, sw*Q + b - left]` (zero outside `x`),
 * and each phase ends with an all-zero image. A stride-`s` window of `x` is then a stride-1 window of one
 * phase, which is a shifted run of its flat data; the zero image keeps shifted runs inside the phase.
 */
export function strideSplit(
  backend: WasmBackend,
  x: tf.TensorInfo,
  sh: number,
  sw: number,
  top: number,
  left: number,
  hq: number,
  wq: number,
): tf.TensorInfo {
  const [n, h, w, c] = x.shape;
  const out = backend.makeOutput([sh * sw, n + 1, hq, wq, c], "float32");
  const src = heap(backend, x), dst = heap(backend, out);
  const phaseSize = (n + 1) * hq * wq * c;
  for (let a = 0; a < sh; a++) {
    for (let b = 0; b < sw; b++) {
      let d = (a * sw + b) * phaseSize;
      for (let img = 0; img < n; img++) {
        for (let p = 0; p < hq; p++) {
          const row = sh * p + a - top;
          if (row < 0 || row >= h) {
            dst.fill(0, d, d + wq * c);
            d += wq * c;
            continue;
          }
          const rowStart = (img * h + row) * w * c;
          for (let q = 0; q < wq; q++) {
            const col = sw * q + b - left;
            if (col < 0 || col >= w) {
              for (let k = 0; k < c; k++) dst[d++] = 0;
              continue;
            }
            for (let k = 0, s = rowStart + col * c; k < c; k++) dst[d++] = src[s++];
          }
        }
      }
      dst.fill(0, d, d + hq * wq * c);
    }
  }
  return out;
}
