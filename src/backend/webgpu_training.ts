import * as tf from "@tensorflow/tfjs";
// Registers the webgpu backend and its stock kernels, which the ones below build on or stand in for.
import "@tensorflow/tfjs-backend-webgpu";
import {
  batchNormTrainingGradKernel,
  batchNormTrainingKernel,
  relu6GradKernel,
  relu6Kernel,
} from "./_webgpu_batch_norm.ts";
import { conv2dBackpropFilter } from "./_webgpu_conv_grads.ts";
import { depthwiseBackpropFilter, depthwiseBackpropInput } from "./_webgpu_depthwise_grads.ts";
import { pointwiseConv2d, pointwiseConv2dBackpropInput } from "./_webgpu_pointwise_conv.ts";
import { momentumUpdateKernel, movingAverageKernel } from "./_webgpu_updates.ts";
import {
  BATCH_NORM_TRAINING,
  BATCH_NORM_TRAINING_GRAD,
  installKernels,
  MOMENTUM_UPDATE,
  MOVING_AVERAGE,
  type ProvidedKernel,
  RELU6,
  RELU6_GRAD,
} from "./training_ops.ts";

const kernel = (f: unknown) => f as tf.KernelFunc;

type Provided = ProvidedKernel;

// Replacements of stock kernels wrap the stock one (captured once, so registering stays idempotent) and hand
// it the cases they do not cover.
let stock: Map<string, tf.KernelConfig> | undefined;
function replacing(name: string, make: (stock: tf.KernelFunc) => tf.KernelFunc): Provided {
  stock ??= new Map();
  if (!stock.has(name)) {
    const config = tf.getKernel(name, "webgpu");
    if (!config) throw new Error(`webgpu training: tfjs-backend-webgpu registered no '${name}' kernel`);
    stock.set(name, config);
  }
  const { kernelFunc, setupFunc } = stock.get(name)!;
  return { name, kernelFunc: make(kernelFunc), setupFunc };
}

let provided: Provided[] | undefined;
const kernels = (): Provided[] =>
  provided ??= [
    ...KERNELS,
    replacing(tf.Conv2DBackpropFilter, conv2dBackpropFilter),
    replacing(tf.DepthwiseConv2dNativeBackpropInput, depthwiseBackpropInput),
    replacing(tf.DepthwiseConv2dNativeBackpropFilter, depthwiseBackpropFilter),
    replacing(tf.Conv2D, pointwiseConv2d),
    replacing(tf.Conv2DBackpropInput, pointwiseConv2dBackpropInput),
  ];

const KERNELS: Provided[] = [
  { name: BATCH_NORM_TRAINING, kernelFunc: kernel(batchNormTrainingKernel) },
  { name: BATCH_NORM_TRAINING_GRAD, kernelFunc: kernel(batchNormTrainingGradKernel) },
  { name: RELU6, kernelFunc: kernel(relu6Kernel) },
  { name: RELU6_GRAD, kernelFunc: kernel(relu6GradKernel) },
  { name: MOMENTUM_UPDATE, kernelFunc: kernel(momentumUpdateKernel) },
  { name: MOVING_AVERAGE, kernelFunc: kernel(movingAverageKernel) },
];

/**
 * Registers, for the tfjs `webgpu` backend, the fused training kernels of `./training_ops.ts` as WGSL
 * compute shaders: batch norm with batch statistics (with the ReLU6 after it fused) one dispatch forward and
 * one backward, ReLU6 and its gradient, the momentum-SGD update and the running-statistics update one
 * dispatch each; and it replaces the stock Conv2DBackpropFilter, whose 1x1 case it computes as one matrix
 * product. `useFusedTrainingOps` (src/model) and `FusedMomentumOptimizer` (src/adapt) then run on
 * them, where stock tfjs-backend-webgpu runs some twenty dispatches per batch norm each way and four per
 * variable update. Results match the `cpu` backend to float32 rounding. Safe to call more than once.
 *
 * @returns The names of the kernels it registers.
 *
 * @example
 * ```ts
 * import { registerWebgpuTrainingKernels } from "./webgpu_training.ts";
 * console.log(registerWebgpuTrainingKernels().length); // 11
 * ```
 */
export function registerWebgpuTrainingKernels(): string[] {
  return installKernels("webgpu", kernels());
}

/**
 * Removes what {@linkcode registerWebgpuTrainingKernels} registered, so the `webgpu` backend runs the stock
 * tfjs-backend-webgpu graph again (the fused ops fall back to tfjs ops): the benchmark's baseline.
 *
 * @example
 * ```ts
 * import { registerWebgpuTrainingKernels, unregisterWebgpuTrainingKernels } from "./webgpu_training.ts";
 * registerWebgpuTrainingKernels();
 * console.log(unregisterWebgpuTrainingKernels()); // 11
 * ```
 */
export function unregisterWebgpuTrainingKernels(): number {
  let removed = 0;
  for (const { name, kernelFunc } of kernels()) {
    if (tf.getKernel(name, "webgpu")?.kernelFunc !== kernelFunc) continue;
    tf.unregisterKernel(name, "webgpu");
    const original = stock?.get(name);
    if (original) tf.registerKernel(original);
    removed++;
  }
  return removed;
}
