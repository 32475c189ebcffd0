import type * as tf from "@tensorflow/tfjs";
import { dispatch, output, type WebGPUBackend } from "./_webgpu_dispatch.ts";

// A 1x1 convolution (stride 1, no padding, NHWC) is a matrix product over the batch's rows, and so is its
// input gradient: `y = x W` and `dx = dy W^T`, with W `[Cin, Cout]`. tfjs-backend-webgpu runs both through
// its general convolution programs, which index the filter window and pad per element. Here each invocation
// computes a 4 x 4 block of the output (four rows, four channels) from vec4 loads, sixteen vec4 products per
// eight loads. MobileNetV2 has two such convolutions per block.

// Both programs: each invocation loads four W vectors and four rows of `a` per step of k, and accumulates a
// 4 x 4 output block (rows r0..r0+3, output channels 4j..4j+3). They differ in where the W vectors are and
// how a row meets them.
const blockProgram = (loadW: string, accumulate: string) => `
struct U { rows: u32, k4: u32, n4: u32, blocks: u32 }
@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> result: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> u: U;
fn row(r: u32, k: u32) -> vec4<f32> {
  if (r >= u.rows) { return vec4<f32>(0.0); }
  return a[r * u.k4 + k];
}
fn acc(x: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
  return ${accumulate};
}
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x >= u.blocks) { return; }
  let j = id.x % u.n4;
  let r0 = (id.x / u.n4) * 4u;
  var o0 = vec4<f32>(0.0);
  var o1 = vec4<f32>(0.0);
  var o2 = vec4<f32>(0.0);
  var o3 = vec4<f32>(0.0);
  for (var k = 0u; k < u.k4; k = k + 1u) {
    let w0 = ${loadW.replaceAll("#", "0u")};
    let w1 = ${loadW.replaceAll("#", "1u")};
    let w2 = ${loadW.replaceAll("#", "2u")};
    let w3 = ${loadW.replaceAll("#", "3u")};
    o0 = o0 + acc(row(r0, k), w0, w1, w2, w3);
    o1 = o1 + acc(row(r0 + 1u, k), w0, w1, w2, w3);
    o2 = o2 + acc(row(r0 + 2u, k), w0, w1, w2, w3);
    o3 = o3 + acc(row(r0 + 3u, k), w0, w1, w2, w3);
  }
  result[r0 * u.n4 + j] = o0;
  if (r0 + 1u < u.rows) { result[(r0 + 1u) * u.n4 + j] = o1; }
  if (r0 + 2u < u.rows) { result[(r0 + 2u) * u.n4 + j] = o2; }
  if (r0 + 3u < u.rows) { result[(r0 + 3u) * u.n4 + j] = o3; }
}`;

// y[r, 4j..4j+3] = sum over input channels of x[r, c] * W[c, 4j..4j+3]: W rows 4k..4k+3 at output channels
// 4j..4j+3, weighted by a row's four input channels.
const FORWARD = blockProgram("w[(4u * k + #) * u.n4 + j]", "x.x * w0 + x.y * w1 + x.z * w2 + x.w * w3");

// dx[r, 4j..4j+3] = sum over output channels c of dy[r, c] * W[4j..4j+3, c]: dot products of vec4 runs of a
// dy row and of four W rows (input channels 4j..4j+3, at output channels 4k..4k+3).
const INPUT_GRAD = blockProgram(
  "w[(4u * j + #) * u.k4 + k]",
  "vec4<f32>(dot(x, w0), dot(x, w1), dot(x, w2), dot(x, w3))",
);

type ConvAttrs = {
  strides: number | [number, number];
  pad: unknown;
  dataFormat?: string;
  dilations?: number | [number, number];
};

/** 1x1, stride 1, dilation 1, no padding, NHWC, channel counts divisible by 4. */
function pointwise(filter: tf.TensorInfo, attrs: ConvAttrs, dtype: tf.DataType): boolean {
  const [kh, kw, cin, cout] = filter.shape;
  const ones = (v: number | [number, number] | undefined) =>
    v === undefined || (Array.isArray(v) ? v.every((d) => d === 1) : v === 1);
  const zeroPad = attrs.pad === "valid" || attrs.pad === "same" ||
    (Array.isArray(attrs.pad) && attrs.pad.flat().every((p) => p === 0));
  return kh === 1 && kw === 1 && cin % 4 === 0 && cout % 4 === 0 && ones(attrs.strides) &&
    ones(attrs.dilations) && zeroPad && attrs.dataFormat !== "NCHW" && dtype === "float32";
}

function product(
  backend: WebGPUBackend,
  code: string,
  a: tf.TensorInfo,
  filter: tf.TensorInfo,
  outShape: number[],
  name: string,
): tf.TensorInfo {
  const rows = outShape.slice(0, 3).reduce((x, y) => x * y, 1);
  const k = a.shape[3], n = outShape[3];
  const result = output(backend, outShape);
  const blocks = Math.ceil(rows / 4) * (n / 4);
  if (blocks > 0) {
    dispatch(
      backend,
      code,
      [a, filter],
      [result],
      [{ u32: rows }, { u32: k / 4 }, { u32: n / 4 }, { u32: blocks }],
      Math.ceil(blocks / 64),
      name,
    );
  }
  return result;
}

/** Conv2D for the `webgpu` backend: a 1x1 convolution as a register-blocked product; the rest by `stock`. */
export function pointwiseConv2d(stock: tf.KernelFunc): tf.KernelFunc {
  return ((
    args: { inputs: { x: tf.TensorInfo; filter: tf.TensorInfo }; backend: WebGPUBackend; attrs: ConvAttrs },
  ) => {
    const { x, filter } = args.inputs;
    if (x.shape.length !== 4 || !pointwise(filter, args.attrs, x.dtype)) {
      return stock(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    return product(args.backend, FORWARD, x, filter, [...x.shape.slice(0, 3), filter.shape[3]], "Conv2D");
  }) as unknown as tf.KernelFunc;
}

/** Conv2DBackpropInput for the `webgpu` backend: a 1x1 convolution's `dy W^T`; the rest by `stock`. */
export function pointwiseConv2dBackpropInput(stock: tf.KernelFunc): tf.KernelFunc {
  return ((args: {
    inputs: { dy: tf.TensorInfo; filter: tf.TensorInfo };
    backend: WebGPUBackend;
    attrs: ConvAttrs & { inputShape: number[] };
  }) => {
    const { dy, filter } = args.inputs;
    const { inputShape } = args.attrs;
    if (
      dy.shape.length !== 4 || inputShape.length !== 4 || !pointwise(filter, args.attrs, dy.dtype) ||
      inputShape[1] !== dy.shape[1] || inputShape[2] !== dy.shape[2]
    ) {
      return stock(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    return product(args.backend, INPUT_GRAD, dy, filter, inputShape, "Conv2DBackpropInput");
  }) as unknown as tf.KernelFunc;
}
