import * as tf from "@tensorflow/tfjs";
import { composed, view, type WasmBackend } from "./_wasm_scratch.ts";

type ReduceArgs = {
  inputs: { x: tf.TensorInfo };
  backend: WasmBackend;
  attrs: { axis: number | number[]; keepDims: boolean };
};

/**
 * Sum or Mean on wasm over the leading axes of a float32 tensor (what batch-norm statistics and their
 * gradients reduce: `[N, H, W, C]` over `[0, 1, 2]`). The stock kernels first transpose the reduced axes
 * innermost, element by element, which costs far more than the sum.
 *
 * Here XNNPACK average pooling sums blocks of `p` rows, `p` the largest power of two dividing the number of
 * rows: scaling by `1/p` and back by `p` is exact, so integer-valued sums (counts) stay exact. `stockSum`
 * then adds the few block sums; Mean divides by the row count, as the stock kernel does. Anything else
 * (other axes, other dtypes, an odd row count) goes to `fallback`, the stock kernel being replaced.
 */
export function leadingAxesReduction(
  kind: "Sum" | "Mean",
  fallback: tf.KernelFunc,
  stockSum: tf.KernelFunc,
): tf.KernelFunc {
  return ((args: ReduceArgs) => {
    const { x } = args.inputs;
    const axes = tf.util.parseAxisParam(args.attrs.axis, x.shape).sort((a, b) => a - b);
    const k = axes.length;
    const rows = tf.util.sizeFromShape(x.shape.slice(0, k));
    const block = rows & -rows; // the largest power of two dividing rows
    if (x.dtype !== "float32" || k === 0 || axes.some((a, i) => a !== i) || rows === 0 || block < 2) {
      return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const rest = tf.util.sizeFromShape(x.shape.slice(k));
    const shape = args.attrs.keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k);
    return composed(args.backend, (s) => {
      // Each block as one square-ish image of the batch, pooled whole (a long 1-D window pools slower).
      const height = 2 ** Math.floor(Math.log2(block) / 2);
      const blockMeans = s.run(tf.AvgPool, { x: view(x, [rows / block, height, block / height, rest]) }, {
        filterSize: [height, block / height],
        strides: [1, 1],
        pad: "valid",
      });
      const sumOfBlockMeans = rows === block ? blockMeans : s.own(
        stockSum({
          inputs: { x: view(blockMeans, [rows / block, rest]) },
          backend: s.backend,
          attrs: { axis: 0, keepDims: false },
        }) as tf.TensorInfo,
      );
      const sum = s.run(tf.Multiply, { a: sumOfBlockMeans, b: s.scalar(block) });
      const result = kind === "Sum" ? sum : s.run(tf.RealDiv, { a: sum, b: s.scalar(rows) });
      return { result, shape };
    });
  }) as unknown as tf.KernelFunc;
}
