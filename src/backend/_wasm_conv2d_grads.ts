import * as tf from "@tensorflow/tfjs";
import { checkDy, convGeometry, type ConvGradAttrs, transposedConv } from "./_wasm_conv_geometry.ts";
import { heap, interleavePhases } from "./_wasm_heap_copy.ts";
import { composed, type WasmBackend } from "./_wasm_scratch.ts";
import { convolutionGradient } from "./_wasm_simd.ts";

/**
 * Conv2DBackpropInput on wasm: `dy` `[N, Ho, Wo, Cout]` and `filter` `[kh, kw, Cin, Cout]` to
 * `dx` `[N, H, W, Cin]` (`attrs.inputShape`), as one XNNPACK Conv2D.
 *
 * Stride 1: a correlation of `dy` with the spatially flipped, channel-transposed filter. Stride `s`: the
 * sub-pixel form of the transposed convolution, which never multiplies the zeros a stride-dilated `dy`
 * would have. Input row `s*P + a` only meets filter rows `a, a + s, ...`, so one stride-1 convolution of `dy`
 * with a `ceil(kh/s)`-tall filter whose `s*s*Cin` output channels are the phases `(a, b)` computes every
 * phase at once; the phases are then interleaved into `dx` (and the forward padding cropped) in one pass.
 */
export function conv2dBackpropInput(
  args: {
    inputs: { dy: tf.TensorInfo; filter: tf.TensorInfo };
    backend: WasmBackend;
    attrs: ConvGradAttrs & { inputShape: number[] };
  },
): tf.TensorInfo {
  const { dy, filter } = args.inputs;
  const info = convGeometry("Conv2DBackpropInput", args.attrs.inputShape, filter.shape, args.attrs, false);
  checkDy("Conv2DBackpropInput", dy, info);
  const { strideHeight: sh, strideWidth: sw } = info;
  return composed(args.backend, (s) => {
    if (sh === 1 && sw === 1) {
      const [kh, kw] = filter.shape;
      const flipped = kh === 1 && kw === 1 ? filter : s.run(tf.Reverse, { x: filter }, { dims: [0, 1] });
      const swapped = s.run(tf.Transpose, { x: flipped }, { perm: [0, 1, 3, 2] });
      return { result: transposedConv(s, tf.Conv2D, dy, swapped, info) };
    }
    const { padInfo, inHeight: h, inWidth: w, outHeight: ho, outWidth: wo } = info;
    const hq = Math.ceil((padInfo.top + h) / sh), wq = Math.ceil((padInfo.left + w) / sw);
    const phaseFilter = s.own(subPixelFilter(s.backend, filter, sh, sw));
    const [kqh, kqw] = phaseFilter.shape;
    // dy rows past hq only reach the forward padding below the input: drop them.
    const used = ho > hq || wo > wq
      ? s.run(tf.Slice, { x: dy }, {
        begin: [0, 0, 0, 0],
        size: [info.batchSize, Math.min(ho, hq), Math.min(wo, wq), info.outChannels],
      })
      : dy;
    const phases = s.run(tf.Conv2D, { x: used, filter: phaseFilter }, {
      strides: [1, 1],
      pad: [[0, 0], [kqh - 1, hq - used.shape[1]], [kqw - 1, wq - used.shape[2]], [0, 0]],
      dilations: [1, 1],
      dataFormat: "NHWC",
    });
    return { result: s.own(interleavePhases(s.backend, phases, sh, sw, padInfo.top, padInfo.left, h, w)) };
  });
}

/**
 * The sub-pixel filter of a stride-`(sh, sw)` transposed convolution: `[kqh, kqw, Cout, sh*sw*Cin]` with
 * `kqh = ceil(kh/sh)`, where output channel `(a*sw + b)*Cin + ci` at `(r, t)` holds
 * `filter[sh*(kqh-1-r) + a, sw*(kqw-1-t) + b, ci, co]` (zero past the filter's edge).
 */
function subPixelFilter(backend: WasmBackend, filter: tf.TensorInfo, sh: number, sw: number): tf.TensorInfo {
  const [kh, kw, cin, cout] = filter.shape;
  const kqh = Math.ceil(kh / sh), kqw = Math.ceil(kw / sw);
  const depth = sh * sw * cin;
  const values = new Float32Array(kqh * kqw * cout * depth);
  const src = heap(backend, filter);
  for (let r = 0; r < kqh; r++) {
    for (let t = 0; t < kqw; t++) {
      for (let a = 0; a < sh; a++) {
        const i = sh * (kqh - 1 - r) + a;
        if (i >= kh) continue;
        for (let b = 0; b < sw; b++) {
          const j = sw * (kqw - 1 - t) + b;
          if (j >= kw) continue;
          for (let ci = 0; ci < cin; ci++) {
            for (let co = 0; co < cout; co++) {
              values[((r * kqw + t) * cout + co) * depth + (a * sw + b) * cin + ci] =
                src[((i * kw + j) * cin + ci) * cout + co];
            }
          }
        }
      }
    }
  }
  return backend.makeOutput([kqh, kqw, cout, depth], "float32", undefined, values);
}

/**
 * Conv2DBackpropFilter on wasm: `x` `[N, H, W, Cin]` and `dy` `[N, Ho, Wo, Cout]` to `dW` `[kh, kw, Cin, Cout]`
 * (`attrs.filterShape`). Each tap's `dW[i, j]` sums the outer products of the tap's input channels with `dy`
 * over the output positions whose input is inside `x`, in a WebAssembly SIMD loop that keeps a 4 x 8 block
 * of `dW` in registers (./simd/training_kernels.c): no im2col copy, no transpose, no packing.
 */
export function conv2dBackpropFilter(
  args: {
    inputs: { x: tf.TensorInfo; dy: tf.TensorInfo };
    backend: WasmBackend;
    attrs: ConvGradAttrs & { filterShape: number[] };
  },
): tf.TensorInfo {
  const { x, dy } = args.inputs;
  const filterShape = args.attrs.filterShape;
  const info = convGeometry("Conv2DBackpropFilter", x.shape, filterShape, args.attrs, false);
  checkDy("Conv2DBackpropFilter", dy, info);
  return convolutionGradient(args.backend, "conv2d_filter_grad", x, dy, filterShape, info);
}
