import type * as tf from "@tensorflow/tfjs";
import { dispatch, elementwiseGroups, output, pack, type WebGPUBackend } from "./_webgpu_dispatch.ts";

// Batch norm in training mode and the clipped ReLU after it, one dispatch forward and one backward. Composed
// from tfjs ops (moments, batchNorm, and their gradients through sub, square, mean, tile, multiply, select)
// they are some twenty dispatches per layer each way on tfjs-backend-webgpu, each a pass over the
// activations; in a MobileNetV2 training step they are most of the dispatches and most of the time.
//
// One workgroup owns a few channels over every row: it reduces the channel statistics in workgroup
// memory, then, behind a barrier, writes the output with them, so statistics and output are one dispatch.

// Scalar lanes (any channel count) or vec4 lanes, four channels each (counts divisible by 4 over many rows,
// which on the software adapter run up to four times faster); both 256 invocations a workgroup.
type Width = 1 | 4;
const LANES: Record<Width, { channel: number; row: number }> = {
  1: { channel: 8, row: 32 },
  4: { channel: 2, row: 128 },
};
const channelsPerGroup = (width: Width) => LANES[width].channel * width;

type Args<I extends string> = {
  inputs: Record<I, tf.TensorInfo>;
  backend: WebGPUBackend;
  attrs: { epsilon: number; relu6?: boolean };
};

const channelsOf = (t: tf.TensorInfo) => t.shape[t.shape.length - 1];
const sizeOf = (t: tf.TensorInfo) => t.shape.reduce((a, b) => a * b, 1);

// The declarations every batch-norm shader shares: T (f32 or vec4<f32>), the lanes, and the workgroup arrays
// of the reduction (two partial sums per invocation) and of the per-channel constants it broadcasts.
function header(width: Width): string {
  const { channel, row } = LANES[width];
  return `
alias T = ${width === 1 ? "f32" : "vec4<f32>"};
const CL = ${channel}u;
const RL = ${row}u;
var<workgroup> s1: array<T, ${channel * row}>;
var<workgroup> s2: array<T, ${channel * row}>;
var<workgroup> k1: array<T, ${channel}>;
var<workgroup> k2: array<T, ${channel}>;
var<workgroup> k3: array<T, ${channel}>;
fn relu6Mask(g: T, z: T) -> T {
  return select(T(0.0), g, (z > T(0.0)) ${width === 1 ? "&&" : "&"} (z <= T(6.0)));
}`;
}

// Sums `a` and `b` across the row lanes of each channel lane, into s1[l.x] and s2[l.x].
const REDUCE = `
  let i = l.y * CL + l.x;
  s1[i] = a;
  s2[i] = b;
  workgroupBarrier();
  for (var stride = RL / 2u; stride > 0u; stride = stride / 2u) {
    if (l.y < stride) {
      s1[i] = s1[i] + s1[i + stride * CL];
      s2[i] = s2[i] + s2[i + stride * CL];
    }
    workgroupBarrier();
  }`;

// `u.lanes` is the channel count in units of T. Sums around each channel's first value (a shift that keeps
// the one-pass variance accurate when the mean is large against the spread), then
// y = (x - mean) * gamma / sqrt(variance + epsilon) + beta.
function forwardShader(width: Width): string {
  const { channel, row } = LANES[width];
  return `
struct U { rows: u32, lanes: u32, epsilon: f32, relu6: u32 }
@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> gamma: array<T>;
@group(0) @binding(2) var<storage, read> beta: array<T>;
@group(0) @binding(3) var<storage, read_write> y: array<T>;
@group(0) @binding(4) var<storage, read_write> mean: array<T>;
@group(0) @binding(5) var<storage, read_write> variance: array<T>;
@group(0) @binding(6) var<uniform> u: U;
${header(width)}
@compute @workgroup_size(${channel}, ${row}, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let c = wg.x * CL + l.x;
  let live = c < u.lanes;
  var a = T(0.0);
  var b = T(0.0);
  var center = T(0.0);
  if (live) {
    center = x[c];
    for (var r = l.y; r < u.rows; r = r + RL) {
      let d = x[r * u.lanes + c] - center;
      a = a + d;
      b = b + d * d;
    }
  }
  ${REDUCE}
  if (l.y == 0u && live) {
    let m = f32(u.rows);
    let dm = s1[l.x] / m;
    let v = max(s2[l.x] / m - dm * dm, T(0.0));
    let mu = center + dm;
    mean[c] = mu;
    variance[c] = v;
    k1[l.x] = mu;
    k2[l.x] = gamma[c] / sqrt(v + u.epsilon);
    k3[l.x] = beta[c];
  }
  workgroupBarrier();
  if (live) {
    let mu = k1[l.x];
    let scale = k2[l.x];
    let shift = k3[l.x];
    for (var r = l.y; r < u.rows; r = r + RL) {
      let k = r * u.lanes + c;
      var z = (x[k] - mu) * scale + shift;
      if (u.relu6 != 0u) { z = clamp(z, T(0.0), T(6.0)); }
      y[k] = z;
    }
  }
}`;
}

