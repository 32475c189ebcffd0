import * as tf from "@tensorflow/tfjs";

/** Kernel names of the fused training ops; a backend that registers them runs each as one kernel. */
/** A kernel a backend's training module provides: a fused op of this file, or a replacement of a stock one. */
export type ProvidedKernel = { name: string; kernelFunc: tf.KernelFunc; setupFunc?: tf.KernelSetupFunc };

/**
 * Registers `kernels` for `backendName`, replacing what is registered under their names; a kernel already
 * registered (the same function) is left alone, so calling it again is free. Returns their names.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { installKernels } from "./training_ops.ts";
 * const kernelFunc = () => tf.scalar(0) as unknown as tf.TensorInfo;
 * console.log(installKernels("cpu", [{ name: "DaftExampleKernel", kernelFunc }])); // ["DaftExampleKernel"]
 * ```
 */
export function installKernels(backendName: string, kernels: ProvidedKernel[]): string[] {
  for (const { name, kernelFunc, setupFunc } of kernels) {
    const existing = tf.getKernel(name, backendName);
    if (existing?.kernelFunc === kernelFunc) continue;
    if (existing) tf.unregisterKernel(name, backendName);
    tf.registerKernel({ kernelName: name, backendName, kernelFunc, setupFunc });
  }
  return kernels.map((k) => k.name);
}

export const BATCH_NORM_TRAINING = "DaftBatchNormTraining";
export const BATCH_NORM_TRAINING_GRAD = "DaftBatchNormTrainingGrad";
export const RELU6 = "DaftRelu6";
export const RELU6_GRAD = "DaftRelu6Grad";
export const MOMENTUM_UPDATE = "DaftMomentumUpdate";
export const MOVING_AVERAGE = "DaftMovingAverage";
export const CHANNEL_MOMENTS = "DaftChannelMoments";

const hasKernel = (name: string) => tf.getKernel(name, tf.getBackend()) !== undefined;

let gradientsRegistered = false;

function registerGradients(): void {
  if (gradientsRegistered) return;
  gradientsRegistered = true;
  tf.registerGradient({
    kernelName: BATCH_NORM_TRAINING,
    inputsToSave: ["x", "gamma", "beta"],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [x, gamma, beta, mean, variance] = saved;
      const dy = Array.isArray(dys) ? dys[0] : dys;
      // One kernel gives all three gradients, run here: the engine calls each input's function in a tidy of
      // its own, which would free the other two.
      const [dx, dgamma, dbeta] = tf.engine().runKernel(
        BATCH_NORM_TRAINING_GRAD,
        { dy, x, mean, variance, gamma, beta },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
    },
  });
  tf.registerGradient({
    kernelName: RELU6,
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => ({
      x: () => tf.engine().runKernel(RELU6_GRAD, { dy: dy as tf.Tensor, x: saved[0] }) as tf.Tensor,
    }),
  });
}

/**
 * Batch norm with the batch's statistics over every axis but the last, as `tfjs-layers` computes it in
 * training: `[y, mean, variance]`, `variance` biased; with `relu6`, `y` is then clipped to [0, 6] with the
 * gradient of tfjs-layers' ReLU(maxValue 6) (see {@linkcode relu6}). Differentiable in `x`, `gamma` and
 * `beta`. One fused kernel forward and one backward where the backend registers
 * {@linkcode BATCH_NORM_TRAINING} (wasm and webgpu, after `registerWasmTrainingKernels` or
 * `registerWebgpuTrainingKernels`), tfjs's moments and batchNorm elsewhere.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { batchNormTraining } from "./training_ops.ts";
 * const [y, mean, variance] = batchNormTraining(tf.tensor2d([[1, 2], [3, 6]]), tf.ones([2]), tf.zeros([2]), 1e-3);
 * console.log(mean.arraySync(), variance.arraySync()); // [2, 4] [1, 4]
 * ```
 */
export function batchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
  options: { relu6?: boolean } = {},
): [tf.Tensor, tf.Tensor1D, tf.Tensor1D] {
  const relu6Fused = options.relu6 ?? false;
  if (x.dtype === "float32" && hasKernel(BATCH_NORM_TRAINING)) {
    registerGradients();
    return tf.engine().runKernel(BATCH_NORM_TRAINING, { x, gamma, beta }, { epsilon, relu6: relu6Fused }) as [
      tf.Tensor,
      tf.Tensor1D,
      tf.Tensor1D,
    ];
  }
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, [...Array(x.rank - 1).keys()]);
    const y = tf.batchNorm(x, mean, variance, beta, gamma, epsilon);
    return [relu6Fused ? relu6(y) : y, mean as tf.Tensor1D, variance as tf.Tensor1D];
  });
}

