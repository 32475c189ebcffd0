import * as tf from "@tensorflow/tfjs";
// Registers the wasm backend and its stock kernels, which the ones below build on or stand in for.
import "@tensorflow/tfjs-backend-wasm";
import {
  batchNormTrainingGradKernel,
  batchNormTrainingKernel,
  channelMomentsKernel,
  fusedBatchNormInference,
  relu6GradKernel,
  relu6Kernel,
} from "./_wasm_batch_norm.ts";
import { conv2dBackpropFilter, conv2dBackpropInput } from "./_wasm_conv2d_grads.ts";
import { depthwiseBackpropFilter, depthwiseBackpropInput } from "./_wasm_depthwise_grads.ts";
import { sharedCast, sharedIdentity } from "./_wasm_identity.ts";
import { fastComparison, fastLogicalAnd, fastSelect } from "./_wasm_masks.ts";
import { leadingAxesReduction } from "./_wasm_reductions.ts";
import { blockGather } from "./_wasm_gather.ts";
import { blockSlice } from "./_wasm_slice.ts";
import { blockTile } from "./_wasm_tile.ts";
import { momentumUpdateKernel, movingAverageKernel } from "./_wasm_updates.ts";
import {
  BATCH_NORM_TRAINING,
  BATCH_NORM_TRAINING_GRAD,
  CHANNEL_MOMENTS,
  installKernels,
  MOMENTUM_UPDATE,
  MOVING_AVERAGE,
  type ProvidedKernel,
  RELU6,
  RELU6_GRAD,
} from "./training_ops.ts";

type Provided = ProvidedKernel;

let provided: Provided[] | undefined;

// Built once, capturing the stock kernels before they are replaced, so that registering is idempotent.
function trainingKernels(): Provided[] {
  if (provided) return provided;
  // A replacement falls back to the stock kernel for what it does not handle, and keeps its setup (which the
  // engine runs each time the backend is set).
  const stock = (name: string) => {
    const config = tf.getKernel(name, "wasm");
    if (!config) throw new Error(`wasm training: tfjs-backend-wasm registered no '${name}' kernel`);
    return config;
  };
  const replacing = (name: string, make: (stock: tf.KernelFunc) => tf.KernelFunc): Provided => {
    const { kernelFunc, setupFunc } = stock(name);
    return { name, kernelFunc: make(kernelFunc), setupFunc };
  };
  const stockSum = stock(tf.Sum).kernelFunc;
  const kernel = (f: unknown) => f as tf.KernelFunc;
  // The gradients are composed from kernels the wasm backend runs in XNNPACK (conv, matmul, multiply,
  // pooling), called directly on the backend (no engine tensors, nothing on a gradient tape), joined by
  // single-pass copies on the heap where the stock data-movement kernels are slow.
  provided = [
    // tfjs-backend-wasm has none of these three.
    { name: tf.Conv2DBackpropFilter, kernelFunc: kernel(conv2dBackpropFilter) },
    { name: tf.DepthwiseConv2dNativeBackpropInput, kernelFunc: kernel(depthwiseBackpropInput) },
    { name: tf.DepthwiseConv2dNativeBackpropFilter, kernelFunc: kernel(depthwiseBackpropFilter) },
    // The fused training ops of ./training_ops.ts: batch norm with batch statistics and ReLU6, one pass or
    // two each way instead of a score of kernels.
    { name: BATCH_NORM_TRAINING, kernelFunc: kernel(batchNormTrainingKernel) },
    { name: BATCH_NORM_TRAINING_GRAD, kernelFunc: kernel(batchNormTrainingGradKernel) },
    { name: RELU6, kernelFunc: kernel(relu6Kernel) },
    { name: RELU6_GRAD, kernelFunc: kernel(relu6GradKernel) },
    { name: MOMENTUM_UPDATE, kernelFunc: kernel(momentumUpdateKernel) },
    { name: MOVING_AVERAGE, kernelFunc: kernel(movingAverageKernel) },
    { name: CHANNEL_MOMENTS, kernelFunc: kernel(channelMomentsKernel) },
    // The rest replace stock kernels that are scalar loops or whole-input copies, slow enough to dominate a
    // training step: the conv input gradient, the reductions and tiling in every batch-norm gradient, the
    // slice that is the gradient of zero padding, the gather that makes each training batch, the copy behind
    // every tensor saved for a gradient, and the masks of the ReLU6 gradient.
    { name: tf.Conv2DBackpropInput, kernelFunc: kernel(conv2dBackpropInput) },
    replacing(tf.FusedBatchNorm, fusedBatchNormInference),
    replacing(tf.Sum, (sum) => leadingAxesReduction("Sum", sum, stockSum)),
    replacing(tf.Mean, (mean) => leadingAxesReduction("Mean", mean, stockSum)),
    replacing(tf.Tile, blockTile),
    replacing(tf.Slice, blockSlice),
    replacing(tf.GatherV2, blockGather),
    replacing(tf.Identity, sharedIdentity),
    replacing(tf.Cast, sharedCast),
    replacing(tf.GreaterEqual, (stock) => fastComparison("GreaterEqual", stock)),
    replacing(tf.LessEqual, (stock) => fastComparison("LessEqual", stock)),
    replacing(tf.LogicalAnd, fastLogicalAnd),
    replacing(tf.Select, fastSelect),
  ];
  return provided;
}

/**
 * Registers, for the tfjs `wasm` backend, the convolution gradient kernels it lacks (Conv2DBackpropFilter,
 * DepthwiseConv2dNativeBackpropInput, DepthwiseConv2dNativeBackpropFilter), so `tf.grad`,
 * `tf.variableGrads` and `optimizer.minimize` work through conv2d and depthwiseConv2d layers on wasm,
 * matching the `cpu` backend to float32 rounding. It also replaces stock wasm kernels that are correct but
 * too slow for training (Conv2DBackpropInput, FusedBatchNorm, Sum, Mean, Tile, Slice, GatherV2, Identity, Cast, GreaterEqual, LessEqual,
 * LogicalAnd, Select) with faster equivalents, which hand cases they do not cover back to the stock kernel.
 *
 * It also registers the fused training kernels of `./training_ops.ts` (batch norm with batch statistics and
 * ReLU6, forward and backward), which `useFusedTrainingOps` (src/model) switches layers to. The filter
 * gradients and the fused kernels are WebAssembly SIMD loops (`./simd/training_kernels.c`) run on the
 * backend's heap.
 *
 * The gradients support NHWC, any strides, `same`/`valid`/explicit padding, dilation 1 and depthwise channel
 * multiplier 1; anything else throws an error naming the kernel and the attribute. Safe to call more than
 * once, before or after the wasm backend is initialised.
 *
 * @returns The names of the kernels it provides.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { registerWasmTrainingKernels } from "./wasm_training.ts";
 *
 * registerWasmTrainingKernels();
 * await tf.setBackend("wasm");
 * const w = tf.variable(tf.randomNormal<tf.Rank.R4>([3, 3, 2, 4]));
 * const x = tf.randomNormal<tf.Rank.R4>([1, 8, 8, 2]);
 * const { grads } = tf.variableGrads(() => tf.conv2d(x, w, 2, "same").square().sum() as tf.Scalar, [w]);
 * console.log(grads[w.name].shape); // [3, 3, 2, 4]
 * ```
 */
export function registerWasmTrainingKernels(): string[] {
  return installKernels("wasm", trainingKernels());
}
