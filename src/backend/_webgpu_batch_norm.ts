import type * as tf from "@tensorflow/tfjs";
import { dispatch, elementwiseGroups, output, pack, type WebGPUBackend } from "./_webgpu_dispatch.ts";

// Batch norm in training mode and the clipped ReLU after it, one dispatch forward and one backward. Composed
// from tfjs ops (moments, batchNorm, and their gradients through sub, square, mean, tile, multiply, select)
// they are some twenty dispatches per layer each way on tfjs-backend-webgpu, each a pass over the
// activations; in a MobileNetV2 training step they are most of the dispatches and most of the time.
//
// One workgroup owns CHANNEL_LANES channels over every row: it reduces the channel statistics in workgroup
// memory, then, behind a barrier, writes the output with them, so statistics and output are one dispatch.

const CHANNEL_LANES = 8;
const ROW_LANES = 32;

type Args<I extends string> = {
  inputs: Record<I, tf.TensorInfo>;
  backend: WebGPUBackend;
  attrs: { epsilon: number; relu6?: boolean };
};

const channelsOf = (t: tf.TensorInfo) => t.shape[t.shape.length - 1];
const sizeOf = (t: tf.TensorInfo) => t.shape.reduce((a, b) => a * b, 1);

// The reduction of two per-thread partial sums `a` and `b` across the row lanes of each channel lane, left
// in s1[l.x] and s2[l.x]; sets up `c` (the channel) and `live`.
const REDUCE_HEADER = `
const CL = ${CHANNEL_LANES}u;
const RL = ${ROW_LANES}u;
var<workgroup> s1: array<f32, ${CHANNEL_LANES * ROW_LANES}>;
var<workgroup> s2: array<f32, ${CHANNEL_LANES * ROW_LANES}>;
var<workgroup> k1: array<f32, ${CHANNEL_LANES}>;
var<workgroup> k2: array<f32, ${CHANNEL_LANES}>;
var<workgroup> k3: array<f32, ${CHANNEL_LANES}>;`;

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

// Sums around each channel's first value (a shift that keeps the one-pass variance accurate when the mean is
// large against the spread), then y = (x - mean) * gamma / sqrt(variance + epsilon) + beta.
const FORWARD = `
struct U { rows: u32, channels: u32, epsilon: f32, relu6: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> variance: array<f32>;
@group(0) @binding(6) var<uniform> u: U;
${REDUCE_HEADER}
@compute @workgroup_size(${CHANNEL_LANES}, ${ROW_LANES}, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let c = wg.x * CL + l.x;
  let live = c < u.channels;
  var a = 0.0;
  var b = 0.0;
  var center = 0.0;
  if (live) {
    center = x[c];
    for (var r = l.y; r < u.rows; r = r + RL) {
      let d = x[r * u.channels + c] - center;
      a = a + d;
      b = b + d * d;
    }
  }
  ${REDUCE}
  if (l.y == 0u && live) {
    let m = f32(u.rows);
    let dm = s1[l.x] / m;
    let v = max(s2[l.x] / m - dm * dm, 0.0);
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
      let k = r * u.channels + c;
      var z = (x[k] - mu) * scale + shift;
      if (u.relu6 != 0u) { z = clamp(z, 0.0, 6.0); }
      y[k] = z;
    }
  }
}`;

// dbeta = sum(g), dgamma = sum(g * xhat), dx = gamma * invStd * (g - dbeta / m - xhat * dgamma / m), with
// g = dy, masked with relu6 where the recomputed unclipped output is outside (0, 6].
const BACKWARD = `
struct U { rows: u32, channels: u32, epsilon: f32, relu6: u32 }
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// mean, variance, gamma and beta end to end (see pack)
@group(0) @binding(2) var<storage, read> channel: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(6) var<uniform> u: U;
${REDUCE_HEADER}
fn masked(g: f32, xc: f32, zscale: f32, shift: f32) -> f32 {
  if (u.relu6 == 0u) { return g; }
  let z = xc * zscale + shift;
  return select(0.0, g, z > 0.0 && z <= 6.0);
}
@compute @workgroup_size(${CHANNEL_LANES}, ${ROW_LANES}, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let c = wg.x * CL + l.x;
  let live = c < u.channels;
  var a = 0.0;
  var b = 0.0;
  var mu = 0.0;
  var invStd = 0.0;
  var zscale = 0.0;
  var shift = 0.0;
  if (live) {
    mu = channel[c];
    invStd = 1.0 / sqrt(channel[u.channels + c] + u.epsilon);
    zscale = channel[2u * u.channels + c] * invStd;
    shift = channel[3u * u.channels + c];
    for (var r = l.y; r < u.rows; r = r + RL) {
      let k = r * u.channels + c;
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
      let k = r * u.channels + c;
      let xc = x[k] - mu;
      let g = masked(dy[k], xc, zscale, shift);
      dx[k] = zscale * (g - meanG - xc * slope);
    }
  }
}`;

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

const bnUniforms = (x: tf.TensorInfo, attrs: Args<never>["attrs"]) => {
  const c = channelsOf(x);
  return [{ u32: sizeOf(x) / c }, { u32: c }, { f32: attrs.epsilon }, { u32: attrs.relu6 ? 1 : 0 }];
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
      FORWARD,
      [x, gamma, beta],
      [y, mean, variance],
      bnUniforms(x, args.attrs),
      Math.ceil(c / CHANNEL_LANES),
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
      BACKWARD,
      [dy, x, channel],
      [dx, dgamma, dbeta],
      bnUniforms(x, args.attrs),
      Math.ceil(c / CHANNEL_LANES),
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
