import * as tf from "@tensorflow/tfjs";
import { heap } from "./_wasm_heap_copy.ts";
import type { WasmBackend } from "./_wasm_scratch.ts";

/**
 * Slice on wasm as block copies: the innermost run the slice keeps whole is copied with one `set`. The stock
 * kernel first copies the entire input out of the heap. Strings go to `fallback`.
 */
export function blockSlice(fallback: tf.KernelFunc): tf.KernelFunc {
  return ((
    args: {
      inputs: { x: tf.TensorInfo };
      backend: WasmBackend;
      attrs: { begin: number | number[]; size: number | number[] };
    },
  ) => {
    const { x } = args.inputs;
    if (x.dtype === "string" || x.dtype === "complex64" || x.shape.length === 0) {
      return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, args.attrs.begin, args.attrs.size);
    tf.slice_util.assertParamsValid(x as tf.Tensor, begin, size);
    const out = args.backend.makeOutput(size, x.dtype);
    if (tf.util.sizeFromShape(size) === 0) return out;
    const src = heap(args.backend, x), dst = heap(args.backend, out);
    const rank = x.shape.length;
    // Axes after `inner` are kept whole, so each run along `inner` and below is contiguous in both.
    let inner = rank - 1;
    while (inner > 0 && size[inner] === x.shape[inner]) inner--;
    const strides = [...tf.util.computeStrides(x.shape), 1];
    const run = size[inner] * strides[inner];
    const copy = (axis: number, from: number, to: number): number => {
      if (axis === inner) {
        dst.set(src.subarray(from, from + run), to);
        return to + run;
      }
      for (let i = 0; i < size[axis]; i++) to = copy(axis + 1, from + i * strides[axis], to);
      return to;
    };
    copy(0, begin.reduce((o, b, i) => o + b * strides[i], 0), 0);
    return out;
  }) as unknown as tf.KernelFunc;
}
