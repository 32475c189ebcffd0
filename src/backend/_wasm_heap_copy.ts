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
