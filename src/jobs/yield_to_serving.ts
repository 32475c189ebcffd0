import * as tf from "@tensorflow/tfjs";

/** How a training worker gives way to predictions. */
export interface YieldPolicy {
  /** Longest single pause while predictions are in progress, in ms. */
  maxPauseMs: number;
  /** Least time the job computes after a pause that ran to `maxPauseMs`, in ms, so it always progresses. */
  minRunMs: number;
}

/**
 * Under sustained load the job keeps about minRun / (maxPause + minRun) of its speed (a fifth), and runs at
 * full speed whenever no prediction is in progress.
 */
export const DEFAULT_YIELD_POLICY: YieldPolicy = { maxPauseMs: 200, minRunMs: 50 };

/**
 * Makes this thread's tfjs engine give way to predictions: before each kernel it runs, it checks the
 * shared count of predictions in progress (`ServingDemand`) and, while that is non-zero, waits on it
 * (`Atomics.wait`, so this thread and the wasm threads it drives sleep) for at most `maxPauseMs`, then
 * computes for at least `minRunMs` before it pauses again. A training step is hundreds of kernels, a few
 * milliseconds each, so a prediction waits for the kernel in flight rather than for a whole step; when no
 * prediction is in progress the cost is one atomic load per kernel. Only for a worker thread (the main
 * thread may not block). Returns a function that undoes it.
 *
 * Why: the job's and the server's compute threads would otherwise share the cores evenly, and a
 * prediction's parallel kernels stall whenever one of its threads is descheduled, so tail latency grew far
 * more than the core count would suggest (issue 11: p99 13.9x idle at 8 concurrent requests).
 *
 * @example
 * ```ts
 * import { yieldToServing } from "./yield_to_serving.ts";
 * const demand = new Int32Array(new SharedArrayBuffer(4));
 * const undo = yieldToServing(demand);
 * undo();
 * ```
 */
export function yieldToServing(demand: Int32Array, policy: YieldPolicy = DEFAULT_YIELD_POLICY): () => void {
  const engine = tf.engine();
  const runKernel = engine.runKernel;
  let mayPauseAt = 0;
  engine.runKernel = function (this: typeof engine, ...args: Parameters<typeof runKernel>) {
    if (Atomics.load(demand, 0) > 0) {
      const now = performance.now();
      if (now >= mayPauseAt) {
        const deadline = now + policy.maxPauseMs;
        let waiting;
        while ((waiting = Atomics.load(demand, 0)) > 0) {
          const left = deadline - performance.now();
          if (left <= 0) break;
          Atomics.wait(demand, 0, waiting, left);
        }
        // A pause cut short by the deadline means sustained load: compute a while before the next.
        mayPauseAt = performance.now() >= deadline ? performance.now() + policy.minRunMs : 0;
      }
    }
    return runKernel.apply(this, args);
  } as typeof runKernel;
  return () => {
    engine.runKernel = runKernel;
  };
}