/**
 * Per-channel mean and biased variance of `x` over every axis but the last (what batch norm measures), in
 * one pass over `x` where the backend registers {@linkcode CHANNEL_MOMENTS} (wasm), tfjs's `moments`
 * elsewhere. Not differentiable: for statistics passes, not for training.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { channelMoments } from "./training_ops.ts";
 * const { mean, variance } = channelMoments(tf.tensor2d([[1, 2], [3, 6]]));
 * console.log(mean.arraySync(), variance.arraySync()); // [2, 4] [1, 4]
 * ```
 */
export function channelMoments(x: tf.Tensor): { mean: tf.Tensor1D; variance: tf.Tensor1D } {
  if (x.dtype === "float32" && hasKernel(CHANNEL_MOMENTS)) {
    const [mean, variance] = tf.engine().runKernel(CHANNEL_MOMENTS, { x }, {}) as tf.Tensor1D[];
    return { mean, variance };
  }
  return tf.moments(x, [...Array(x.rank - 1).keys()]) as { mean: tf.Tensor1D; variance: tf.Tensor1D };
}

/**
 * `min(max(x, 0), 6)` with the gradient `tfjs-layers`' ReLU(maxValue 6) has (`dy` where `0 < x <= 6`), as
 * one kernel each way where the backend registers {@linkcode RELU6}, as relu then clip elsewhere.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { relu6 } from "./training_ops.ts";
 * console.log(relu6(tf.tensor1d([-1, 3, 9])).arraySync()); // [0, 3, 6]
 * ```
 */
export function relu6(x: tf.Tensor): tf.Tensor {
  if (x.dtype === "float32" && hasKernel(RELU6)) {
    registerGradients();
    return tf.engine().runKernel(RELU6, { x }) as tf.Tensor;
  }
  return tf.tidy(() => tf.clipByValue(tf.relu(x), 0, 6));
}

/**
 * One step of SGD with momentum for one variable, as tfjs' MomentumOptimizer takes it (no Nesterov):
 * `[value - learningRate * accumulation', accumulation']` with `accumulation' = momentum * accumulation +
 * gradient`. One kernel where the backend registers {@linkcode MOMENTUM_UPDATE} (wasm, webgpu), four elsewhere. Not
 * differentiable (an update, not a layer).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { momentumUpdate } from "./training_ops.ts";
 * const [value, accumulation] = momentumUpdate(tf.ones([2]), tf.zeros([2]), tf.tensor1d([1, -1]), 0.5, 0.9);
 * console.log(value.arraySync(), accumulation.arraySync()); // [0.5, 1.5] [1, -1]
 * ```
 */
export function momentumUpdate(
  value: tf.Tensor,
  accumulation: tf.Tensor,
  gradient: tf.Tensor,
  learningRate: number,
  momentum: number,
): [tf.Tensor, tf.Tensor] {
  if (value.dtype === "float32" && hasKernel(MOMENTUM_UPDATE)) {
    return tf.engine().runKernel(MOMENTUM_UPDATE, { value, accumulation, gradient }, {
      learningRate,
      momentum,
    }) as [tf.Tensor, tf.Tensor];
  }
  return tf.tidy(() => {
    const next = tf.add(tf.mul(tf.scalar(momentum), accumulation), gradient);
    return [tf.add(tf.mul(tf.scalar(-learningRate), next), value), next];
  });
}

/**
 * A batch norm's running statistic after one training batch, as tfjs-layers moves it:
 * `value - (value - batch) * (1 - momentum)`. One kernel where the backend registers
 * {@linkcode MOVING_AVERAGE} (wasm, webgpu), three elsewhere.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { movingAverage } from "./training_ops.ts";
 * console.log(movingAverage(tf.tensor1d([1]), tf.tensor1d([3]), 0.75).arraySync()); // [1.5]
 * ```
 */
export function movingAverage(value: tf.Tensor, batch: tf.Tensor, momentum: number): tf.Tensor {
  if (value.dtype === "float32" && hasKernel(MOVING_AVERAGE)) {
    return tf.engine().runKernel(MOVING_AVERAGE, { value, batch }, { momentum }) as tf.Tensor;
  }
  return tf.tidy(() => tf.sub(value, tf.mul(tf.sub(value, batch), 1 - momentum)));
}
