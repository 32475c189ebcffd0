import * as tf from "@tensorflow/tfjs";
import { composed, view, type WasmBackend } from "./_wasm_scratch.ts";

type ReduceArgs = {
  inputs: { x: tf.TensorInfo };
  backend: WasmBackend;
  attrs: { axis: number | number[]; keepDims: boolean };
};

/**
 * Sum or Mean on wasm over the leading axes of a float32 tensor (what batch-norm statistics and their
 * gradients reduce: `[N, H, W, C]` over `[0, 1, 2]`), as one XNNPACK average pooling of the tensor seen as
 * `[1, rows, cols, rest]`. The stock kernels first transpose the reduced axes innermost, element by element.
 * Anything else goes to `fallback`, the stock kernel.
 */
export function leadingAxesReduction(kind: "Sum" | "Mean", fallback: tf.KernelFunc): tf.KernelFunc {
  return ((args: ReduceArgs) => {
    const { x } = args.inputs;
    const axes = tf.util.parseAxisParam(args.attrs.axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.every((a, i) => a === i);
    const size = tf.util.sizeFromShape(x.shape);
    if (x.dtype !== "float32" || !leading || size === 0) {
      return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const k = axes.length;
    const cols = x.shape[k - 1];
    const rows = tf.util.sizeFromShape(x.shape.slice(0, k - 1));
    const rest = tf.util.sizeFromShape(x.shape.slice(k));
    const shape = args.attrs.keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k);
    return composed(args.backend, (s) => {
      const mean = s.run(tf.AvgPool, { x: view(x, [1, rows, cols, rest]) }, {
        filterSize: [rows, cols],
        strides: [1, 1],
        pad: "valid",
      });
      const result = kind === "Mean" ? mean : s.run(tf.Multiply, { a: mean, b: s.scalar(rows * cols) });
      return { result, shape };
    });
  }) as unknown as tf.KernelFunc;
}
