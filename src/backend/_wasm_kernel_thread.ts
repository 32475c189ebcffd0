import { Worker as NodeWorker } from "node:worker_threads";

// A second thread for the SIMD training kernels of ./simd/training_kernels.c on the threaded wasm backend's
// shared heap. XNNPACK's convolutions already run on tfjs-backend-wasm's pthreads; our kernels (batch norm,
// filter gradients) ran on the calling thread alone. The helper instantiates the same module on the same
// memory and waits on a control block. A shared call is cut into chunks (rows, channels or images), and the
// calling thread and the helper each take the next chunk until none is left (`share`): the helper is often
// late, as XNNPACK's pthreads spin on both cores for a while after each convolution, and then the calling
// thread runs more of the chunks instead of waiting for a fixed half. Chunks never write the same bytes, so
// no lock is needed beyond claiming a chunk. A node worker_threads worker, unref'd like the pthreads, so it
// never keeps the process alive.

/** Control block, Int32 slots: */
const TICKET = 0; // (call generation << 11) | next chunk; chunk CLOSED: no chunk to take
const KERNEL = 1; // index of the export to call; -1 asks the helper to stop
const ARGC = 2; // number of arguments
const FAILED = 3; // 1 when a chunk threw on the helper
const READY = 4; // 1 once the helper has instantiated the module
const FINISHED = 5; // chunks of this call finished, on either thread
const CHUNKS = 6; // chunks in this call
const TOTAL = 7; // the call's range is [0, TOTAL)
const SIZE = 8; // of a chunk (the last may be smaller)
const SLOTS = 16;
const MAX_ARGS = 24;
/** Float64 coefficients from here: per argument, `base + first * F + end * E + chunk * C`. */
const COEFFICIENTS_OFFSET = 4 * SLOTS;

const CHUNK_BITS = 11;
const CLOSED = (1 << CHUNK_BITS) - 1;
const GENERATIONS = 1 << 20;
/** The most chunks a call may be cut into. */
export const MAX_CHUNKS = CLOSED - 1;

/** How long the calling thread waits for the helper's chunks before giving the helper up. */
const FINISH_TIMEOUT_MS = 30_000;

// The claim, shared by both threads: a chunk of the call `generation` is taken by moving the ticket on by
// one, only while the ticket is still that call's and short of `chunks`. The calling thread closes the
// ticket before it writes the next call's arguments, so a helper that read arguments while they changed
// can no longer claim with them.
const CLAIM = `(state, generation, chunks) => {
  for (;;) {
    const ticket = Atomics.load(state, ${TICKET});
    if (ticket >>> ${CHUNK_BITS} !== generation || (ticket & ${CLOSED}) >= chunks) return -1;
    if (Atomics.compareExchange(state, ${TICKET}, ticket, ticket + 1) === ticket) return ticket & ${CLOSED};
  }
}`;

/** Runs chunks of the current call with the arguments the coefficients give, `thread`'s kernel `run`. */
const RUN_CHUNKS = `(state, coefficients, generation, run, onError) => {
  const argc = state[${ARGC}], chunks = state[${CHUNKS}], total = state[${TOTAL}], size = state[${SIZE}];
  const base = coefficients.slice(0, argc);
  const perFirst = coefficients.slice(${MAX_ARGS}, ${MAX_ARGS} + argc);
  const perEnd = coefficients.slice(${2 * MAX_ARGS}, ${2 * MAX_ARGS} + argc);
  const perChunk = coefficients.slice(${3 * MAX_ARGS}, ${3 * MAX_ARGS} + argc);
  const args = new Array(argc);
  for (;;) {
    const chunk = claim(state, generation, chunks);
    if (chunk < 0) return;
    const first = chunk * size, end = Math.min(total, first + size);
    for (let i = 0; i < argc; i++) args[i] = base[i] + first * perFirst[i] + end * perEnd[i] + chunk * perChunk[i];
    try {
      run(...args);
    } catch (error) {
      onError(error);
    } finally {
      Atomics.add(state, ${FINISHED}, 1);
    }
  }
}`;

const HELPER = `
import { workerData } from "node:worker_threads";
const { bytes, memory, control, names } = workerData;
const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
const kernels = names.map((name) => exports[name]);
const state = new Int32Array(control, 0, ${SLOTS});
const coefficients = new Float64Array(control, ${COEFFICIENTS_OFFSET}, ${4 * MAX_ARGS});
const claim = ${CLAIM};
const runChunks = ${RUN_CHUNKS};
Atomics.store(state, ${READY}, 1);
let seen = 0;
for (;;) {
  let ticket = Atomics.load(state, ${TICKET}), spins = 0;
  while (ticket >>> ${CHUNK_BITS} === seen) {
    // A step calls kernels back to back: spin a little before sleeping.
    if (++spins > 20000) {
      Atomics.wait(state, ${TICKET}, ticket, 1000);
      spins = 0;
    }
    ticket = Atomics.load(state, ${TICKET});
  }
  seen = ticket >>> ${CHUNK_BITS};
  const kernel = state[${KERNEL}];
  if (kernel < 0) break;
  runChunks(state, coefficients, seen, kernels[kernel], () => state[${FAILED}] = 1);
}
`;
const HELPER_URL = new URL(`data:text/javascript,${encodeURIComponent(HELPER)}`);

type Claim = (state: Int32Array, generation: number, chunks: number) => number;
type RunChunks = (
  state: Int32Array,
  coefficients: Float64Array,
  generation: number,
  run: (...args: number[]) => void,
  onError: (error: unknown) => void,
) => void;
// The calling thread runs the very code the helper runs.
const claim: Claim = new Function(`return ${CLAIM}`)();
const runChunks: RunChunks = new Function("claim", `return ${RUN_CHUNKS}`)(claim);

