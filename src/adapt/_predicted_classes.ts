import * as tf from "@tensorflow/tfjs";
import { InferencePlan } from "../model/inference_plan.ts";

/**
 * The class `model` predicts for each of `images`, in eval mode, through an inference plan (batch norms
 * folded into the convolutions) built for the weights of the moment: a few small kernels, then a forward
 * pass that costs about half of `model.predict`'s.
 */
export async function predictedClasses(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  batchSize: number,
): Promise<Int32Array> {
  const plan = InferencePlan.build(model);
  try {
    const predicted = tf.tidy(() => tf.argMax(plan.run(images, batchSize)[0], 1));
    const out = await predicted.data() as Int32Array;
    predicted.dispose();
    return out;
  } finally {
    plan.dispose();
  }
}

/** Share of `predicted` equal to `labels` (0 for no labels). */
export const accuracyOf = (predicted: ArrayLike<number>, labels: number[]): number =>
  labels.reduce((n, y, i) => n + (predicted[i] === y ? 1 : 0), 0) / Math.max(labels.length, 1);
