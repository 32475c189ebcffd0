import * as tf from "@tensorflow/tfjs";
import { RuntimeError } from "../errors.ts";
import { type BatchNormWeights, foldBatchNorm } from "./fold_batch_norm.ts";

type Layer = tf.layers.Layer;
type SymbolicTensor = tf.SymbolicTensor;
type GraphNode = Layer["inboundNodes"][number];
type Activation = "linear" | "relu" | "relu6";
type Padding = "same" | "valid" | [[0, 0], [number, number], [number, number], [0, 0]];

/** One step of an {@linkcode InferencePlan}, as {@linkcode InferencePlan.steps} lists it. */
export interface InferenceStep {
  /** `conv2d` and `depthwiseConv2d` are fused kernels (bias and activation included); `layer` calls the layer. */
  op: "conv2d" | "depthwiseConv2d" | "layer";
  /** The model's layers this step computes, in order: e.g. `["Conv1_pad", "Conv1", "bn_Conv1", "Conv1_relu"]`. */
  layers: string[];
  /** The fused activation of a convolution step. */
  activation?: Activation;
}

interface ConvStep extends InferenceStep {
  op: "conv2d" | "depthwiseConv2d";
  kernel: "FusedConv2D" | "FusedDepthwiseConv2D";
  input: number;
  output: number;
  filter: tf.Tensor4D;
  bias?: tf.Tensor1D;
  attrs: {
    strides: [number, number];
    pad: Padding;
    dataFormat: "NHWC";
    dilations: [number, number];
    activation: Activation;
  };
  activation: Activation;
}

interface LayerStep extends InferenceStep {
  op: "layer";
  layer: Layer;
  inputs: number[];
  outputs: number[];
}

type Step = ConvStep | LayerStep;

const CONVOLUTIONS: Record<string, { op: ConvStep["op"]; kernel: ConvStep["kernel"]; weight: string }> = {
  Conv2D: { op: "conv2d", kernel: "FusedConv2D", weight: "kernel" },
  DepthwiseConv2D: { op: "depthwiseConv2d", kernel: "FusedDepthwiseConv2D", weight: "depthwise_kernel" },
};

const pair = (v: number | number[]): [number, number] => Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];

// A layer's weights by role ("kernel", "bias", "gamma", ...), the last part of each weight's name.
function weightsByRole(layer: Layer): Map<string, tf.Tensor> {
  return new Map(layer.weights.map((w) => [w.originalName.split("/").pop()!, w.read()]));
}

// The activation a ReLU, Activation or convolution layer applies, if a fused kernel can apply it.
function fusableActivation(layer: Layer): Activation | undefined {
  const config = layer.getConfig();
  if (layer.getClassName() === "ReLU") {
    return config.maxValue == null ? "relu" : config.maxValue === 6 ? "relu6" : undefined;
  }
  const name = config.activation ?? "linear";
  return ["linear", "relu", "relu6"].includes(name as string) ? name as Activation : undefined;
}

// The eval-mode parameters of a BatchNormalization layer over the last axis of a rank-4 tensor.
function lastAxisBatchNorm(layer: Layer): BatchNormWeights | undefined {
  if (layer.getClassName() !== "BatchNormalization") return undefined;
  const config = layer.getConfig();
  if (config.axis !== -1 && config.axis !== 3) return undefined;
  const w = weightsByRole(layer);
  const [movingMean, movingVariance] = [w.get("moving_mean"), w.get("moving_variance")];
  if (!movingMean || !movingVariance) return undefined;
  return {
    gamma: w.get("gamma") as tf.Tensor1D | undefined,
    beta: w.get("beta") as tf.Tensor1D | undefined,
    movingMean: movingMean as tf.Tensor1D,
    movingVariance: movingVariance as tf.Tensor1D,
    epsilon: config.epsilon as number,
  };
}

