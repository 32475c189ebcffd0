import * as tf from "@tensorflow/tfjs";
import type { HeadOptimizer } from "./standardized_head_optimizer.ts";
import { leanVariableGrads } from "./lean_gradients.ts";

/** The variables and optimisers of one training run: head and backbone step with their own rates. */
export interface StepState {
  logits: tf.LayersModel;
  headVars: tf.Variable[];
  backboneVars: tf.Variable[];
  headOptimizer: HeadOptimizer;
  backboneOptimizer: HeadOptimizer;
  /** BN mode while training: batch statistics (true) or running statistics (false). */
  training: boolean;
  /** Also compute the backbone gradient's norm (a reduction per variable); default false. */
  measureGradNorm?: boolean;
  /** Take the gradients with `tf.variableGrads`, not `leanVariableGrads`: to measure what that saves. */
  stockGradients?: boolean;
}

/** What one step measured; the tensors are the caller's to read and dispose. */
export interface StepResult {
  loss: tf.Scalar;
  /** Correct predictions in the batch. */
  hits: tf.Scalar;
  /** Global L2 norm of the backbone's gradient (0 when the backbone is frozen), with `measureGradNorm`. */
  backboneGradNorm?: tf.Scalar;
}

/**
 * One SGD step on a batch: softmax cross-entropy on `images` `[B, H, W, C]` and one-hot `targets`
 * `[B, classes]`, gradients for head and backbone in one backward pass (`leanVariableGrads`: each
 * activation's gradient freed once used), each applied by its own optimiser.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { trainingStep } from "./training_step.ts";
 * import { initBackend } from "../backend/init_backend.ts";
 * await initBackend("auto");
 * import { attachHead } from "./classifier_head.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const backbone = await tinyBackbone();
 * const { logits, head } = attachHead(backbone, 2, "zeros", 0);
 * const state = {
 *   logits, training: true,
 *   headVars: head.trainableWeights.map((w) => w.read() as tf.Variable),
 *   backboneVars: backbone.model.trainableWeights.map((w) => w.read() as tf.Variable),
 *   headOptimizer: tf.train.momentum(0.5, 0.9), backboneOptimizer: tf.train.momentum(1e-4, 0.9),
 *   measureGradNorm: true,
 * };
 * const out = trainingStep(state, tf.zeros([2, 28, 28, 1]), tf.oneHot([0, 1], 2));
 * console.log(out.backboneGradNorm!.dataSync()[0]); // 0 at the first step of a zero head
 * ```
 */
export function trainingStep(state: StepState, images: tf.Tensor4D, targets: tf.Tensor): StepResult {
  return tf.tidy(() => {
    let hits: tf.Scalar | undefined;
    const gradientsOf = state.stockGradients ? tf.variableGrads : leanVariableGrads;
    const { value, grads } = gradientsOf(() => {
      const out = state.logits.apply(images, { training: state.training }) as tf.Tensor;
      hits = tf.keep(tf.sum(tf.equal(tf.argMax(out, 1), tf.argMax(targets, 1))));
      return tf.losses.softmaxCrossEntropy(targets, out) as tf.Scalar;
    }, [...state.headVars, ...state.backboneVars]);
    const named = (vars: tf.Variable[]) => vars.map((v) => ({ name: v.name, tensor: grads[v.name] }));
    state.headOptimizer.applyGradients(named(state.headVars));
    let backboneGradNorm: tf.Scalar | undefined;
    if (state.measureGradNorm) {
      backboneGradNorm = state.backboneVars.length === 0 ? tf.scalar(0) : tf.sqrt(
        tf.addN(state.backboneVars.map((v) => tf.sum(tf.square(grads[v.name])))),
      ) as tf.Scalar;
    }
    if (state.backboneVars.length) state.backboneOptimizer.applyGradients(named(state.backboneVars));
    return { loss: value, hits: hits!, backboneGradNorm };
  });
}
