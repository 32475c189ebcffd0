import * as tf from "@tensorflow/tfjs";
import { batchNormTraining, movingAverage, relu6 } from "../backend/training_ops.ts";

// The parts of tfjs-layers' BatchNormalization, ReLU and Activation layers that a training call reads.
type LayerVariable = { read(): tf.Tensor; write(value: tf.Tensor): void };
type BatchNormLayer = tf.layers.Layer & {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: LayerVariable;
  beta: LayerVariable;
  movingMean: LayerVariable;
  movingVariance: LayerVariable;
};
type Conv2DLayer = tf.layers.Layer & {
  rank: number;
  kernel: LayerVariable;
  bias: LayerVariable | null;
  strides: [number, number];
  padding: string;
  dataFormat: string;
  dilationRate: [number, number];
  activation: { apply(x: tf.Tensor): tf.Tensor; getClassName(): string };
};
type DepthwiseLayer = tf.layers.Layer & {
  depthwiseKernel: LayerVariable;
  bias: LayerVariable | null;
  strides: [number, number];
  padding: string;
  dataFormat: string;
  activation: { apply(x: tf.Tensor): tf.Tensor };
};
type PaddingLayer = tf.layers.Layer & { padding: [[number, number], [number, number]]; dataFormat: string };
type Call = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];
type CallableLayer = tf.layers.Layer & { call: Call };

const FUSED = Symbol("fusedTrainingOps");

// Outputs of a batch norm that already applied the ReLU6 after it; that ReLU6 passes them through.
const clipped = new WeakSet<tf.Tensor>();

type GraphLayer = tf.layers.Layer & {
  inboundNodes: unknown[];
  outboundNodes: { outboundLayer?: tf.layers.Layer }[];
};

/** The ReLU6 layer that alone consumes `layer`'s single output inside `model`, if there is one. */
function soleRelu6After(model: tf.LayersModel, layer: tf.layers.Layer): tf.layers.Layer | undefined {
  const next = soleConsumer(model, layer);
  return next && isRelu6(next) ? next : undefined;
}

/** The layer that alone consumes `layer`'s single output inside `model`, if there is one. */
function soleConsumer(model: tf.LayersModel, layer: tf.layers.Layer): GraphLayer | undefined {
  const l = layer as GraphLayer;
  if (l.inboundNodes?.length !== 1 || l.outboundNodes?.length !== 1) return undefined;
  const next = l.outboundNodes[0].outboundLayer as GraphLayer | undefined;
  if (!next || next.inboundNodes?.length !== 1 || !model.layers.includes(next)) return undefined;
  return next;
}

// Outputs of a ZeroPadding2D that left its padding to the valid convolution after it, with that padding.
const paddingOwed = new WeakMap<tf.Tensor, [[number, number], [number, number]]>();

/**
 * Whether `layer` is a ZeroPadding2D whose output only feeds a channels-last Conv2D or DepthwiseConv2D with
 * valid padding: that convolution can pad its input itself (explicit padding), which saves a padded copy of
 * the activations forward and a slice of their gradient backward.
 */
function paddingFoldsInto(model: tf.LayersModel, layer: tf.layers.Layer): boolean {
  if (layer.getClassName() !== "ZeroPadding2D" || (layer as PaddingLayer).dataFormat !== "channelsLast") {
    return false;
  }
  const next = soleConsumer(model, layer) as
    | (GraphLayer & { padding?: string; dataFormat?: string })
    | undefined;
  return !!next && ["Conv2D", "DepthwiseConv2D"].includes(next.getClassName()) && next.padding === "valid" &&
    next.dataFormat === "channelsLast";
}

/** A convolution's padding for input `x`: the padding a folded ZeroPadding2D owes it, or the layer's own. */
function paddingFor(
  x: tf.Tensor,
  own: string,
): "same" | "valid" | [[0, 0], [number, number], [number, number], [0, 0]] {
  const owed = paddingOwed.get(x);
  return owed && own === "valid" ? [[0, 0], owed[0], owed[1], [0, 0]] : own as "same" | "valid";
}

const single = (inputs: tf.Tensor | tf.Tensor[]) => (Array.isArray(inputs) ? inputs[0] : inputs);

function fuseBatchNorm(layer: BatchNormLayer, original: Call, relu6After: boolean): Call {
  return (inputs, kwargs) => {
    const x = single(inputs);
    const axis = layer.axis >= 0 ? layer.axis : layer.axis + x.rank;
    if (!kwargs?.training || axis !== x.rank - 1 || !layer.center || !layer.scale) {
      return original.call(layer, inputs, kwargs);
    }
    return tf.tidy(() => {
      const [y, mean, variance] = batchNormTraining(x, layer.gamma.read(), layer.beta.read(), layer.epsilon, {
        relu6: relu6After,
      });
      if (relu6After) clipped.add(y);
      // The running statistics move as tfjs-layers moves them: value - (value - batch) * (1 - momentum).
      for (const [variable, batch] of [[layer.movingMean, mean], [layer.movingVariance, variance]] as const) {
        variable.write(movingAverage(variable.read(), batch, layer.momentum));
      }
      return y;
    });
  };
}

