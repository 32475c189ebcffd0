import * as tf from "@tensorflow/tfjs";
import { heap } from "./_wasm_heap_copy.ts";
import type { WasmBackend } from "./_wasm_scratch.ts";

/**
 * Tile on wasm by block copies within the heap: each axis's block is written once and then doubled in place
 * (`copyWithin`), so `[1, 1, 1, C]` tiled to `[N, H, W, C]` (batch-norm gradients) costs one memcpy of the
 * output. The stock kernel computes every output element's source index in C++. Strings go to `fallback`.
 */
export function blockTile(fallback: tf.KernelFunc): tf.KernelFunc {
  return ((args: { inputs: { x: tf.TensorInfo }; backend: WasmBackend; attrs: { reps: number[] } }) => {
    const { x } = args.inputs;
    const reps = args.attrs.reps;
    if (x.dtype === "string" || x.dtype === "complex64" || reps.length !== x.shape.length) {
      return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const backend = args.backend;
    const outShape = x.shape.map((d, i) => d * reps[i]);
    const out = backend.makeOutput(outShape, x.dtype);
    if (tf.util.sizeFromShape(outShape) === 0) return out;
    // Views only after allocating: growing the heap detaches earlier ones.
    const src = heap(backend, x);
    const dst = heap(backend, out);
    if (x.shape.length === 0) {
      dst[0] = src[0];
      return out;
    }
    const inStrides = [...tf.util.computeStrides(x.shape), 1];
    const outStrides = [...tf.util.computeStrides(outShape), 1];
    const fill = (axis: number, from: number, to: number) => {
      const d = x.shape[axis];
      if (axis === x.shape.length - 1) dst.set(src.subarray(from, from + d), to);
      else for (let i = 0; i < d; i++) fill(axis + 1, from + i * inStrides[axis], to + i * outStrides[axis]);
      // The axis's block is in place; double it until it fills reps[axis] copies.
      const block = d * outStrides[axis];
      const total = block * reps[axis];
      for (let done = block; done < total; done *= 2) {
        dst.copyWithin(to + done, to, to + Math.min(done, total - done));
      }
    };
    fill(0, 0, 0);
    return out;
  }) as unknown as tf.KernelFunc;
}
