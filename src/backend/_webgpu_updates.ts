import type * as tf from "@tensorflow/tfjs";
import { dispatch, elementwiseGroups, output, type WebGPUBackend } from "./_webgpu_dispatch.ts";

// The per-variable updates of a training step, one dispatch each instead of three or four: SGD with
// momentum (tfjs' MomentumOptimizer, both new tensors from one pass) and a batch norm's running statistics.
// A MobileNetV2 step updates some 160 variables and 66 running statistics: on tfjs-backend-webgpu these
// small element-wise chains are a third of the step's dispatches.

type Args<I extends string, A> = { inputs: Record<I, tf.TensorInfo>; backend: WebGPUBackend; attrs: A };

const sizeOf = (t: tf.TensorInfo) => t.shape.reduce((a, b) => a * b, 1);

const MOMENTUM = `
struct U { n: u32, momentum: f32, negativeRate: f32 }
@group(0) @binding(0) var<storage, read> value: array<f32>;
@group(0) @binding(1) var<storage, read> accumulation: array<f32>;
@group(0) @binding(2) var<storage, read> gradient: array<f32>;
@group(0) @binding(3) var<storage, read_write> newValue: array<f32>;
@group(0) @binding(4) var<storage, read_write> newAccumulation: array<f32>;
@group(0) @binding(5) var<uniform> u: U;
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  for (var i = id.x; i < u.n; i = i + groups.x * 256u) {
    let acc = u.momentum * accumulation[i] + gradient[i];
    newAccumulation[i] = acc;
    newValue[i] = u.negativeRate * acc + value[i];
  }
}`;

const MOVING_AVERAGE = `
struct U { n: u32, decay: f32 }
@group(0) @binding(0) var<storage, read> value: array<f32>;
@group(0) @binding(1) var<storage, read> batch: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  for (var i = id.x; i < u.n; i = i + groups.x * 256u) {
    result[i] = value[i] - (value[i] - batch[i]) * u.decay;
  }
}`;

/**
 * `accumulation' = momentum * accumulation + gradient`, `value' = value - learningRate * accumulation'`:
 * `[value', accumulation']` in one dispatch, as tfjs' MomentumOptimizer (without Nesterov) computes them.
 */
export function momentumUpdateKernel(
  args: Args<"value" | "accumulation" | "gradient", { learningRate: number; momentum: number }>,
): tf.TensorInfo[] {
  const { value, accumulation, gradient } = args.inputs;
  const { backend } = args;
  const newValue = output(backend, value.shape), newAccumulation = output(backend, value.shape);
  const n = sizeOf(value);
  if (n > 0) {
    dispatch(
      backend,
      MOMENTUM,
      [value, accumulation, gradient],
      [newValue, newAccumulation],
      [{ u32: n }, { f32: args.attrs.momentum }, { f32: -args.attrs.learningRate }],
      elementwiseGroups(n),
      "DaftMomentumUpdate",
    );
  }
  return [newValue, newAccumulation];
}

/** A running statistic moved toward the batch's, `value - (value - batch) * (1 - momentum)`: one dispatch. */
export function movingAverageKernel(args: Args<"value" | "batch", { momentum: number }>): tf.TensorInfo {
  const { value, batch } = args.inputs;
  const { backend } = args;
  const result = output(backend, value.shape);
  const n = sizeOf(value);
  if (n > 0) {
    dispatch(
      backend,
      MOVING_AVERAGE,
      [value, batch],
      [result],
      [{ u32: n }, { f32: 1 - args.attrs.momentum }],
      elementwiseGroups(n),
      "DaftMovingAverage",
    );
  }
  return result;
}
