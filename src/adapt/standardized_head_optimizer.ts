import * as tf from "@tensorflow/tfjs";

/** What the training step needs of an optimiser: tfjs' `MomentumOptimizer` fits it too. */
export interface HeadOptimizer {
  applyGradients(variableGradients: { name: string; tensor: tf.Tensor }[]): void;
  setLearningRate(learningRate: number): void;
  dispose(): void;
}

/**
 * SGD with momentum for a dense head `logits = f @ kernel + bias`, run in the coordinates of standardised
 * features `(f - mean) / scale`: the head is trained as if its input were centred and of unit variance per
 * channel, and its variables always hold the equivalent raw-feature weights, so the model that is saved is a
 * plain dense head. Why: pooled ReLU features are all positive with a large common mean, so a zero head
 * trained by plain SGD on raw features is badly conditioned (the common direction tolerates a rate far too
 * small for the directions that separate classes, and a rate that moves those makes the loss spike).
 *
 * With `W~ = scale * kernel` (per row) and `b~ = bias + mean @ kernel`, the gradients are
 * `g(W~) = g(kernel) / scale - (mean / scale) g(bias)` (outer product) and `g(b~) = g(bias)`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { StandardizedHeadOptimizer } from "./standardized_head_optimizer.ts";
 * const kernel = tf.variable(tf.zeros([2, 1])), bias = tf.variable(tf.zeros([1]));
 * const opt = new StandardizedHeadOptimizer(kernel, bias, Float32Array.of(10, 0), Float32Array.of(2, 1), 1, 0);
 * opt.applyGradients([{ name: kernel.name, tensor: tf.tensor2d([[-20], [0]]) }, { name: bias.name, tensor: tf.tensor1d([-1]) }]);
 * // The step moved only the centred direction: the logit at the feature mean changed by the bias step alone.
 * console.log(tf.add(tf.matMul(tf.tensor2d([[10, 0]]), kernel), bias).arraySync()); // [[1]]
 * opt.dispose();
 * ```
 */
export class StandardizedHeadOptimizer implements HeadOptimizer {
  readonly #mean: tf.Tensor2D;
  readonly #scale: tf.Tensor2D;
  readonly #kernel: tf.Variable;
  readonly #bias: tf.Variable;
  readonly #w: tf.Variable;
  readonly #b: tf.Variable;
  readonly #vw: tf.Variable;
  readonly #vb: tf.Variable;
  #learningRate: number;

  /**
   * @param kernel the head's kernel `[D, K]`; @param bias its bias `[K]`
   * @param mean per-channel feature mean `[D]`; @param scale per-channel positive scale `[D]`
   */
  constructor(
    kernel: tf.Variable,
    bias: tf.Variable,
    mean: Float32Array,
    scale: Float32Array,
    learningRate: number,
    readonly momentum: number,
  ) {
    const [d] = kernel.shape;
    if (kernel.rank !== 2 || bias.rank !== 1 || mean.length !== d || scale.length !== d) {
      throw new Error(
        `standardised head: kernel [D, K], bias [K], mean and scale [D]; got kernel [${kernel.shape}], ` +
          `bias [${bias.shape}], mean ${mean.length}, scale ${scale.length}`,
      );
    }
    this.#kernel = kernel;
    this.#bias = bias;
    this.#learningRate = learningRate;
    this.#mean = tf.tensor2d(mean, [d, 1]);
    this.#scale = tf.tensor2d(scale, [d, 1]);
    [this.#w, this.#b, this.#vw, this.#vb] = tf.tidy(() => [
      tf.mul(kernel, this.#scale).variable(false),
      tf.add(bias, tf.sum(tf.mul(this.#mean, kernel), 0)).variable(false),
      tf.zerosLike(kernel).variable(false),
      tf.zerosLike(bias).variable(false),
    ]);
  }

  setLearningRate(learningRate: number): void {
    this.#learningRate = learningRate;
  }

  applyGradients(variableGradients: { name: string; tensor: tf.Tensor }[]): void {
    const grad = (v: tf.Variable) => variableGradients.find((g) => g.name === v.name)?.tensor;
    const gKernel = grad(this.#kernel), gBias = grad(this.#bias);
    if (!gKernel || !gBias) {
      throw new Error("standardised head: gradients for both kernel and bias are needed");
    }
    tf.tidy(() => {
      const gw = tf.sub(tf.div(gKernel, this.#scale), tf.mul(tf.div(this.#mean, this.#scale), gBias));
      this.#vw.assign(tf.add(tf.mul(this.#vw, this.momentum), gw));
      this.#vb.assign(tf.add(tf.mul(this.#vb, this.momentum), gBias));
      this.#w.assign(tf.sub(this.#w, tf.mul(this.#vw, this.#learningRate)));
      this.#b.assign(tf.sub(this.#b, tf.mul(this.#vb, this.#learningRate)));
      const kernel = tf.div(this.#w, this.#scale);
      this.#kernel.assign(kernel);
      this.#bias.assign(tf.sub(this.#b, tf.sum(tf.mul(this.#mean, kernel), 0)));
    });
  }

  dispose(): void {
    tf.dispose([this.#mean, this.#scale, this.#w, this.#b, this.#vw, this.#vb]);
  }
}
