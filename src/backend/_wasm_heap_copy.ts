import type * as tf from "@tensorflow/tfjs";
import type { WasmBackend } from "./_wasm_scratch.ts";
import { heapMemory } from "./_wasm_simd.ts";

// Data movement the wasm backend does slowly (its StridedSlice and 2-D Transpose compute an index per
// element in C++), done here as plain copies between heap views.

/**
 * A typed-array view of `t`'s data on the wasm heap. Take it after allocating: on the single-threaded build
 * growing the heap detaches earlier views. It is taken from the memory's current buffer, not from the
 * module's `HEAPU8`: on the threaded build the memory is shared, growing it leaves earlier views attached
 * but as short as they were, and the module refreshes `HEAPU8` only when this thread grew it.
 */
export function heap(backend: WasmBackend, t: tf.TensorInfo): tf.TypedArray {
  const buffer = heapMemory(backend).buffer;
  const offset = backend.dataIdMap.get(t.dataId)!.memoryOffset;
  const size = t.shape.reduce((a, b) => a * b, 1);
  switch (t.dtype) {
    case "float32":
      return new Float32Array(buffer, offset, size);
    case "int32":
      return new Int32Array(buffer, offset, size);
    case "bool":
      return new Uint8Array(buffer, offset, size);
    default:
      throw new Error(`wasm training: no heap view for dtype ${t.dtype}`);
  }
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