/**
 * A LayersModel compiled for inference: each Conv2D or DepthwiseConv2D, with the ZeroPadding2D before it,
 * the BatchNormalization after it and the ReLU/ReLU6 after that, runs as one fused kernel with the batch
 * norm folded into its weights (see {@linkcode foldBatchNorm}); every other layer (Add, pooling, Dense,
 * softmax, layers this plan does not know) is called as `model.predict` calls it, with `training: false`.
 * On the wasm backend a fused step is one XNNPACK operator instead of three or four kernels, each with its
 * own pass over memory.
 *
 * A step is fused only when it gives the same result: a layer joins a chain only when it is the sole
 * consumer of the previous output and that output is not a model output; convolutions must be
 * `channelsLast` with padding `same` or `valid` and a linear, ReLU or ReLU6 activation. The folded
 * weights are computed once, at build, from the weights the model holds then: rebuild the plan after
 * changing them. They are owned by the plan and freed by {@linkcode InferencePlan.dispose}; the model
 * must outlive the plan.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initBackend } from "../backend/init_backend.ts";
 * import { InferencePlan } from "./inference_plan.ts";
 * import { tinyBackbone } from "./tiny.ts";
 * await initBackend("auto");
 * const { model } = await tinyBackbone();
 * const plan = InferencePlan.build(model);
 * const x = tf.randomUniform([2, 28, 28, 1]) as tf.Tensor4D;
 * const [features] = plan.run(x);
 * console.log(features.shape, plan.steps.map((s) => s.layers.join("+"))); // [2, 64], conv1+bn1+relu1, ...
 * plan.dispose();
 * ```
 */
export class InferencePlan {
  readonly #steps: Step[];
  readonly #input: SymbolicTensor;
  readonly #outputs: number[];
  // How many steps read each tensor, for freeing intermediates as soon as their last reader has run.
  readonly #readers: Map<number, number>;
  readonly #owned: tf.Tensor[];
  #disposed = false;

  private constructor(input: SymbolicTensor, outputs: number[], steps: Step[], owned: tf.Tensor[]) {
    this.#input = input;
    this.#outputs = outputs;
    this.#steps = steps;
    this.#owned = owned;
    this.#readers = new Map();
    for (const step of steps) {
      for (const id of step.op === "layer" ? step.inputs : [step.input]) {
        this.#readers.set(id, (this.#readers.get(id) ?? 0) + 1);
      }
    }
  }

  /**
   * Plans a single-input model. Fails with `unsupported_model` for a model with several inputs, or whose
   * graph reaches an input layer that is not the model's input.
   */
  static build(model: tf.LayersModel): InferencePlan {
    if (model.inputs.length !== 1) {
      throw new RuntimeError(
        "invalid",
        "unsupported_model",
        `an inference plan takes a model with one input, '${model.name}' has ${model.inputs.length}`,
      );
    }
    const input = model.inputs[0];
    const order = topologicalNodes(model, input);
    const readers = new Map<number, GraphNode[]>();
    for (const node of order) {
      for (const t of node.inputTensors) readers.set(t.id, [...readers.get(t.id) ?? [], node]);
    }
    const outputIds = new Set(model.outputs.map((t) => t.id));
    // The node that alone reads `t`, when `t` is not also a model output.
    const soleReader = (t: SymbolicTensor): GraphNode | undefined => {
      const r = readers.get(t.id);
      return r?.length === 1 && !outputIds.has(t.id) ? r[0] : undefined;
    };
    // First the fused chains (a chain absorbs the padding node before its convolution), then the plan.
    const absorbed = new Set<GraphNode>();
    const fused = new Map<GraphNode, ConvStep>();
    const owned: tf.Tensor[] = [];
    try {
      for (const node of order) {
        if (absorbed.has(node)) continue;
        const step = convStep(node, soleReader, absorbed, owned);
        if (step) fused.set(node, step);
      }
    } catch (err) {
      tf.dispose(owned);
      throw err;
    }
    const steps: Step[] = order.filter((node) => !absorbed.has(node)).map((node) =>
      fused.get(node) ?? {
        op: "layer",
        layers: [node.outboundLayer.name],
        layer: node.outboundLayer,
        inputs: node.inputTensors.map((t) => t.id),
        outputs: node.outputTensors.map((t) => t.id),
      }
    );
    return new InferencePlan(input, model.outputs.map((t) => t.id), steps, owned);
  }

