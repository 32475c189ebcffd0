import { Worker as NodeWorker } from "node:worker_threads";

// A second thread for the SIMD training kernels of ./simd/training_kernels.c on the threaded wasm backend's
// shared heap. XNNPACK's convolutions already run on tfjs-backend-wasm's pthreads; our kernels (batch norm,
// filter gradients) ran on the calling thread alone. The helper instantiates the same module on the same
// memory and waits on a control block: the calling thread posts one half of a kernel call (`start`), runs
// the other half, and waits for the helper's (`finish`). Halves never write the same bytes, so no lock is
// needed beyond the handoff. A node worker_threads worker, unref'd like the pthreads, so it never keeps the
// process alive.

/** Control block, Int32 slots: */
const STATE = 0; // IDLE, POSTED (a call waits for the helper), DONE (the helper finished it)
const KERNEL = 1; // index of the export to call; -1 asks the helper to stop
const ARGC = 2; // number of arguments
const FAILED = 3; // 1 when the helper's call threw
const READY = 4; // 1 once the helper has instantiated the module
const ARGS_OFFSET = 32; // bytes; Float64 arguments from here
const MAX_ARGS = 24;

const IDLE = 0, POSTED = 1, DONE = 2;

/** How long the calling thread waits for the helper's half before giving the helper up. */
const FINISH_TIMEOUT_MS = 30_000;

const HELPER = `
import { workerData } from "node:worker_threads";
const { bytes, memory, control, names } = workerData;
const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
const kernels = names.map((name) => exports[name]);
const state = new Int32Array(control, 0, 8);
const args = new Float64Array(control, ${ARGS_OFFSET}, ${MAX_ARGS});
Atomics.store(state, ${READY}, 1);
for (;;) {
  let spins = 0;
  while (Atomics.load(state, ${STATE}) !== ${POSTED}) {
    // A step calls kernels back to back: spin a little before sleeping.
    if (++spins > 20000) {
      Atomics.wait(state, ${STATE}, ${IDLE}, 1000);
      spins = 0;
    }
  }
  const kernel = state[${KERNEL}];
  if (kernel < 0) break;
  try {
    kernels[kernel](...args.subarray(0, state[${ARGC}]));
  } catch {
    state[${FAILED}] = 1;
  }
  Atomics.store(state, ${STATE}, ${DONE});
  Atomics.notify(state, ${STATE});
}
`;
const HELPER_URL = new URL(`data:text/javascript,${encodeURIComponent(HELPER)}`);

/** A helper thread running halves of kernel calls on one shared heap. */
export class KernelThread {
  #state: Int32Array;
  #args: Float64Array;
  #index: Map<string, number>;
  #worker: NodeWorker;
  #busy = false;
  #broken = false;
  /** Calls the helper has finished. */
  calls = 0;

  /** Starts the helper on `memory` with the module `bytes`; it can take calls once {@linkcode ready}. */
  constructor(bytes: Uint8Array, memory: WebAssembly.Memory, names: readonly string[]) {
    const control = new SharedArrayBuffer(ARGS_OFFSET + 8 * MAX_ARGS);
    this.#state = new Int32Array(control, 0, 8);
    this.#args = new Float64Array(control, ARGS_OFFSET, MAX_ARGS);
    this.#index = new Map(names.map((name, i) => [name, i]));
    this.#worker = new NodeWorker(HELPER_URL, { workerData: { bytes, memory, control, names } });
    this.#worker.unref();
    this.#worker.on("error", () => this.#broken = true);
    this.#worker.on("exit", () => this.#broken = true);
  }

  /** Whether the helper is up and has not failed: only then does {@linkcode start} accept a call. */
  get ready(): boolean {
    return !this.#broken && Atomics.load(this.#state, READY) === 1;
  }

  /** Posts `kernel(...args)` to the helper; {@linkcode finish} waits for it. One call at a time. */
  start(kernel: string, args: readonly number[]): void {
    const index = this.#index.get(kernel);
    if (index === undefined || args.length > MAX_ARGS) throw new Error(`kernel thread: cannot run ${kernel}`);
    if (this.#busy) throw new Error("kernel thread: a call is already running");
    this.#args.set(args);
    this.#state[KERNEL] = index;
    this.#state[ARGC] = args.length;
    this.#state[FAILED] = 0;
    this.#busy = true;
    Atomics.store(this.#state, STATE, POSTED);
    Atomics.notify(this.#state, STATE);
  }

  /** Waits for the call {@linkcode start} posted; throws if it failed or the helper stopped answering. */
  finish(): void {
    if (!this.#busy) return;
    const started = performance.now();
    let spins = 0;
    while (Atomics.load(this.#state, STATE) !== DONE) {
      if (++spins < 100_000) continue;
      Atomics.wait(this.#state, STATE, POSTED, 5);
      if (performance.now() - started > FINISH_TIMEOUT_MS) {
        this.#broken = true;
        throw new Error("kernel thread: the helper thread stopped answering");
      }
    }
    this.#busy = false;
    this.calls++;
    Atomics.store(this.#state, STATE, IDLE);
    if (this.#state[FAILED]) throw new Error("kernel thread: a kernel failed on the helper thread");
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
    Atomics.store(this.#state, STATE, POSTED);
    Atomics.notify(this.#state, STATE);
  }
}
