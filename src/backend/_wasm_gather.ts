import * as tf from "@tensorflow/tfjs";
import { heap } from "./_wasm_heap_copy.ts";
import type { WasmBackend } from "./_wasm_scratch.ts";

/**
 * GatherV2 on wasm (no batch dimensions) as block copies: each index's slice along the axis is one contiguous
 * run per outer position, copied with one `set`. The stock kernel computes every element's source index in
 * C++, one element at a time, and every adaptation step gathers its batch of images. Indices out of range
 * throw as the stock kernel does; batch dimensions and other dtypes go to `fallback`.
 */
export function blockGather(fallback: tf.KernelFunc): tf.KernelFunc {
  return ((
    args: {
      inputs: { x: tf.TensorInfo; indices: tf.TensorInfo };
      backend: WasmBackend;
      attrs: { axis: number; batchDims: number };
    },
  ) => {
    const { x, indices } = args.inputs;
    const fourBytes = x.dtype === "float32" || x.dtype === "int32";
    if (
      !fourBytes || indices.dtype !== "int32" || (args.attrs.batchDims ?? 0) !== 0 || x.shape.length === 0
    ) {
      return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const axis = tf.util.parseAxisParam(args.attrs.axis, x.shape)[0];
    const axisSize = x.shape[axis];
    const outer = tf.util.sizeFromShape(x.shape.slice(0, axis));
    const inner = tf.util.sizeFromShape(x.shape.slice(axis + 1));
    const picks = Array.from(heap(args.backend, indices));
    for (const index of picks) {
      tf.util.assert(
        index >= 0 && index <= axisSize - 1,
        () => `GatherV2: the index value ${index} is not in [0, ${axisSize - 1}]`,
      );
    }
    const shape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
    const out = args.backend.makeOutput(shape, x.dtype);
    if (tf.util.sizeFromShape(shape) === 0) return out;
    const src = heap(args.backend, x), dst = heap(args.backend, out);
    let to = 0;
    for (let o = 0; o < outer; o++) {
      for (const index of picks) {
        const from = (o * axisSize + index) * inner;
        dst.set(src.subarray(from, from + inner), to);
        to += inner;
      }
    }
    return out;
  }) as unknown as tf.KernelFunc;
}