  /** What the plan runs, in order. */
  get steps(): InferenceStep[] {
    return this.#steps.map(({ op, layers, activation }) => ({ op, layers: [...layers], activation }));
  }

  /**
   * The model's outputs for `x` (shaped like the model's input, `[N, ...]`), one tensor per model output,
   * computed `batchSize` samples at a time like `model.predict`. The caller disposes the results.
   */
  run(x: tf.Tensor, batchSize = 32): tf.Tensor[] {
    if (this.#disposed) {
      throw new RuntimeError("internal", "plan_disposed", "this inference plan was disposed");
    }
    const expected = this.#input.shape;
    if (x.rank !== expected.length || expected.some((d, i) => i > 0 && d != null && d !== x.shape[i])) {
      throw new RuntimeError(
        "invalid",
        "shape_mismatch",
        `the model takes [${expected.map((d) => d ?? "N")}], got [${x.shape}]`,
      );
    }
    const n = x.shape[0];
    if (n <= batchSize) return tf.tidy(() => this.#forward(x));
    return tf.tidy(() => {
      const chunks: tf.Tensor[][] = [];
      for (let start = 0; start < n; start += batchSize) {
        chunks.push(this.#forward(tf.slice(x, start, Math.min(batchSize, n - start))));
      }
      return this.#outputs.map((_, i) => tf.concat(chunks.map((c) => c[i])));
    });
  }

  /** Frees the folded weights. The model is not touched. */
  dispose(): void {
    this.#disposed = true;
    tf.dispose(this.#owned);
  }

  #forward(x: tf.Tensor): tf.Tensor[] {
    const values = new Map<number, tf.Tensor>([[this.#input.id, x]]);
    const readers = new Map(this.#readers);
    const keep = new Set([this.#input.id, ...this.#outputs]);
    const release = (id: number) => {
      const left = readers.get(id)! - 1;
      readers.set(id, left);
      if (left === 0 && !keep.has(id)) {
        values.get(id)!.dispose();
        values.delete(id);
      }
    };
    for (const step of this.#steps) {
      if (step.op === "layer") {
        const inputs = step.inputs.map((id) => values.get(id)!);
        const out = step.layer.apply(inputs.length === 1 ? inputs[0] : inputs, { training: false });
        const outs = Array.isArray(out) ? out : [out];
        step.outputs.forEach((id, i) => values.set(id, outs[i] as tf.Tensor));
        step.inputs.forEach(release);
        continue;
      }
      // The kernel itself, not tf.fused.*: those wrap it for gradients and re-check what the plan checked at
      // build, ~7 us a step (5% of MobileNetV2's single-image latency on wasm); a plan has no gradients.
      const inputs = {
        x: values.get(step.input)!,
        filter: step.filter,
        ...(step.bias && { bias: step.bias }),
      };
      values.set(
        step.output,
        tf.engine().runKernel(step.kernel, inputs, step.attrs as unknown as tf.NamedAttrMap) as tf.Tensor,
      );
      release(step.input);
    }
    return this.#outputs.map((id) => values.get(id)!);
  }
}

// The nodes that compute the model's outputs from `input`, each after the nodes it reads from.
function topologicalNodes(model: tf.LayersModel, input: SymbolicTensor): GraphNode[] {
  const order: GraphNode[] = [];
  const state = new Map<GraphNode, "visiting" | "done">();
  const visit = (t: SymbolicTensor) => {
    if (t.id === input.id) return;
    const node = t.sourceLayer.inboundNodes[t.nodeIndex];
    if (state.get(node) === "done") return;
    if (state.has(node) || node.inputTensors.length === 0) {
      throw new RuntimeError(
        "invalid",
        "unsupported_model",
        `model '${model.name}': layer '${t.sourceLayer.name}' is ${
          state.has(node) ? "part of a cycle" : "an input the model does not take"
        }`,
      );
    }
    state.set(node, "visiting");
    node.inputTensors.forEach(visit);
    state.set(node, "done");
    order.push(node);
  };
  model.outputs.forEach(visit);
  return order;
}

// The fused step starting at a convolution node (absorbing the padding before it and the batch norm and
// activation after it, when they can be), or undefined when `node` is not a convolution this plan fuses.
function convStep(
  node: GraphNode,
  soleReader: (t: SymbolicTensor) => GraphNode | undefined,
  absorbed: Set<GraphNode>,
  owned: tf.Tensor[],
): ConvStep | undefined {
  const layer = node.outboundLayer;
  const kind = CONVOLUTIONS[layer.getClassName()];
  if (!kind || node.inputTensors.length !== 1) return undefined;
  const config = layer.getConfig();
  const activation = fusableActivation(layer);
  const weights = weightsByRole(layer);
  const kernel = weights.get(kind.weight);
  if (
    config.dataFormat !== "channelsLast" || !["same", "valid"].includes(config.padding as string) ||
    !activation || !kernel || kernel.rank !== 4
  ) {
    return undefined;
  }
  const layers = [layer.name];
  let input = node.inputTensors[0];
  let pad: Padding = config.padding as "same" | "valid";

  // ZeroPadding2D then a `valid` convolution is the convolution with that explicit padding.
  const padNode = input.sourceLayer.inboundNodes[input.nodeIndex];
  if (
    pad === "valid" && padNode.outboundLayer.getClassName() === "ZeroPadding2D" &&
    padNode.inputTensors.length === 1 && soleReader(input) === node &&
    padNode.outboundLayer.getConfig().dataFormat === "channelsLast"
  ) {
    const [[top, bottom], [left, right]] = padNode.outboundLayer.getConfig().padding as number[][];
    pad = [[0, 0], [top, bottom], [left, right], [0, 0]];
    layers.unshift(padNode.outboundLayer.name);
    absorbed.add(padNode);
    input = padNode.inputTensors[0];
  }

  let output = node.outputTensors[0];
  let bias = weights.get("bias") as tf.Tensor1D | undefined;
  let filter: tf.Tensor;
  let fused = activation;
  const bnNode = activation === "linear" ? soleReader(output) : undefined;
  const bn = bnNode && lastAxisBatchNorm(bnNode.outboundLayer);
  if (bnNode && bn) {
    ({ kernel: filter, bias } = foldBatchNorm(kernel, bias ?? null, bn));
    owned.push(filter, bias!);
    layers.push(bnNode.outboundLayer.name);
    absorbed.add(bnNode);
    output = bnNode.outputTensors[0];
  } else {
    // A snapshot of the layer's weights, like the folded ones: later writes to the layer do not reach it.
    filter = tf.clone(kernel);
    owned.push(filter);
    if (bias) owned.push(bias = tf.clone(bias));
  }
  const actNode = fused === "linear" ? soleReader(output) : undefined;
  const act = actNode && ["ReLU", "Activation"].includes(actNode.outboundLayer.getClassName())
    ? fusableActivation(actNode.outboundLayer)
    : undefined;
  if (actNode && act) {
    fused = act;
    layers.push(actNode.outboundLayer.name);
    absorbed.add(actNode);
    output = actNode.outputTensors[0];
  }
  return {
    op: kind.op,
    kernel: kind.kernel,
    layers,
    input: input.id,
    output: output.id,
    filter: filter as tf.Tensor4D,
    bias,
    attrs: {
      strides: pair(config.strides as number | number[]),
      pad,
      dataFormat: "NHWC",
      dilations: pair((config.dilationRate ?? 1) as number | number[]),
      activation: fused,
    },
    activation: fused,
  };
}
