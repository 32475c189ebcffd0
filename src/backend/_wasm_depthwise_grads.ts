import * as tf from "@tensorflow/tfjs";
import { checkDy } from "./_wasm_conv2d_grads.ts";
import { convGeometry, type ConvGradAttrs, transposedConv } from "./_wasm_conv_geometry.ts";
import { composed, view, type WasmBackend } from "./_wasm_scratch.ts";

/**
 * DepthwiseConv2dNativeBackpropInput on wasm: `dy` `[N, Ho, Wo, C]` and `filter` `[kh, kw, C, 1]` to
 * `dx` `[N, H, W, C]` (`attrs.inputShape`), as one XNNPACK depthwise convolution of the stride-dilated `dy`
 * with the spatially flipped filter.
 */
export function depthwiseBackpropInput(
  args: {
    inputs: { dy: tf.TensorInfo; filter: tf.TensorInfo };
    backend: WasmBackend;
    attrs: ConvGradAttrs & { inputShape: number[] };
  },
): tf.TensorInfo {
  const { dy, filter } = args.inputs;
  const kernel = "DepthwiseConv2dNativeBackpropInput";
  const info = convGeometry(kernel, args.attrs.inputShape, filter.shape, args.attrs, true);
  checkDy(kernel, dy, info);
  return composed(args.backend, (s) => {
    const [kh, kw] = filter.shape;
    const flipped = kh === 1 && kw === 1 ? filter : s.run(tf.Reverse, { x: filter }, { dims: [0, 1] });
    return { result: transposedConv(s, tf.DepthwiseConv2dNative, dy, flipped, info) };
  });
}

/**
 * DepthwiseConv2dNativeBackpropFilter on wasm: `x` `[N, H, W, C]` and `dy` `[N, Ho, Wo, C]` to
 * `dW` `[kh, kw, C, 1]` (`attrs.filterShape`).
 *
 * `dW[i, j, c]` sums `xpad[n, sh*h + i, sw*w + j, c] * dy[n, h, w, c]`. With `dy` spread onto the padded
 * input's grid (`dy[n, h, w]` at `[n, sh*h, sw*w]`, zeros between), tap `(i, j)` is the grid's flat array
 * against `xpad`'s shifted by `(i*Wg + j)*C` elements: rows that wrap around meet zeros in the spread `dy`.
 * So each tap is one XNNPACK multiply of two heap aliases and one XNNPACK average pooling over the grid;
 * nothing is gathered or transposed.
 */
export function depthwiseBackpropFilter(
  args: {
    inputs: { x: tf.TensorInfo; dy: tf.TensorInfo };
    backend: WasmBackend;
    attrs: ConvGradAttrs & { filterShape: number[] };
  },
): tf.TensorInfo {
  const { x, dy } = args.inputs;
  const kernel = "DepthwiseConv2dNativeBackpropFilter";
  const filterShape = args.attrs.filterShape;
  const info = convGeometry(kernel, x.shape, filterShape, args.attrs, true);
  checkDy(kernel, dy, info);
  const [kh, kw, c] = filterShape;
  const [n, h, w] = x.shape;
  const { strideHeight: sh, strideWidth: sw, outHeight: ho, outWidth: wo, padInfo } = info;
  // The grid: the padded input, rounded up to whole strides.
  const hg = Math.ceil((h + padInfo.top + padInfo.bottom) / sh) * sh;
  const wg = Math.ceil((w + padInfo.left + padInfo.right) / sw) * sw;
  const gridSize = n * hg * wg * c;
  return composed(args.backend, (s) => {
    // One zero image past the end, so that every shifted window stays inside the allocation.
    const padded = s.run(tf.PadV2, { x }, {
      paddings: [[0, 1], [padInfo.top, hg - h - padInfo.top], [padInfo.left, wg - w - padInfo.left], [0, 0]],
      constantValue: 0,
    });
    const spread = s.run(tf.PadV2, { x: view(dy, [n, ho, 1, wo, 1, c]) }, {
      paddings: [[0, 0], [0, hg / sh - ho], [0, sh - 1], [0, wg / sw - wo], [0, sw - 1], [0, 0]],
      constantValue: 0,
    });
    const grid = [1, n * hg, wg, c];
    const means: tf.TensorInfo[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const shifted = s.alias(padded, (i * wg + j) * c, grid);
        const product = s.run(tf.Multiply, { a: shifted, b: view(spread, grid) });
        means.push(
          s.run(tf.AvgPool, { x: product }, { filterSize: [n * hg, wg], strides: [1, 1], pad: "valid" }),
        );
      }
    }
    const stacked = means.length === 1 ? means[0] : s.run(tf.Concat, means, { axis: 0 });
    const dw = s.run(tf.Multiply, { a: view(stacked, [kh * kw, c]), b: s.scalar(gridSize / c) });
    return { result: dw, shape: filterShape };
  });
}
