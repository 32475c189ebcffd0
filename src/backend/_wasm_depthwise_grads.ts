import * as tf from "@tensorflow/tfjs";
import { checkDy, convGeometry, type ConvGradAttrs, transposedConv } from "./_wasm_conv_geometry.ts";
import { composed, type WasmBackend } from "./_wasm_scratch.ts";
import { convolutionGradient } from "./_wasm_simd.ts";

/**
 * DepthwiseConv2dNativeBackpropInput on wasm: `dy` `[N, Ho, Wo, C]` and `filter` `[kh, kw, C, 1]` to
 * `dx` `[N, H, W, C]` (`attrs.inputShape`). Stride 1: one XNNPACK depthwise convolution of `dy` with the
 * spatially flipped filter. Larger strides: a WebAssembly SIMD loop (./simd/training_kernels.c) that gathers
 * at each input position only the taps that reach it, where the convolution of a stride-dilated `dy` would
 * spend three quarters of its work (stride 2) on zeros.
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
  if (info.strideHeight > 1 || info.strideWidth > 1) {
    return convolutionGradient(args.backend, "depthwise_input_grad", dy, filter, args.attrs.inputShape, info);
  }
  return composed(args.backend, (s) => {
    const [kh, kw] = filter.shape;
    const flipped = kh === 1 && kw === 1 ? filter : s.run(tf.Reverse, { x: filter }, { dims: [0, 1] });
    return { result: transposedConv(s, tf.DepthwiseConv2dNative, dy, flipped, info) };
  });
}

/**
 * DepthwiseConv2dNativeBackpropFilter on wasm: `x` `[N, H, W, C]` and `dy` `[N, Ho, Wo, C]` to
 * `dW` `[kh, kw, C, 1]` (`attrs.filterShape`): `dW[i, j, c]` sums `x[n, sh*h + i - top, sw*w + j - left, c] *
 * dy[n, h, w, c]` over the positions whose input is inside `x`, one WebAssembly SIMD loop per tap
 * (./simd/training_kernels.c).
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
  return convolutionGradient(args.backend, "depthwise_filter_grad", x, dy, filterShape, info);
}
