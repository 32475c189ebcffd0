import * as tf from "@tensorflow/tfjs";
import { dispatch, elementwiseGroups, output, type WebGPUBackend } from "./_webgpu_dispatch.ts";

// tfjs-backend-webgpu's depthwise input gradient walks every filter tap of every input element with float
// division and fract() to find the taps that reach it, one channel per invocation; its filter gradient has
// one invocation per filter weight, each summing over every output position of the batch (a few hundred
// invocations each summing tens of thousands of products). In a MobileNetV2 training step on the software
// adapter they were among the costliest kernels. Here an invocation takes four channels as vec4 loads: the
// input gradient finds the reaching taps with integer arithmetic; the filter gradient sums one tap's
// products over a chunk of the output rows, and a second dispatch adds the chunks.

type InputArgs = {
  inputs: { dy: tf.TensorInfo; filter: tf.TensorInfo };
  backend: WebGPUBackend;
  attrs: tf.DepthwiseConv2dNativeBackpropInputAttrs;
};

// The strides are constants of the shader (one pipeline per stride pair): with stride 1 the divisibility
// tests and divisions vanish, with stride 2 they are shifts.
function inputGradShader(strideH: number, strideW: number): string {
  return `
const SH = ${strideH};
const SW = ${strideW};
struct U { n: u32, inH: i32, inW: i32, outH: i32, outW: i32, c4: i32, kH: i32, kW: i32, padTop: i32,
  padLeft: i32 }
@group(0) @binding(0) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dx: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  for (var i = id.x; i < u.n; i = i + groups.x * 256u) {
    let k = i32(i);
    let c = k % u.c4;
    let pos = k / u.c4;
    let ix = pos % u.inW;
    let iy = (pos / u.inW) % u.inH;
    let b = pos / (u.inW * u.inH);
    var acc = vec4<f32>(0.0);
    for (var kh = 0; kh < u.kH; kh = kh + 1) {
      let ty = iy + u.padTop - kh;
      if (ty < 0 || ty % SH != 0) { continue; }
      let oy = ty / SH;
      if (oy >= u.outH) { continue; }
      for (var kw = 0; kw < u.kW; kw = kw + 1) {
        let tx = ix + u.padLeft - kw;
        if (tx < 0 || tx % SW != 0) { continue; }
        let ox = tx / SW;
        if (ox >= u.outW) { continue; }
        acc = acc + dy[((b * u.outH + oy) * u.outW + ox) * u.c4 + c] * w[(kh * u.kW + kw) * u.c4 + c];
      }
    }
    dx[i] = acc;
  }
}`;
}

