import * as tf from "@tensorflow/tfjs";
import { getThreadsCount, setThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { PTHREAD_POOL_SIZE, withPthreadWorkers } from "./_wasm_pthreads.ts";
import { closeKernelThreads } from "./_wasm_simd.ts";

/** How many threads the wasm backend computes on: a count, or `auto` for one per logical core. */
export type WasmThreads = number | "auto";

/** The most threads the wasm backend can have (tfjs-backend-wasm's pthread pool). */
export const WASM_MAX_THREADS = PTHREAD_POOL_SIZE;

/** How long the threaded build may take to start before the single-threaded one is taken instead, in ms. */
export const WASM_START_TIMEOUT_MS = 30_000;

/** Which build of tfjs-backend-wasm runs, and on how many threads. */
export interface WasmBuild {
  /** Threads XNNPACK computes on; 1 is the single-threaded SIMD build. */
  threads: number;
  /** The thread count asked for, `auto` resolved. */
  requestedThreads: number;
  /** Why the single-threaded build runs though more threads were asked for. */
  fallbackReason?: string;
}

/** Options of {@linkcode startWasmBackend}. */
export interface StartWasmOptions {
  /** Default `auto`: `navigator.hardwareConcurrency`, at most {@linkcode WASM_MAX_THREADS}. */
  threads?: WasmThreads;
  /** Default {@linkcode WASM_START_TIMEOUT_MS}. */
  startTimeoutMs?: number;
}

// tfjs-backend-wasm registers this priority for itself; it is not exported.
const WASM_PRIORITY = 2;

// tfjs would take the threaded build by itself wherever IS_NODE is false, and that only starts through
// startThreaded below; any other start of the wasm backend gets the single-threaded SIMD build.
tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);

let current: WasmBuild | undefined;
let starting: Promise<unknown> = Promise.resolve();
let stopsOnUnload = false;

// Whether the wasm backend is up: the engine's registry, as `tf.findBackend` would start it when it is not.
const running = () => tf.engine().registry.wasm !== undefined;

/**
 * The thread count `threads` stands for: `auto` is `navigator.hardwareConcurrency`, and any count is
 * clamped to 1..{@linkcode WASM_MAX_THREADS}.
 *
 * @example
 * ```ts
 * import { resolveWasmThreads } from "./start_wasm_backend.ts";
 * console.assert(resolveWasmThreads(2) === 2 && resolveWasmThreads(64) === 8);
 * console.assert(resolveWasmThreads("auto") >= 1);
 * ```
 */
export function resolveWasmThreads(threads: WasmThreads = "auto"): number {
  const count = threads === "auto" ? navigator.hardwareConcurrency : threads;
  return Math.min(Math.max(Math.floor(count) || 1, 1), WASM_MAX_THREADS);
}

/**
 * The thread count for the server's predictions that `threads` stands for: `auto` is half the logical cores
 * (at least 1, at most {@linkcode WASM_MAX_THREADS}), leaving the rest to a training job, whose own threads
 * are {@linkcode resolveWasmThreads}'. On two cores, predictions on both stalled whenever a job's thread
 * took one (docs/RELIABILITY.md).
 *
 * @example
 * ```ts
 * import { resolveServingThreads } from "./start_wasm_backend.ts";
 * console.assert(resolveServingThreads(3) === 3);
 * console.assert(resolveServingThreads("auto") >= 1);
 * ```
 */
export function resolveServingThreads(threads: WasmThreads = "auto"): number {
  return resolveWasmThreads(threads === "auto" ? Math.floor(navigator.hardwareConcurrency / 2) : threads);
}

async function startThreaded(threads: number, timeoutMs: number): Promise<string | undefined> {
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
  setThreadsCount(threads);
  try {
    const started = await withPthreadWorkers(threads, timeoutMs, () => tf.setBackend("wasm"));
    return started ? undefined : "tfjs could not initialise the threaded build";
  } catch (err) {
    return `the threaded build failed to start: ${(err as Error).message}`;
  } finally {
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  }
}

async function start({ threads, startTimeoutMs = WASM_START_TIMEOUT_MS }: StartWasmOptions) {
  const requestedThreads = resolveWasmThreads(threads);
  if (running()) {
    // Started elsewhere (a plain `tf.setBackend("wasm")`): the single-threaded build.
    current ??= { threads: 1, requestedThreads: 1 };
    if (current.requestedThreads === requestedThreads) {
      if (!(await tf.setBackend("wasm"))) throw new Error("tfjs could not switch to the wasm backend");
      return current;
    }
    stopWasmBackend();
  }
  let fallbackReason: string | undefined;
  if (requestedThreads > 1) {
    fallbackReason = await startThreaded(requestedThreads, startTimeoutMs);
    if (!fallbackReason) {
      // A pthread waiting in wasm outlives the thread that started it (a test module, a finished worker),
      // and holds the whole heap: end them with it.
      if (!stopsOnUnload) globalThis.addEventListener("unload", () => stopWasmBackend());
      stopsOnUnload = true;
      return (current = { threads: getThreadsCount(), requestedThreads });
    }
  }
  if (!(await tf.setBackend("wasm"))) throw new Error("tfjs could not initialise the wasm backend");
  return (current = fallbackReason
    ? { threads: 1, requestedThreads, fallbackReason }
    : { threads: 1, requestedThreads });
}

/**
 * Makes tfjs's `wasm` backend the active one, on `threads` threads: more than one runs tfjs-backend-wasm's
 * threaded SIMD build (XNNPACK on a pthread pool, each pthread a worker of this thread), one runs its
 * single-threaded SIMD build. When the threaded build does not start, the single-threaded one runs and
 * `fallbackReason` says why. A backend already running on another thread count is stopped (its tensors
 * are lost) and started again; on the same count it is kept.
 *
 * `globalThis.Worker` is Deno's own again when this returns. The pthread workers do not keep the process
 * alive; a thread that ends by being terminated (a Web Worker) should call {@linkcode stopWasmBackend}
 * first, as a pthread waiting in wasm does not notice its parent end.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { startWasmBackend } from "./start_wasm_backend.ts";
 * const build = await startWasmBackend({ threads: 2 });
 * console.log(tf.getBackend(), build.threads, build.fallbackReason ?? "");
 * ```
 */
export function startWasmBackend(options: StartWasmOptions = {}): Promise<WasmBuild> {
  const started = starting.then(() => start(options));
  starting = started.catch(() => {});
  return started;
}

/**
 * Disposes the wasm backend, if it runs, ending its pthread workers and the training kernels' helper thread; it stays registered, so a later
 * {@linkcode startWasmBackend} or `tf.setBackend("wasm")` starts it afresh. Its tensors are lost.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { startWasmBackend, stopWasmBackend } from "./start_wasm_backend.ts";
 * await startWasmBackend({ threads: 2 });
 * stopWasmBackend();
 * console.assert(tf.engine().registry.wasm === undefined);
 * ```
 */
export function stopWasmBackend(): void {
  const factory = tf.findBackendFactory("wasm");
  if (!factory || !running()) return;
  closeKernelThreads();
  tf.removeBackend("wasm");
  tf.registerBackend("wasm", factory, WASM_PRIORITY);
  current = undefined;
}
