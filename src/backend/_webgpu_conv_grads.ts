import * as tf from "@tensorflow/tfjs";
import { dispatch, output, type WebGPUBackend } from "./_webgpu_dispatch.ts";

// tfjs-backend-webgpu computes a conv filter's gradient with one invocation per filter weight, each looping
// over every output position of the batch: for MobileNetV2's 1x1 convolutions (two in every block) that is a
// few thousand invocations each summing tens of thousands of products one at a time, the costliest kernel
// of a training step. A 1x1 convolution's filter gradient is `x^T dy` over the batch's rows: here each
// invocation sums a 4 x 4 block of it (vec4 loads of x and dy, four vec4 multiply-adds a row) over one chunk
// of the rows, and a second dispatch adds the chunks' partial sums. Other convolutions (the first layer's
// 3x3, stride 2, on 3 input channels) take one tap and input channel against four output channels per
// invocation, over a chunk of output rows, then the same sum.

type Args = {
  inputs: { x: tf.TensorInfo; dy: tf.TensorInfo };
  backend: WebGPUBackend;
  attrs: tf.Conv2DBackpropFilterAttrs;
};

const PARTIAL = `
struct U { rows: u32, cin4: u32, cout4: u32, chunkRows: u32, blocks: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> partial: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x >= u.blocks) { return; }
  let co = id.x % u.cout4;
  let ci = (id.x / u.cout4) % u.cin4;
  let chunk = id.x / (u.cout4 * u.cin4);
  let first = chunk * u.chunkRows;
  let last = min(first + u.chunkRows, u.rows);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var r = first; r < last; r = r + 1u) {
    let xv = x[r * u.cin4 + ci];
    let g = dy[r * u.cout4 + co];
    a0 = a0 + xv.x * g;
    a1 = a1 + xv.y * g;
    a2 = a2 + xv.z * g;
    a3 = a3 + xv.w * g;
  }
  // partial[chunk][ci * 4 + k][co]: rows of Cout (cout4 vec4s) for each input channel.
  let base = (chunk * u.cin4 * 4u + ci * 4u) * u.cout4 + co;
  partial[base] = a0;
  partial[base + u.cout4] = a1;
  partial[base + 2u * u.cout4] = a2;
  partial[base + 3u * u.cout4] = a3;
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

// dW[kh, kw, ci, 4j..4j+3] over the output rows (batch, oy) of one chunk: x is read one value at a time (any
// input channel count), dy as vec4.
const WINDOW_PARTIAL = `
struct U { items: u32, cin: i32, cout4: i32, kW: i32, taps: i32, inH: i32, inW: i32, outH: i32, outW: i32,
  strideH: i32, strideW: i32, padTop: i32, padLeft: i32, outRows: i32, chunkRows: i32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> partial: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x >= u.items) { return; }
  let k = i32(id.x);
  // partial[chunk][kh][kw][ci][j], j fastest.
  let j = k % u.cout4;
  let ci = (k / u.cout4) % u.cin;
  let tap = (k / (u.cout4 * u.cin)) % u.taps;
  let chunk = k / (u.cout4 * u.cin * u.taps);
  let kh = tap / u.kW;
  let kw = tap % u.kW;
  let first = chunk * u.chunkRows;
  let last = min(first + u.chunkRows, u.outRows);
  var acc = vec4<f32>(0.0);
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
      acc = acc + x[(xRow + ix) * u.cin + ci] * dy[(dyRow + ox) * u.cout4 + j];
    }
  }
  partial[id.x] = acc;
}`;

/** Whether the filter gradient is `x^T dy`: 1x1, stride 1, no padding, NHWC, channels divisible by 4. */
function isPointwise(args: Args): boolean {
  const { x, dy } = args.inputs;
  const { filterShape, strides, pad, dataFormat } = args.attrs;
  const stride = typeof strides === "number" ? [strides, strides] : strides;
  const zeroPad = pad === "valid" || pad === "same" ||
    (Array.isArray(pad) && pad.flat().every((p) => p === 0));
  return filterShape[0] === 1 && filterShape[1] === 1 && stride[0] === 1 && stride[1] === 1 && zeroPad &&
    dataFormat !== "NCHW" && x.dtype === "float32" && x.shape.length === 4 &&
    x.shape[1] === dy.shape[1] && x.shape[2] === dy.shape[2] && x.shape[3] % 4 === 0 && dy.shape[3] % 4 === 0;
}

// Enough invocations to fill a GPU (and both threads of a software one), each summing at least 64 rows (of
// the 1x1 product) or 4 output rows (of a window).
const TARGET_INVOCATIONS = 8192;
const MIN_CHUNK_ROWS = 64;
const MIN_CHUNK_OUTPUT_ROWS = 4;

function sumChunks(backend: WebGPUBackend, partial: tf.TensorInfo, result: tf.TensorInfo, chunks: number) {
  const n4 = result.shape.reduce((a, b) => a * b, 1) / 4;
  dispatch(
    backend,
    SUM_CHUNKS,
    [partial],
    [result],
    [{ u32: n4 }, { u32: chunks }],
    Math.ceil(n4 / 64),
    "Conv2DBackpropFilter",
  );
  backend.disposeData(partial.dataId);
}

// Any window, stride and padding (NHWC, dilation 1) with a multiple of 4 output channels.
function windowFilterGradient(args: Args): tf.TensorInfo {
  const { x, dy } = args.inputs;
  const { backend } = args;
  const { filterShape, strides, pad, dimRoundingMode } = args.attrs;
  const [kH, kW, cin, cout] = filterShape;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const result = output(backend, filterShape);
  const outRows = info.batchSize * info.outHeight;
  const perChunk = kH * kW * cin * cout / 4;
  if (outRows === 0 || perChunk === 0 || info.outWidth === 0) return result;
  const chunks = Math.max(
    1,
    Math.min(Math.ceil(TARGET_INVOCATIONS / perChunk), Math.floor(outRows / MIN_CHUNK_OUTPUT_ROWS)),
  );
  const chunkRows = Math.ceil(outRows / chunks);
  const partial = output(backend, [chunks, ...filterShape]);
  dispatch(
    backend,
    WINDOW_PARTIAL,
    [x, dy],
    [partial],
    [
      { u32: perChunk * chunks },
      ...[
        cin,
        cout / 4,
        kW,
        kH * kW,
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
    "Conv2DBackpropFilter",
  );
  sumChunks(backend, partial, result, chunks);
  return result;
}

// Window convolutions this file computes: NHWC, dilation 1, output channels divisible by 4.
function isWindow(args: Args): boolean {
  const { x } = args.inputs;
  return args.attrs.dataFormat !== "NCHW" && x.dtype === "float32" && x.shape.length === 4 &&
    args.attrs.filterShape[3] % 4 === 0;
}

/**
 * Conv2DBackpropFilter for the `webgpu` backend, in two dispatches (partial sums over chunks of rows, then
 * their sum): a 1x1 convolution's gradient (channels divisible by 4) register-blocked, any other window with
 * output channels divisible by 4 one tap and input channel per invocation; anything else by `stock`
 * (tfjs-backend-webgpu's own kernel).
 */
export function conv2dBackpropFilter(stock: tf.KernelFunc): tf.KernelFunc {
  return ((args: Args) => {
    if (!isPointwise(args)) {
      return isWindow(args)
        ? windowFilterGradient(args)
        : stock(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const { x, dy } = args.inputs;
    const { backend } = args;
    const [n, h, w, cin] = x.shape;
    const cout = dy.shape[3];
    const rows = n * h * w;
    const result = output(backend, args.attrs.filterShape);
    if (rows === 0 || cin === 0 || cout === 0) return result;
    const blocks = (cin / 4) * (cout / 4);
    const chunks = Math.max(
      1,
      Math.min(Math.ceil(TARGET_INVOCATIONS / blocks), Math.floor(rows / MIN_CHUNK_ROWS)),
    );
    const chunkRows = Math.ceil(rows / chunks);
    const partial = output(backend, [chunks, cin, cout]);
    dispatch(
      backend,
      PARTIAL,
      [x, dy],
      [partial],
      [{ u32: rows }, { u32: cin / 4 }, { u32: cout / 4 }, { u32: chunkRows }, { u32: blocks * chunks }],
      Math.ceil(blocks * chunks / 64),
      "Conv2DBackpropFilter",
    );
    sumChunks(backend, partial, result, chunks);
    return result;
  }) as unknown as tf.KernelFunc;
}
