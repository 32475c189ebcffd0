import type * as tf from "@tensorflow/tfjs";
import { dispatch, output, type WebGPUBackend } from "./_webgpu_dispatch.ts";

// tfjs-backend-webgpu computes a conv filter's gradient with one invocation per filter weight, each looping
// over every output position of the batch: for MobileNetV2's 1x1 convolutions (two in every block) that is a
// few thousand invocations each summing tens of thousands of products one at a time, the costliest kernel
// of a training step. A 1x1 convolution's filter gradient is `x^T dy` over the batch's rows: here each
// invocation sums a 4 x 4 block of it (vec4 loads of x and dy, four vec4 multiply-adds a row) over one chunk
// of the rows, and a second dispatch adds the chunks' partial sums.

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

// Enough invocations to fill a GPU (and both threads of a software one), each summing at least 64 rows.
const TARGET_INVOCATIONS = 8192;
const MIN_CHUNK_ROWS = 64;

/**
 * Conv2DBackpropFilter for the `webgpu` backend: a 1x1 convolution's gradient (channels divisible by 4) in
 * two dispatches, register-blocked partial sums over chunks of rows, then their sum; anything else by
 * `stock` (tfjs-backend-webgpu's own kernel).
 */
export function conv2dBackpropFilter(stock: tf.KernelFunc): tf.KernelFunc {
  return ((args: Args) => {
    if (!isPointwise(args)) return stock(args as unknown as Parameters<tf.KernelFunc>[0]);
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
    const n4 = cin * cout / 4;
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
    return result;
  }) as unknown as tf.KernelFunc;
}
