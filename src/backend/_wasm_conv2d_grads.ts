import * as tf from "@tensorflow/tfjs";
import { convGeometry, type ConvGradAttrs, transposedConv } from "./_wasm_conv_geometry.ts";
import { composed, view, type WasmBackend, type WasmScratch } from "./_wasm_scratch.ts";

/**
 * Conv2DBackpropInput on wasm: `dy` `[N, Ho, Wo, Cout]` and `filter` `[kh, kw, Cin, Cout]` to
 * `dx` `[N, H, W, Cin]` (`attrs.inputShape`), as one XNNPACK Conv2D of the stride-dilated `dy` with the
 * spatially flipped, channel-transposed filter.
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
  return composed(args.backend, (s) => {
    const [kh, kw] = filter.shape;
    const flipped = kh === 1 && kw === 1 ? filter : s.run(tf.Reverse, { x: filter }, { dims: [0, 1] });
    const swapped = s.run(tf.Transpose, { x: flipped }, { perm: [0, 1, 3, 2] });
    return { result: transposedConv(s, tf.Conv2D, dy, swapped, info) };
  });
}

/**
 * Conv2DBackpropFilter on wasm: `x` `[N, H, W, Cin]` and `dy` `[N, Ho, Wo, Cout]` to `dW` `[kh, kw, Cin, Cout]`
 * (`attrs.filterShape`). Each filter tap is one XNNPACK matrix product over the N*Ho*Wo positions: the
 * transposed operand is whichever of `x`/`dy` has fewer channels; 1x1 stride-1 convolutions need no im2col.
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
  const [kh, kw, cin, cout] = filterShape;
  const { strideHeight: sh, strideWidth: sw, outHeight: ho, outWidth: wo, padInfo } = info;
  const m = info.batchSize * ho * wo;
  return composed(args.backend, (s) => {
    const pointwise = kh === 1 && kw === 1 && sh === 1 && sw === 1 && x.shape[1] === ho && x.shape[2] === wo;
    if (pointwise) return { result: tapProduct(s, view(x, [m, cin]), dy, m), shape: filterShape };
    const padded = padInfo.top || padInfo.bottom || padInfo.left || padInfo.right
      ? s.run(tf.PadV2, { x }, {
        paddings: [[0, 0], [padInfo.top, padInfo.bottom], [padInfo.left, padInfo.right], [0, 0]],
        constantValue: 0,
      })
      : x;
    // dy transposed once, shared by every tap: dW[i, j] = dyᵀ · x[:, i::sh, j::sw] is [Cout, Cin].
    const dyT = s.run(tf.Transpose, { x: view(dy, [m, cout]) }, { perm: [1, 0] });
    const taps: tf.TensorInfo[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const patch = s.run(tf.StridedSlice, { x: padded }, {
          begin: [0, i, j, 0],
          end: [info.batchSize, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, cin],
          strides: [1, sh, sw, 1],
          beginMask: 0,
          endMask: 0,
          ellipsisMask: 0,
          newAxisMask: 0,
          shrinkAxisMask: 0,
        });
        taps.push(matmul(s, view(dyT, [cout, m]), view(patch, [m, cin])));
      }
    }
    const stacked = taps.length === 1 ? taps[0] : s.run(tf.Concat, taps, { axis: 0 });
    const dw = s.run(tf.Transpose, { x: view(stacked, [kh * kw, cout, cin]) }, { perm: [0, 2, 1] });
    return { result: dw, shape: filterShape };
  });
}

/** `aᵀ · b` for `a` `[M, Ca]` and `b` `[M, Cb]`, transposing the narrower side: `[Ca, Cb]`. */
function tapProduct(s: WasmScratch, a: tf.TensorInfo, b: tf.TensorInfo, m: number): tf.TensorInfo {
  const ca = a.shape[a.shape.length - 1], cb = b.shape[b.shape.length - 1];
  if (ca <= cb) {
    const aT = s.run(tf.Transpose, { x: view(a, [m, ca]) }, { perm: [1, 0] });
    return matmul(s, aT, view(b, [m, cb]));
  }
  const bT = s.run(tf.Transpose, { x: view(b, [m, cb]) }, { perm: [1, 0] });
  const ba = matmul(s, bT, view(a, [m, ca]));
  return s.run(tf.Transpose, { x: ba }, { perm: [1, 0] });
}

/**
 * `a` `[P, K]` times `b` `[K, Q]`. Untransposed, batch-1 operands are what the wasm BatchMatMul hands to
 * XNNPACK; anything else falls to its scalar loop.
 */
function matmul(s: WasmScratch, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
  const [p, k] = a.shape, q = b.shape[1];
  const out = s.run(tf.BatchMatMul, { a: view(a, [1, p, k]), b: view(b, [1, k, q]) }, {
    transposeA: false,
    transposeB: false,
  });
  return view(out, [p, q]);
}

/** Checks `dy` against the output shape of the forward convolution. */
export function checkDy(kernel: string, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): void {
  const want = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  if (dy.shape.length !== 4 || dy.shape.some((d, i) => d !== want[i])) {
    throw new Error(
      `${kernel} (wasm training): dy must be [${want}] for this convolution, got [${dy.shape}]`,
    );
  }
}
