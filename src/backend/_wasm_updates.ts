import type * as tf from "@tensorflow/tfjs";
import { heap } from "./_wasm_heap_copy.ts";
import type { WasmBackend } from "./_wasm_scratch.ts";

// The per-variable updates of a training step, each one kernel instead of three or four: SGD with momentum
// (tfjs' MomentumOptimizer) and a batch norm's running statistics. Small tensors, so each costs the engine's
// per-kernel overhead far more than its arithmetic; one loop over the heap each, rounding every operation to
// float32 as the ops they replace do.

type Args<I extends string, A> = { inputs: Record<I, tf.TensorInfo>; backend: WasmBackend; attrs: A };

const f32 = Math.fround;
const floats = (backend: WasmBackend, t: tf.TensorInfo) => heap(backend, t) as Float32Array;

/**
 * `accumulation' = momentum * accumulation + gradient`, `value' = value - learningRate * accumulation'`:
 * `[value', accumulation']`, as tfjs' MomentumOptimizer (without Nesterov) computes them.
 */
export function momentumUpdateKernel(
  args: Args<"value" | "accumulation" | "gradient", { learningRate: number; momentum: number }>,
): tf.TensorInfo[] {
  const { value, accumulation, gradient } = args.inputs;
  const { backend } = args;
  const newValue = backend.makeOutput(value.shape, "float32");
  const newAccumulation = backend.makeOutput(value.shape, "float32");
  const v = floats(backend, value), a = floats(backend, accumulation), g = floats(backend, gradient);
  const nv = floats(backend, newValue), na = floats(backend, newAccumulation);
  const m = f32(args.attrs.momentum), c = f32(-args.attrs.learningRate);
  for (let i = 0; i < nv.length; i++) {
    const acc = f32(f32(m * a[i]) + g[i]);
    na[i] = acc;
    nv[i] = f32(c * acc) + v[i];
  }
  return [newValue, newAccumulation];
}

/** A running statistic moved toward the batch's: `value - (value - batch) * (1 - momentum)`. */
export function movingAverageKernel(
  args: Args<"value" | "batch", { momentum: number }>,
): tf.TensorInfo {
  const { value, batch } = args.inputs;
  const { backend } = args;
  const out = backend.makeOutput(value.shape, "float32");
  const v = floats(backend, value), b = floats(backend, batch), o = floats(backend, out);
  const decay = f32(1 - args.attrs.momentum);
  for (let i = 0; i < o.length; i++) o[i] = v[i] - f32(f32(v[i] - b[i]) * decay);
  return out;
}