// With stride 1 the input gradient is the forward depthwise convolution of dy with the filter turned by 180
// degrees, padded by what the forward padding leaves of the window: the backend's own forward kernel, whose
// vec4 program keeps a row of inputs and the filter in registers, does it several times faster than any
// per-element gather. Undefined when that kernel is missing.
function strideOneInputGradient(
  args: InputArgs,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo | undefined {
  const reverse = tf.getKernel(tf.Reverse, "webgpu"),
    forward = tf.getKernel(tf.DepthwiseConv2dNative, "webgpu");
  if (!reverse || !forward) return undefined;
  const { dy, filter } = args.inputs;
  const { backend } = args;
  const turned = reverse.kernelFunc({
    inputs: { x: filter },
    backend,
    attrs: { dims: [0, 1] },
  }) as tf.TensorInfo;
  const { top, bottom, left, right } = info.padInfo;
  const [kH, kW] = filter.shape;
  const dx = forward.kernelFunc({
    inputs: { x: dy, filter: turned },
    backend,
    attrs: {
      strides: [1, 1],
      pad: [[0, 0], [kH - 1 - top, kH - 1 - bottom], [kW - 1 - left, kW - 1 - right], [0, 0]],
      dilations: [1, 1],
      dataFormat: "NHWC",
    } as unknown as tf.NamedAttrMap,
  }) as tf.TensorInfo;
  backend.disposeData(turned.dataId);
  return dx;
}

/**
 * DepthwiseConv2dNativeBackpropInput for the `webgpu` backend, for NHWC, channel multiplier 1, dilation 1
 * and a channel count divisible by 4 (every depthwise layer of MobileNetV2): stride 1 as the forward
 * convolution of dy with the turned filter, other strides by the vec4 gather; anything else by `stock`.
 */
export function depthwiseBackpropInput(stock: tf.KernelFunc): tf.KernelFunc {
  return ((args: InputArgs) => {
    const { dy, filter } = args.inputs;
    const { strides, pad, dimRoundingMode, inputShape, dilations } = args.attrs;
    const [kH, kW, c, multiplier] = filter.shape;
    const dilated = dilations !== undefined &&
      (Array.isArray(dilations) ? dilations.some((d) => d !== 1) : dilations !== 1);
    if (multiplier !== 1 || c % 4 !== 0 || dilated || dy.dtype !== "float32" || inputShape.length !== 4) {
      return stock(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const info = tf.backend_util.computeConv2DInfo(
      inputShape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      strides,
      1,
      pad,
      dimRoundingMode,
      true,
    );
    if (info.strideHeight === 1 && info.strideWidth === 1) {
      const viaForward = strideOneInputGradient(args, info);
      if (viaForward) return viaForward;
    }
    const dx = output(args.backend, inputShape);
    const n = inputShape.reduce((a, b) => a * b, 1) / 4;
    if (n > 0) {
      dispatch(
        args.backend,
        inputGradShader(info.strideHeight, info.strideWidth),
        [dy, filter],
        [dx],
        [
          { u32: n },
          ...[
            info.inHeight,
            info.inWidth,
            info.outHeight,
            info.outWidth,
            c / 4,
            kH,
            kW,
            info.padInfo.top,
            info.padInfo.left,
          ].map((v) => ({ i32: v })),
        ],
        elementwiseGroups(n),
        "DepthwiseConv2dNativeBackpropInput",
      );
    }
    return dx;
  }) as unknown as tf.KernelFunc;
}

const FILTER_PARTIAL = `
struct U { items: u32, c4: i32, taps: i32, kW: i32, inH: i32, inW: i32, outH: i32, outW: i32, strideH: i32,
  strideW: i32, padTop: i32, padLeft: i32, outRows: i32, chunkRows: i32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> partial: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x >= u.items) { return; }
  let k = i32(id.x);
  let c = k % u.c4;
  let tap = (k / u.c4) % u.taps;
  let chunk = k / (u.c4 * u.taps);
  let kh = tap / u.kW;
  let kw = tap % u.kW;
  let first = chunk * u.chunkRows;
  let last = min(first + u.chunkRows, u.outRows);
  var acc = vec4<f32>(0.0);
  // Output rows are (batch, oy) pairs; each runs along ox.
  for (var row = first; row < last; row = row + 1) {
    let oy = row % u.outH;
    let b = row / u.outH;
    let iy = oy * u.strideH + kh - u.padTop;
    if (iy < 0 || iy >= u.inH) { continue; }
    let xRow = (b * u.inH + iy) * u.inW;
    let dyRow = row * u.outW;
    for (var ox = 0; ox < u.outW; ox = ox + 1) {
      let ix = ox * u.strideW + kw - u.padLeft;
      if (ix < 0 || ix >= u.inW) { continue; }
      acc = acc + x[(xRow + ix) * u.c4 + c] * dy[(dyRow + ox) * u.c4 + c];
    }
  }
  partial[id.x] = acc;
}`;

const SUM_CHUNKS = `
struct U { n: u32, chunks: u32 }
@group(0) @binding(0) var<storage, read> partial: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> result: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x >= u.n) { return; }
  var s = vec4<f32>(0.0);
  for (var c = 0u; c < u.chunks; c = c + 1u) { s = s + partial[c * u.n + id.x]; }
  result[id.x] = s;
}`;

type FilterArgs = {
  inputs: { x: tf.TensorInfo; dy: tf.TensorInfo };
  backend: WebGPUBackend;
  attrs: tf.DepthwiseConv2dNativeBackpropFilterAttrs;
};

// Enough invocations to fill a GPU (and both threads of a software one), each summing at least 4 output rows.
const TARGET_INVOCATIONS = 8192;
const MIN_CHUNK_ROWS = 4;

/**
 * DepthwiseConv2dNativeBackpropFilter for the `webgpu` backend, for NHWC, channel multiplier 1, dilation 1
 * and a channel count divisible by 4: partial sums per tap over chunks of output rows, then their sum (two
 * dispatches); anything else by `stock`.
 */
export function depthwiseBackpropFilter(stock: tf.KernelFunc): tf.KernelFunc {
  return ((args: FilterArgs) => {
    const { x, dy } = args.inputs;
    const { strides, pad, dimRoundingMode, filterShape, dilations } = args.attrs;
    const [kH, kW, c, multiplier] = filterShape;
    const dilated = dilations !== undefined &&
      (Array.isArray(dilations) ? dilations.some((d) => d !== 1) : dilations !== 1);
    if (multiplier !== 1 || c % 4 !== 0 || dilated || x.dtype !== "float32" || x.shape.length !== 4) {
      return stock(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filterShape,
      strides,
      1,
      pad,
      dimRoundingMode,
      true,
    );
    const { backend } = args;
    const result = output(backend, filterShape);
    const outRows = info.batchSize * info.outHeight;
    const perChunk = kH * kW * c / 4;
    if (outRows === 0 || perChunk === 0 || info.outWidth === 0) return result;
    const chunks = Math.max(
      1,
      Math.min(Math.ceil(TARGET_INVOCATIONS / perChunk), Math.floor(outRows / MIN_CHUNK_ROWS)),
    );
    const chunkRows = Math.ceil(outRows / chunks);
    const partial = output(backend, [chunks, kH, kW, c]);
    dispatch(
      backend,
      FILTER_PARTIAL,
      [x, dy],
      [partial],
      [
        { u32: perChunk * chunks },
        ...[
          c / 4,
          kH * kW,
          kW,
          info.inHeight,
          info.inWidth,
          info.outHeight,
          info.outWidth,
          info.strideHeight,
          info.strideWidth,
          info.padInfo.top,
          info.padInfo.left,
          outRows,
          chunkRows,
        ].map((v) => ({ i32: v })),
      ],
      Math.ceil(perChunk * chunks / 64),
      "DepthwiseConv2dNativeBackpropFilter",
    );
    dispatch(
      backend,
      SUM_CHUNKS,
      [partial],
      [result],
      [{ u32: perChunk }, { u32: chunks }],
      Math.ceil(perChunk / 64),
      "DepthwiseConv2dNativeBackpropFilter",
    );
    backend.disposeData(partial.dataId);
    return result;
  }) as unknown as tf.KernelFunc;
}
