import type * as tf from "@tensorflow/tfjs";
import type { WasmBackend } from "./_wasm_scratch.ts";
import { address, chunkSize, runChunked, simdKernels, withScratch } from "./_wasm_simd.ts";

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
  const y = backend.makeOutput(x.shape, "float32");
  const [mean, variance] = [backend.makeOutput([c], "float32"), backend.makeOutput([c], "float32")];
  const at = (t: tf.TensorInfo, first = 0) => address(backend, t) + 4 * first * c;
  const relu6 = args.attrs.relu6 ? 1 : 0;
  // The statistics, then the chunks apply them.
  batchStatistics(
    backend,
    x,
    mean,
    variance,
    [at(gamma), at(beta), args.attrs.epsilon],
    (pass, scale, offset) =>
      rowPass(backend, pass, c, "bn_apply", (first, end) => [
        at(x, first),
        at(y, first),
        end - first,
        c,
        at(mean),
        scale,
        offset,
        relu6,
      ]),
  );
  return [y, mean, variance];
}

/**
 * The per-channel mean and biased variance of `x` `[..., C]` over every other axis, summed as
 * {@linkcode batchNormTrainingKernel} sums (so the same values to the bit), without its output pass.
 */
export function channelMomentsKernel(
  args: { inputs: { x: tf.TensorInfo }; backend: WasmBackend },
): tf.TensorInfo[] {
  const { x } = args.inputs;
  const { backend } = args;
  const c = channelsOf(x);
  const [mean, variance] = [backend.makeOutput([c], "float32"), backend.makeOutput([c], "float32")];
  // bn_statistics also makes batch norm's scale and offset, unused here, from a gamma and a beta: it reads
  // them from the mean and variance it has just written for the channel.
  batchStatistics(backend, x, mean, variance, [address(backend, mean), address(backend, variance), 1e-3]);
  return [mean, variance];
}

/**
 * The batch's per-channel statistics of `x` into `mean` and `variance`: sums around the first row, chunk by
 * chunk (`bn_sums`), then `bn_statistics` over all chunks' totals, which also derives batch norm's `scale`
 * and `offset` from `affine` (the addresses of gamma and beta, and epsilon); `after` runs in the same
 * scratch, with them.
 */
function batchStatistics(
  backend: WasmBackend,
  x: tf.TensorInfo,
  mean: tf.TensorInfo,
  variance: tf.TensorInfo,
  affine: [gamma: number, beta: number, epsilon: number],
  after?: (pass: { rows: number; size: number }, scale: number, offset: number) => void,
): void {
  const c = channelsOf(x);
  const rows = c === 0 ? 0 : sizeOf(x) / c;
  const at = (t: tf.TensorInfo, first = 0) => address(backend, t) + 4 * first * c;
  const pass = rowChunks(rows, c);
  withScratch(backend, scratchBytes(c, 2, pass.chunks), (scratch) => {
    const [scale, offset] = floatArrays(scratch, c, 2, pass.chunks);
    rowPass(backend, pass, c, "bn_sums", (first, end, chunk) => [
      at(x, first),
      end - first,
      c,
      at(x),
      partOf(scratch, c, chunk),
      totalsOf(scratch, c, chunk),
    ]);
    const [gamma, beta, epsilon] = affine;
    simdKernels(backend).bn_statistics(
      rows,
      c,
      at(x),
      totalsOf(scratch, c, 0),
      pass.chunks,
      chunkBytes(c) / 8,
      gamma,
      beta,
      epsilon,
      at(mean),
      at(variance),
      scale,
      offset,
    );
    after?.(pass, scale, offset);
  });
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
  const at = (t: tf.TensorInfo, first = 0) => address(backend, t) + 4 * first * c;
  const relu6 = args.attrs.relu6 ? 1 : 0;
  const pass = rowChunks(rows, c);
  withScratch(backend, scratchBytes(c, 4, pass.chunks), (scratch) => {
    const [zscale, a, b, offset] = floatArrays(scratch, c, 4, pass.chunks);
    simd.bn_scales(c, at(gamma), at(variance), args.attrs.epsilon, zscale);
    rowPass(backend, pass, c, "bn_grad_sums", (first, end, chunk) => [
      at(dy, first),
      at(x, first),
      end - first,
      c,
      at(mean),
      zscale,
      at(beta),
      relu6,
      partOf(scratch, c, chunk),
      totalsOf(scratch, c, chunk),
    ]);
    simd.bn_grad_coefficients(
      rows,
      c,
      totalsOf(scratch, c, 0),
      pass.chunks,
      chunkBytes(c) / 8,
      at(variance),
      at(gamma),
      args.attrs.epsilon,
      a,
      b,
      offset,
      at(dgamma),
      at(dbeta),
    );
    rowPass(backend, pass, c, "bn_grad_apply", (first, end) => [
      at(dy, first),
      at(x, first),
      at(dx, first),
      end - first,
      c,
      at(mean),
      zscale,
      at(beta),
      a,
      b,
      offset,
      relu6,
    ]);
  });
  return [dx, dgamma, dbeta];
}

// ---- A batch norm's passes in chunks of rows, shared with the kernel helper thread -----------------------

// Scratch: per chunk, float32 partial sums [2c] and float64 totals [2c], each on cache lines of its own, then
// `arrays` float32 arrays of c (the coefficients every chunk reads).
const LINE = 64;
const lines = (bytes: number) => Math.ceil(bytes / LINE) * LINE;
const chunkBytes = (c: number) => lines(8 * c) + lines(16 * c);
const scratchBytes = (c: number, arrays: number, chunks: number) =>
  LINE + chunks * chunkBytes(c) + arrays * lines(4 * c);
const base = (scratch: number) => Math.ceil(scratch / LINE) * LINE;
const partOf = (scratch: number, c: number, chunk: number) => base(scratch) + chunk * chunkBytes(c);
const totalsOf = (scratch: number, c: number, chunk: number) => partOf(scratch, c, chunk) + lines(8 * c);
const floatArrays = (scratch: number, c: number, arrays: number, chunks: number) =>
  Array.from({ length: arrays }, (_, i) => base(scratch) + chunks * chunkBytes(c) + i * lines(4 * c));

/** How a batch norm's `rows` rows of `c` channels are cut into chunks: the same for every pass of a call. */
function rowChunks(rows: number, c: number): { rows: number; size: number; chunks: number } {
  const size = chunkSize(rows, 1, c);
  return { rows, size, chunks: Math.ceil(rows / size) };
}

/**
 * One pass of `kernel` over the rows, chunk by chunk (`argsOf(first, end, chunk)` gives a chunk's
 * arguments), shared with the helper thread when large enough.
 */
function rowPass(
  backend: WasmBackend,
  pass: { rows: number; size: number },
  c: number,
  kernel: "bn_sums" | "bn_apply" | "bn_grad_sums" | "bn_grad_apply",
  argsOf: (first: number, end: number, chunk: number) => number[],
): void {
  runChunked(backend, kernel, argsOf, pass.rows, pass.size, pass.rows * c);
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