// dbeta = sum(g), dgamma = sum(g * xhat), dx = gamma * invStd * (g - dbeta / m - xhat * dgamma / m), with
// g = dy, masked with relu6 where the recomputed unclipped output is outside (0, 6].
function backwardShader(width: Width): string {
  const { channel, row } = LANES[width];
  return `
struct U { rows: u32, lanes: u32, epsilon: f32, relu6: u32 }
@group(0) @binding(0) var<storage, read> dy: array<T>;
@group(0) @binding(1) var<storage, read> x: array<T>;
// mean, variance, gamma and beta end to end (see pack)
@group(0) @binding(2) var<storage, read> channel: array<T>;
@group(0) @binding(3) var<storage, read_write> dx: array<T>;
@group(0) @binding(4) var<storage, read_write> dgamma: array<T>;
@group(0) @binding(5) var<storage, read_write> dbeta: array<T>;
@group(0) @binding(6) var<uniform> u: U;
${header(width)}
fn masked(g: T, xc: T, zscale: T, shift: T) -> T {
  if (u.relu6 == 0u) { return g; }
  return relu6Mask(g, xc * zscale + shift);
}
@compute @workgroup_size(${channel}, ${row}, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let c = wg.x * CL + l.x;
  let live = c < u.lanes;
  var a = T(0.0);
  var b = T(0.0);
  var mu = T(0.0);
  var invStd = T(0.0);
  var zscale = T(0.0);
  var shift = T(0.0);
  if (live) {
    mu = channel[c];
    invStd = T(1.0) / sqrt(channel[u.lanes + c] + u.epsilon);
    zscale = channel[2u * u.lanes + c] * invStd;
    shift = channel[3u * u.lanes + c];
    for (var r = l.y; r < u.rows; r = r + RL) {
      let k = r * u.lanes + c;
      let xc = x[k] - mu;
      let g = masked(dy[k], xc, zscale, shift);
      a = a + g;
      b = b + g * xc;
    }
  }
  ${REDUCE}
  if (l.y == 0u && live) {
    let m = f32(u.rows);
    let db = s1[l.x];
    let dg = s2[l.x] * invStd;
    dbeta[c] = db;
    dgamma[c] = dg;
    k1[l.x] = db / m;
    k2[l.x] = dg * invStd / m;
  }
  workgroupBarrier();
  if (live) {
    let meanG = k1[l.x];
    let slope = k2[l.x];
    for (var r = l.y; r < u.rows; r = r + RL) {
      let k = r * u.lanes + c;
      let xc = x[k] - mu;
      let g = masked(dy[k], xc, zscale, shift);
      dx[k] = zscale * (g - meanG - xc * slope);
    }
  }
}`;
}

const SHADERS = {
  forward: { 1: forwardShader(1), 4: forwardShader(4) },
  backward: { 1: backwardShader(1), 4: backwardShader(4) },
};

const RELU6 = `
struct U { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  for (var i = id.x; i < u.n; i = i + groups.x * 256u) { y[i] = clamp(x[i], 0.0, 6.0); }
}`;

const RELU6_GRAD = `
struct U { n: u32 }
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  for (var i = id.x; i < u.n; i = i + groups.x * 256u) {
    dx[i] = select(0.0, dy[i], x[i] > 0.0 && x[i] <= 6.0);
  }
}`;