// tfjs-layers' Conv2D always goes through tf.fused.conv2d, whose gradient computes the input gradient even
// when nothing needs it (the first layer's, with respect to the images, is one of the costliest kernels of a
// step). tf.conv2d's gradient is computed per input, only where it leads to a variable.
function unfuseConv2D(layer: Conv2DLayer, original: Call): Call {
  return (inputs, kwargs) => {
    const plain = layer.rank === 2 && layer.dataFormat === "channelsLast" &&
      (layer.padding === "same" || layer.padding === "valid");
    if (!kwargs?.training || !plain) return original.call(layer, inputs, kwargs);
    return tf.tidy(() => {
      const x = single(inputs) as tf.Tensor4D;
      const kernel = layer.kernel.read() as tf.Tensor4D;
      const pad = paddingFor(x, layer.padding);
      let y: tf.Tensor = tf.conv2d(x, kernel, layer.strides, pad, "NHWC", layer.dilationRate);
      if (layer.bias) y = tf.add(y, layer.bias.read());
      return layer.activation.apply(y);
    });
  };
}

// A valid DepthwiseConv2D after a folded ZeroPadding2D pads its input itself, in training.
function paddedDepthwise(layer: DepthwiseLayer, original: Call): Call {
  return (inputs, kwargs) => {
    const x = single(inputs) as tf.Tensor4D;
    if (!kwargs?.training || !paddingOwed.has(x)) return original.call(layer, inputs, kwargs);
    return tf.tidy(() => {
      const kernel = layer.depthwiseKernel.read() as tf.Tensor4D;
      let y: tf.Tensor = tf.depthwiseConv2d(x, kernel, layer.strides, paddingFor(x, layer.padding), "NHWC");
      if (layer.bias) y = tf.add(y, layer.bias.read());
      return layer.activation.apply(y);
    });
  };
}

// A ZeroPadding2D whose convolution pads for it passes its input on, in training: a new tensor on the same
// data (tfjs-layers would copy an input returned as is), marked with the padding it owes.
function foldedPadding(layer: PaddingLayer, original: Call): Call {
  return (inputs, kwargs) => {
    if (!kwargs?.training) return original.call(layer, inputs, kwargs);
    const passed = tf.clone(single(inputs));
    paddingOwed.set(passed, layer.padding);
    return passed;
  };
}

function isRelu6(layer: tf.layers.Layer): boolean {
  const l = layer as tf.layers.Layer & { maxValue?: number; activation?: { getClassName(): string } };
  if (layer.getClassName() === "ReLU") return l.maxValue === 6;
  if (layer.getClassName() === "Activation") return l.activation?.getClassName() === "relu6";
  return false;
}

/**
 * Makes `model`'s BatchNormalization layers (channels last, with scale and offset) and its ReLU6 layers
 * compute in training mode with the fused ops of `src/backend/training_ops.ts`: one kernel forward and one
 * backward each on wasm and webgpu, instead of the score of small kernels tfjs-layers composes; a batch norm
 * whose output only feeds a ReLU6 applies that ReLU6 itself, in the same passes. Its Conv2D layers train
 * through `tf.conv2d`, whose gradient skips the input gradient nothing needs; a ZeroPadding2D that only
 * feeds a valid convolution leaves the padding to that convolution (explicit padding), with no padded copy
 * forward and no slice of the gradient backward. The results and the
 * running-statistics updates are those of tfjs-layers to float32 rounding; calls with `training: false`
 * and other layers are untouched. Idempotent; returns how many layers it changed.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { useFusedTrainingOps } from "./fused_training_layers.ts";
 * const m = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] }), tf.layers.batchNormalization()] });
 * console.log(useFusedTrainingOps(m)); // 1
 * ```
 */
export function useFusedTrainingOps(model: tf.LayersModel): number {
  let changed = 0;
  for (const layer of model.layers as CallableLayer[]) {
    if ((layer as unknown as Record<symbol, boolean>)[FUSED]) continue;
    const original = layer.call;
    if (layer.getClassName() === "BatchNormalization") {
      const relu6After = soleRelu6After(model, layer) !== undefined;
      layer.call = fuseBatchNorm(layer as unknown as BatchNormLayer, original, relu6After);
    } else if (layer.getClassName() === "Conv2D") {
      layer.call = unfuseConv2D(layer as unknown as Conv2DLayer, original);
    } else if (
      layer.getClassName() === "DepthwiseConv2D" && (layer as unknown as DepthwiseLayer).padding === "valid"
    ) {
      layer.call = paddedDepthwise(layer as unknown as DepthwiseLayer, original);
    } else if (paddingFoldsInto(model, layer)) {
      layer.call = foldedPadding(layer as unknown as PaddingLayer, original);
    } else if (isRelu6(layer)) {
      // After a batch norm that clipped already, in training, the ReLU6 is the identity (applying it again
      // would change nothing, gradient included, but cost a pass each way).
      layer.call = (inputs, kwargs) => {
        const x = single(inputs);
        return kwargs?.training && clipped.has(x) ? x : tf.tidy(() => relu6(x));
      };
    } else if (layer instanceof tf.LayersModel) {
      changed += useFusedTrainingOps(layer);
      continue;
    } else continue;
    (layer as unknown as Record<symbol, boolean>)[FUSED] = true;
    changed++;
  }
  return changed;
}
