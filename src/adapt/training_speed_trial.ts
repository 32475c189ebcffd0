import * as tf from "@tensorflow/tfjs";
import type { BackendTrial, TrialTiming } from "../backend/backend_choice.ts";
import type { Backbone } from "../model/backbone.ts";
import { loadBackbone } from "../model/registry.ts";
import { attachHead } from "./classifier_head.ts";
import { FusedMomentumOptimizer } from "./momentum_optimizer.ts";
import { type StepState, trainingStep } from "./training_step.ts";

/** What {@linkcode trainingSpeedTrial} trains. */
export interface TrainingSpeedTrialOptions {
  /** Registry name of the backbone; the server passes its default backbone. */
  backbone: string;
  /** Images per step; default 16 (adapt()'s default batch). */
  batch?: number;
  /** Timed steps after one untimed warm-up (shader compiles, kernel set-up); default 3. */
  steps?: number;
}

/**
 * A backbone under a new 10-class head, set up for `trainingStep` as a speed measurement trains it: every
 * weight trainable, momentum SGD (head 0.01, backbone 1e-3, momentum 0.9), BN in training mode. The caller
 * disposes the optimizers and `headed.logits` (see {@linkcode disposeSpeedState}).
 *
 * @example
 * ```ts
 * import { disposeSpeedState, speedTrainingState } from "./training_speed_trial.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const { state, batchOf } = speedTrainingState(await tinyBackbone());
 * const { x, y } = batchOf(2);
 * console.assert(x.shape[0] === 2 && state.training);
 * x.dispose(); y.dispose(); disposeSpeedState(state);
 * ```
 */
export function speedTrainingState(backbone: Backbone, classes = 10) {
  const headed = attachHead(backbone, classes, "glorot", 0);
  const state: StepState = {
    logits: headed.logits,
    headVars: headed.head.trainableWeights.map((w) => w.read() as tf.Variable),
    backboneVars: backbone.model.trainableWeights.map((w) => w.read() as tf.Variable),
    headOptimizer: new FusedMomentumOptimizer(0.01, 0.9),
    backboneOptimizer: new FusedMomentumOptimizer(1e-3, 0.9),
    training: true,
  };
  const { height, width, channels } = backbone.input;
  /** `n` random images (fixed seed) and one-hot labels cycling through the classes. */
  const batchOf = (n: number) => ({
    x: tf.randomUniform([n, height, width, channels], 0, 1, "float32", 7) as tf.Tensor4D,
    y: tf.tidy(() =>
      tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % classes), "int32"), classes)
    ),
  });
  return { headed, state, batchOf };
}

/**
 * One `trainingStep` on `x` and `y` with its loss read back, as adapt() waits for each of its steps; the
 * step's results disposed. What a speed measurement times.
 */
export async function readBackStep(state: StepState, x: tf.Tensor4D, y: tf.Tensor): Promise<void> {
  const { loss, hits } = trainingStep(state, x, y);
  await loss.data();
  tf.dispose([loss, hits]);
}

/** Frees what {@linkcode speedTrainingState} built: the optimizers' slots and the headed model. */
export function disposeSpeedState(state: StepState): void {
  state.headOptimizer.dispose();
  state.backboneOptimizer.dispose();
  state.logits.dispose();
}

/**
 * A {@linkcode BackendTrial} for `initBackend`'s measured choice: on the current backend, a fresh
 * `backbone` with a 10-class head takes `steps` training steps (`trainingStep`: forward in training mode,
 * backward, momentum SGD on every weight, loss read back) on random images after one warm-up step; the
 * median step gives samples/s. Frees everything it builds.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend/init_backend.ts";
 * import { trainingSpeedTrial } from "./training_speed_trial.ts";
 * await initBackend("wasm");
 * const timing = await trainingSpeedTrial({ backbone: "tiny", batch: 4, steps: 1 })();
 * console.log(timing.samplesPerSec > 0, timing.batch); // true 4
 * ```
 */
export function trainingSpeedTrial(options: TrainingSpeedTrialOptions): BackendTrial {
  const batch = options.batch ?? 16, steps = options.steps ?? 3;
  return async (): Promise<TrialTiming> => {
    const { state, batchOf } = speedTrainingState(await loadBackbone({ name: options.backbone }));
    const { x, y } = batchOf(batch);
    try {
      const stepMs: number[] = [];
      for (let i = 0; i <= steps; i++) {
        const started = performance.now();
        await readBackStep(state, x, y);
        if (i > 0) stepMs.push(performance.now() - started);
      }
      stepMs.sort((a, b) => a - b);
      const median = stepMs[Math.floor(stepMs.length / 2)];
      return { samplesPerSec: batch / median * 1000, stepMs: median, batch, steps };
    } finally {
      tf.dispose([x, y]);
      disposeSpeedState(state);
    }
  };
}