// vec4 lanes pay off over many rows; over a few hundred, the scalar lanes' shorter reduction wins.
const VEC4_MIN_ROWS = 4096;
const widthOf = (x: tf.TensorInfo): Width =>
  channelsOf(x) % 4 === 0 && sizeOf(x) / channelsOf(x) >= VEC4_MIN_ROWS ? 4 : 1;

const bnUniforms = (x: tf.TensorInfo, attrs: Args<never>["attrs"]) => {
  const c = channelsOf(x);
  const width = widthOf(x);
  return [{ u32: sizeOf(x) / c }, { u32: c / width }, { f32: attrs.epsilon }, { u32: attrs.relu6 ? 1 : 0 }];
};

/**
 * Batch norm over every axis but the last with the batch's statistics, `x` `[..., C]`, `gamma` and `beta`
 * `[C]`: `[y, mean, variance]` (variance biased), `y` clipped to [0, 6] with `attrs.relu6`. One dispatch.
 */
export function batchNormTrainingKernel(args: Args<"x" | "gamma" | "beta">): tf.TensorInfo[] {
  const { x, gamma, beta } = args.inputs;
  const { backend } = args;
  const c = channelsOf(x);
  const y = output(backend, x.shape), mean = output(backend, [c]), variance = output(backend, [c]);
  if (sizeOf(x) > 0) {
    dispatch(
      backend,
      SHADERS.forward[widthOf(x)],
      [x, gamma, beta],
      [y, mean, variance],
      bnUniforms(x, args.attrs),
      Math.ceil(c / channelsPerGroup(widthOf(x))),
      "DaftBatchNormTraining",
    );
  }
  return [y, mean, variance];
}

/**
 * The gradient of {@linkcode batchNormTrainingKernel}: from `dy` and the saved `x`, `mean`, `variance`,
 * `gamma`, `beta` to `[dx, dgamma, dbeta]` (with `attrs.relu6`, `dy` masked where the recomputed unclipped
 * output is outside (0, 6]). One dispatch.
 */
export function batchNormTrainingGradKernel(
  args: Args<"dy" | "x" | "mean" | "variance" | "gamma" | "beta">,
): tf.TensorInfo[] {
  const { dy, x, mean, variance, gamma, beta } = args.inputs;
  const { backend } = args;
  const c = channelsOf(x);
  const dx = output(backend, x.shape), dgamma = output(backend, [c]), dbeta = output(backend, [c]);
  if (sizeOf(x) > 0) {
    const channel = pack(backend, [mean, variance, gamma, beta]);
    dispatch(
      backend,
      SHADERS.backward[widthOf(x)],
      [dy, x, channel],
      [dx, dgamma, dbeta],
      bnUniforms(x, args.attrs),
      Math.ceil(c / channelsPerGroup(widthOf(x))),
      "DaftBatchNormTrainingGrad",
    );
    backend.disposeData(channel.dataId);
  }
  return [dx, dgamma, dbeta];
}

/** `min(max(x, 0), 6)`, one dispatch. */
export function relu6Kernel(args: { inputs: { x: tf.TensorInfo }; backend: WebGPUBackend }): tf.TensorInfo {
  const { x } = args.inputs;
  const y = output(args.backend, x.shape);
  const n = sizeOf(x);
  if (n > 0) dispatch(args.backend, RELU6, [x], [y], [{ u32: n }], elementwiseGroups(n), "DaftRelu6");
  return y;
}

/** The gradient tfjs-layers' ReLU(maxValue 6) has: `dy` where `0 < x <= 6`, else 0. One dispatch. */
export function relu6GradKernel(
  args: { inputs: { dy: tf.TensorInfo; x: tf.TensorInfo }; backend: WebGPUBackend },
): tf.TensorInfo {
  const { dy, x } = args.inputs;
  const dx = output(args.backend, x.shape);
  const n = sizeOf(x);
  if (n > 0) {
    dispatch(args.backend, RELU6_GRAD, [dy, x], [dx], [{ u32: n }], elementwiseGroups(n), "DaftRelu6Grad");
  }
  return dx;
}
