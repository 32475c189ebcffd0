import type * as tf from "@tensorflow/tfjs";
import type { WasmBackend } from "./_wasm_scratch.ts";
import { address, simdKernels, withScratch } from "./_wasm_simd.ts";

// Batch norm in training mode and the clipped ReLU after it, each as one kernel forward and one backward.
// Composed from tfjs ops they are about twenty kernels and twenty passes over the activations per layer
// (moments, normalisation, and their gradients through sub, square, mean, tile, multiply), each with the
// engine's per-kernel overhead; tfjs-backend-wasm's own FusedBatchNorm is a scalar loop. These run the
// WebAssembly SIMD loops of ./simd/training_kernels.c.

type Args<I extends string> = {
  inputs: Record<I, tf.TensorInfo>;
  backend: WasmBackend;
  attrs: { epsilon: number; relu6?: boolean };
};

const channelsOf = (t: tf.TensorInfo) => t.shape[t.shape.length - 1];
const sizeOf = (t: tf.TensorInfo) => t.shape.reduce((a, b) => a * b, 1);

/**
 * Batch norm over every axis but the last, with the batch's statistics: `x` `[..., C]`, `gamma` and `beta`
 * `[C]` to `y = gamma * (x - mean) / sqrt(variance + epsilon) + beta`, the per-channel `mean` and the
 * (biased) `variance`, the same three tensors `tfjs-layers` computes in training; with `attrs.relu6`, `y` is
 * then clipped to [0, 6] (a following ReLU6 layer, fused). Sums are taken in float32 over blocks of 64 rows,
 * then in float64, around the first row (one pass gives mean and variance).
 */
export function batchNormTrainingKernel(args: Args<"x" | "gamma" | "beta">): tf.TensorInfo[] {
  const { x, gamma, beta } = args.inputs;
  const { backend } = args;
  const c = channelsOf(x);
  const rows = c === 0 ? 0 : sizeOf(x) / c;
  const y = backend.makeOutput(x.shape, "float32");
  const mean = backend.makeOutput([c], "float32");
  const variance = backend.makeOutput([c], "float32");
  const simd = simdKernels(backend);
  const at = (t: tf.TensorInfo) => address(backend, t);
  withScratch(backend, simd.bn_scratch_bytes(c), (scratch) => {
    simd.bn_forward(
      at(x),
      at(y),
      rows,
      c,
      at(gamma),
      at(beta),
      args.attrs.epsilon,
      at(mean),
      at(variance),
      scratch,
      args.attrs.relu6 ? 1 : 0,
    );
  });
  return [y, mean, variance];
}

/**
 * The gradient of {@linkcode batchNormTrainingKernel}: from `dy`, the saved `x`, `mean`, `variance`,
 * `gamma` and `beta` to `dx`, `dgamma` and `dbeta` (with `attrs.relu6`, `dy` first masked where the
 * unclipped output, recomputed, is outside (0, 6]). With `xhat = (x - mean) * invStd` and `m` rows,
 * `dbeta = sum(dy)`, `dgamma = sum(dy * xhat)` and
 * `dx = gamma * invStd * (dy - dbeta / m - xhat * dgamma / m)`: two passes.
 */
export function batchNormTrainingGradKernel(
  args: Args<"dy" | "x" | "mean" | "variance" | "gamma" | "beta">,
): tf.TensorInfo[] {
  const { dy, x, mean, variance, gamma, beta } = args.inputs;
  const { backend } = args;
  const c = channelsOf(x);
  const rows = c === 0 ? 0 : sizeOf(x) / c;
  const dx = backend.makeOutput(x.shape, "float32");
  const dgamma = backend.makeOutput([c], "float32");
  const dbeta = backend.makeOutput([c], "float32");
  const simd = simdKernels(backend);
  const at = (t: tf.TensorInfo) => address(backend, t);
  withScratch(backend, simd.bn_scratch_bytes(c), (scratch) => {
    simd.bn_backward(
      at(dy),
      at(x),
      rows,
      c,
      at(mean),
      at(variance),
      at(gamma),
      at(beta),
      args.attrs.epsilon,
      at(dx),
      at(dgamma),
      at(dbeta),
      scratch,
      args.attrs.relu6 ? 1 : 0,
    );
  });
  return [dx, dgamma, dbeta];
}

/** `min(max(x, 0), 6)`. */
export function relu6Kernel(args: { inputs: { x: tf.TensorInfo }; backend: WasmBackend }): tf.TensorInfo {
  const { x } = args.inputs;
  const out = args.backend.makeOutput(x.shape, "float32");
  simdKernels(args.backend).relu6(address(args.backend, x), address(args.backend, out), sizeOf(x));
  return out;
}

/**
 * The gradient of ReLU6 as `tfjs-layers` builds it (relu, then clip to [0, 6]): `dy` where
 * `0 < x <= 6`, else 0.
 */
export function relu6GradKernel(
  args: { inputs: { dy: tf.TensorInfo; x: tf.TensorInfo }; backend: WasmBackend },
): tf.TensorInfo {
  const { dy, x } = args.inputs;
  const { backend } = args;
  const out = backend.makeOutput(x.shape, "float32");
  simdKernels(backend).relu6_grad(
    address(backend, dy),
    address(backend, x),
    address(backend, out),
    sizeOf(x),
  );
  return out;
}

/**
 * FusedBatchNorm (batch norm with given statistics, what eval mode runs) in one SIMD pass, for float32 `x`
 * `[..., C]` with `mean`, `variance` and the optional `scale` and `offset` all `[C]` (or any shape of C
 * values): `y = (x - mean) / sqrt(variance + varianceEpsilon) * scale + offset`. The stock kernel is a
 * scalar loop with an index computation per element; anything else goes to it (`fallback`).
 */
export function fusedBatchNormInference(fallback: tf.KernelFunc): tf.KernelFunc {
  return ((args: {
    inputs: Partial<Record<"x" | "mean" | "variance" | "scale" | "offset", tf.TensorInfo>>;
    backend: WasmBackend;
    attrs: { varianceEpsilon: number };
  }) => {
    const { x, mean, variance, scale, offset } = args.inputs;
    const c = x ? channelsOf(x) : 0;
    const perChannel = (t: tf.TensorInfo | undefined) =>
      t === undefined || t === null || (t.dtype === "float32" && sizeOf(t) === c);
    if (
      !x || x.dtype !== "float32" || x.shape.length === 0 || sizeOf(x) === 0 || !mean || !variance ||
      ![mean, variance, scale, offset].every(perChannel)
    ) {
      return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const { backend } = args;
    const y = backend.makeOutput(x.shape, "float32");
    const simd = simdKernels(backend);
    const at = (t: tf.TensorInfo | undefined | null) => (t ? address(backend, t) : 0);
    withScratch(backend, 8 * c, (scratch) => {
      simd.bn_inference(
        at(x),
        at(y),
        sizeOf(x) / c,
        c,
        at(mean),
        at(variance),
        at(scale),
        scale ? 1 : 0,
        at(offset),
        offset ? 1 : 0,
        args.attrs.varianceEpsilon,
        scratch,
      );
    });
    return y;
  }) as unknown as tf.KernelFunc;
}
