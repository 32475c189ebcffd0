/**
 * How many prediction requests are being served right now, in shared memory: the HTTP thread counts them,
 * and an adaptation worker reads the count between the kernels it runs, pausing while it is non-zero (see
 * `yieldToServing`), so that predictions get the cores while a job trains.
 *
 * @example
 * ```ts
 * import { ServingDemand } from "./serving_demand.ts";
 * const demand = new ServingDemand();
 * const done = demand.begin();
 * console.assert(demand.waiting === 1);
 * done();
 * console.assert(demand.waiting === 0);
 * ```
 */
export class ServingDemand {
  /** The counter itself, to hand to a worker (`new Int32Array(buffer)` there). */
  readonly buffer: SharedArrayBuffer;
  #count: Int32Array;

  constructor(buffer = new SharedArrayBuffer(4)) {
    this.buffer = buffer;
    this.#count = new Int32Array(buffer);
  }

  /**
   * Counts one request in (waking a worker that lingers for it); the returned function counts it out (once)
   * and wakes a paused worker.
   */
  begin(): () => void {
    // The first request in wakes a worker lingering for it (see yieldToServing).
    if (Atomics.add(this.#count, 0, 1) === 0) Atomics.notify(this.#count, 0);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (Atomics.sub(this.#count, 0, 1) === 1) Atomics.notify(this.#count, 0);
    };
  }

  /** Requests in progress. */
  get waiting(): number {
    return Atomics.load(this.#count, 0);
  }
}
