import * as tf from "@tensorflow/tfjs";
import { checkDy, convGeometry, type ConvGradAttrs, transposedConv } from "./_wasm_conv_geometry.ts";
import { strideSplit } from "./_wasm_heap_copy.ts";
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
 * `dW[i, j, c]` sums `xpad[n, sh*h + i, sw*w + j, c] * dy[n, h, w, c]` over `n, h, w`. Split into its stride
 * phases (one pass), `xpad`'s stride-`s` window for tap `(i, j)` is a stride-1 window of one phase, and a
 * stride-1 window of an image grid is that grid's flat data shifted by `(u*wq + v)*C`, once `dy` is
 * zero-padded to the same grid (positions a shift wraps around to then meet zeros). So each tap is one
 * XNNPACK multiply of two heap aliases and one XNNPACK average pooling: no gathers per tap.
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
  // The phase grid: every output position plus the farthest shift a tap needs.
  const hq = ho + Math.floor((kh - 1) / sh), wq = wo + Math.floor((kw - 1) / sw);
  const phaseSize = (n + 1) * hq * wq * c;
  return composed(args.backend, (s) => {
    // Stride 1 has one phase, the padded input itself (plus the zero image): XNNPACK pads faster than a copy.
    const [top, left] = [padInfo.top, padInfo.left];
    const phases = sh === 1 && sw === 1
      ? s.run(tf.PadV2, { x }, {
        paddings: [[0, 1], [top, hq - h - top], [left, wq - w - left], [0, 0]],
        constantValue: 0,
      })
      : s.own(strideSplit(s.backend, x, sh, sw, top, left, hq, wq));
    const dyOnGrid = hq === ho && wq === wo ? dy : s.run(tf.PadV2, { x: dy }, {
      paddings: [[0, 0], [0, hq - ho], [0, wq - wo], [0, 0]],
      constantValue: 0,
    });
    const grid = [1, n * hq, wq, c];
    const means: tf.TensorInfo[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const phase = (i % sh) * sw + (j % sw);
        const shift = (Math.floor(i / sh) * wq + Math.floor(j / sw)) * c;
        const window = s.alias(phases, phase * phaseSize + shift, grid);
        const product = s.run(tf.Multiply, { a: window, b: view(dyOnGrid, grid) });
        means.push(
          s.run(tf.AvgPool, { x: product }, { filterSize: [n * hq, wq], strides: [1, 1], pad: "valid" }),
        );
      }
    }
    const stacked = means.length === 1 ? means[0] : s.run(tf.Concat, means, { axis: 0 });
    const dw = s.run(tf.Multiply, { a: view(stacked, [kh * kw, c]), b: s.scalar(n * hq * wq) });
    return { result: dw, shape: filterShape };
  });
}
