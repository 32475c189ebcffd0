import * as tf from "@tensorflow/tfjs";

/** How a training worker gives way to predictions. */
export interface YieldPolicy {
  /** Longest single pause while predictions are in progress, in ms. */
  maxPauseMs: number;
  /**
   * Least share of the time the job computes while predictions keep coming: after a pause of p ms it runs
   * at least p * share / (1 - share) ms before it pauses again, so it always progresses.
   */
  jobShare: number;
  /**
   * After the last prediction in progress ends, how long the pause lingers for the next one, in ms: a client
   * that sends requests one after another leaves a gap of a round trip between them, and a kernel the job
   * starts in that gap is what the next request would wait for.
   */
  lingerMs: number;
}

/** The job keeps at least a fifth of its speed under any load, and runs at full speed without any. */
export const DEFAULT_YIELD_POLICY: YieldPolicy = { maxPauseMs: 25, jobShare: 0.2, lingerMs: 10 };

/**
 * Makes this thread's tfjs engine give way to predictions: before each kernel it runs, it checks the
 * shared count of predictions in progress (`ServingDemand`) and, while that is non-zero, waits on it
 * (`Atomics.wait`, so this thread and the wasm threads it drives sleep) for at most `maxPauseMs`, lingering
 * `lingerMs` after the last one ends in case another follows at once, then computes for a `jobShare` of that
 * time before it pauses again. A training step is hundreds of kernels, a few
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
        for (;;) {
          const waiting = Atomics.load(demand, 0);
          const left = deadline - performance.now();
          if (left <= 0) break;
          if (waiting > 0) {
            Atomics.wait(demand, 0, waiting, left);
            continue;
          }
          // None in progress: linger for the next one (a new request wakes this wait), then go on.
          if (Atomics.wait(demand, 0, 0, Math.min(left, policy.lingerMs)) === "timed-out") break;
        }
        const after = performance.now();
        mayPauseAt = after + (after - now) * policy.jobShare / (1 - policy.jobShare);
      }
    }
    return runKernel.apply(this, args);
  } as typeof runKernel;
  return () => {
    engine.runKernel = runKernel;
  };
}