/**
 * The arguments of one chunk of a call, `[first, end)` of its range, the `chunk`-th: each argument must be an
 * affine function of the three (a pointer offset by `first` rows, a count `end - first`, scratch of the
 * chunk's own), as the helper computes them from coefficients.
 */
export type ChunkArgs = (first: number, end: number, chunk: number) => number[];

/** A helper thread that shares kernel calls, chunk by chunk, on one shared heap. */
export class KernelThread {
  #state: Int32Array;
  #coefficients: Float64Array;
  #index: Map<string, number>;
  #worker: NodeWorker;
  #generation = 0;
  #busy = false;
  #broken = false;
  /** Calls shared with the helper (whether or not it came in time to run any of their chunks). */
  calls = 0;

  /** Starts the helper on `memory` with the module `bytes`; it can take calls once {@linkcode ready}. */
  constructor(bytes: Uint8Array, memory: WebAssembly.Memory, names: readonly string[]) {
    const control = new SharedArrayBuffer(COEFFICIENTS_OFFSET + 8 * 4 * MAX_ARGS);
    this.#state = new Int32Array(control, 0, SLOTS);
    this.#coefficients = new Float64Array(control, COEFFICIENTS_OFFSET, 4 * MAX_ARGS);
    this.#index = new Map(names.map((name, i) => [name, i]));
    this.#worker = new NodeWorker(HELPER_URL, { workerData: { bytes, memory, control, names } });
    this.#worker.unref();
    this.#worker.on("error", () => this.#broken = true);
    this.#worker.on("exit", () => this.#broken = true);
  }

  /** Whether the helper is up and has not failed: only then does {@linkcode share} accept a call. */
  get ready(): boolean {
    return !this.#broken && Atomics.load(this.#state, READY) === 1;
  }

  /**
   * Runs `kernel` over `[0, total)` in chunks of `size`, this thread (with `run`, its own instance of the
   * export) and the helper each taking the next chunk until none is left; returns once every chunk is done.
   * Throws if a chunk failed or the helper stopped answering.
   */
  share(
    kernel: string,
    run: (...args: number[]) => void,
    argsOf: ChunkArgs,
    total: number,
    size: number,
  ): void {
    const index = this.#index.get(kernel);
    const chunks = Math.ceil(total / size);
    const base = argsOf(0, 0, 0);
    if (index === undefined || base.length > MAX_ARGS || !(chunks >= 1 && chunks <= MAX_CHUNKS)) {
      throw new Error(`kernel thread: cannot share ${kernel} in ${chunks} chunks`);
    }
    if (this.#busy) throw new Error("kernel thread: a call is already running");
    const state = this.#state;
    const perFirst = minus(argsOf(1, 0, 0), base);
    const perEnd = minus(argsOf(0, 1, 0), base);
    const perChunk = minus(argsOf(0, 0, 1), base);
    const check = argsOf(3, 7, 2);
    base.forEach((b, i) => {
      if (check[i] !== b + 3 * perFirst[i] + 7 * perEnd[i] + 2 * perChunk[i]) {
        throw new Error(`kernel thread: ${kernel}'s argument ${i} is not affine in the chunk`);
      }
    });
    this.#busy = true;
    try {
      const c = this.#coefficients;
      c.set(base, 0), c.set(perFirst, MAX_ARGS), c.set(perEnd, 2 * MAX_ARGS), c.set(perChunk, 3 * MAX_ARGS);
      state[KERNEL] = index;
      state[ARGC] = base.length;
      state[CHUNKS] = chunks;
      state[TOTAL] = total;
      state[SIZE] = size;
      state[FAILED] = 0;
      state[FINISHED] = 0;
      this.#generation = (this.#generation + 1) % GENERATIONS || 1;
      Atomics.store(state, TICKET, this.#generation << CHUNK_BITS);
      Atomics.notify(state, TICKET);
      this.calls++;
      let failure: unknown;
      try {
        runChunks(state, this.#coefficients, this.#generation, run, (error) => failure ??= error);
      } finally {
        // No chunk is taken from here on; wait for those the helper took.
        const last = Atomics.exchange(state, TICKET, (this.#generation << CHUNK_BITS) | CLOSED);
        this.#waitFor(Math.min(last & CLOSED, chunks));
      }
      if (failure !== undefined) throw failure;
      if (state[FAILED]) throw new Error("kernel thread: a kernel failed on the helper thread");
    } finally {
      this.#busy = false;
    }
  }

  #waitFor(chunks: number): void {
    const started = performance.now();
    let spins = 0;
    while (Atomics.load(this.#state, FINISHED) < chunks) {
      if (++spins < 100_000) continue;
      spins = 0;
      if (performance.now() - started > FINISH_TIMEOUT_MS) {
        this.#broken = true;
        throw new Error("kernel thread: the helper thread stopped answering");
      }
    }
  }

  /** Resolves once the helper is up (true), or has failed to start (false). */
  async whenReady(): Promise<boolean> {
    while (!this.ready && !this.#broken) await new Promise((resolve) => setTimeout(resolve, 5));
    return this.ready;
  }

  /** Stops the helper thread. */
  close(): void {
    this.#broken = true;
    this.#state[KERNEL] = -1;
    this.#generation = (this.#generation + 1) % GENERATIONS || 1;
    Atomics.store(this.#state, TICKET, this.#generation << CHUNK_BITS);
    Atomics.notify(this.#state, TICKET);
  }
}

const minus = (a: number[], b: number[]) => a.map((v, i) => v - b[i]);
