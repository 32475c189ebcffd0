import { EventEmitter } from "node:events";
import os from "node:os";
import { Worker as NodeWorker } from "node:worker_threads";

// tfjs-backend-wasm's threaded build cannot start its pthreads under Deno by itself. Its emscripten glue sees
// `process` and takes the Node path: it sets `globalThis.Worker` to node's worker_threads Worker and starts
// each pthread from a `blob:` URL, which Deno's worker_threads refuses; and the script it sends a pthread
// expects `require` and `fs` (Node) or `importScripts` (a classic web worker), neither of which a Deno worker
// has. Here the glue gets, for the length of its start, a `Worker` of ours: each pthread runs in a node
// worker_threads worker (unref'd, unlike a Deno web worker, so it does not keep the process alive) from a
// data: URL whose prelude runs emscripten's pthread script as if in a web worker. The two scripts are read
// from their blobs on this side, where that can wait; a pthread's first message must be answered without
// this thread's event loop, which is busy-waiting for the thread to start.
//
// Relies on tfjs-backend-wasm 4.22's glue (emscripten 3.1): its `load`/`loaded`/`run` messages, the
// `WasmBackendModuleThreadedSimd` global its pthread script calls, its 8-worker pool, and its thread count
// being capped at half of `os.cpus().length`.

/** The most threads the threaded build runs: emscripten's pool holds 8 workers, and tfjs caps there too. */
export const PTHREAD_POOL_SIZE = 8;

// What emscripten's pthread script needs from a web worker, over node's worker_threads port. `process` and
// friends are hidden from both scripts so the glue takes its web-worker path, not its Node one.
const PRELUDE = `
import { parentPort } from "node:worker_threads";
const hidden = ["process", "require", "module", "exports", "__filename", "__dirname", "global"];
const pending = [];
let ready = false;
const deliver = (data) => globalThis.onmessage({ data });
parentPort.on("message", (data) => {
  if (ready) return deliver(data);
  if (!data?.pthreadScripts) return void pending.push(data);
  try {
    const { worker, main } = data.pthreadScripts;
    Object.assign(globalThis, {
      self: globalThis,
      postMessage: (message, transfer) => parentPort.postMessage(message, transfer),
      importScripts: () => {},
    });
    globalThis.WasmBackendModuleThreadedSimd = new Function(...hidden, main + "\\nreturn WasmBackendModuleThreadedSimd;")();
    new Function(...hidden, worker)();
  } catch (err) {
    return void parentPort.postMessage({ pthreadStartError: String(err?.stack ?? err) });
  }
  ready = true;
  for (const message of pending.splice(0)) deliver(message);
});
`;
const PRELUDE_URL = new URL(`data:text/javascript,${encodeURIComponent(PRELUDE)}`);

type Message = { cmd?: string; urlOrBlob?: unknown; pthreadStartError?: string };
type Scripts = { worker: string; main: string };

/** One start of the threaded build: the workers its glue asks for, and whether the start was given up. */
class PthreadStart {
  readonly failed: Promise<never>;
  abandoned = false;
  #fail!: (err: Error) => void;
  #mainScripts = new WeakMap<Blob, Promise<string>>();
  #check: Promise<void> | undefined;

  constructor() {
    this.failed = new Promise<never>((_, reject) => (this.#fail = reject));
    this.failed.catch(() => {});
  }

  fail(err: unknown): void {
    this.#fail(err instanceof Error ? err : new Error(String(err)));
  }

  mainScript(blob: Blob): Promise<string> {
    let text = this.#mainScripts.get(blob);
    if (!text) this.#mainScripts.set(blob, text = blob.text());
    return text;
  }

  /**
   * Starts one real pthread worker, waits for it to load, and ends it: pthreads start while this thread
   * busy-waits, so a script that fails there would hang it; here it fails the start instead.
   */
  check(scripts: Scripts, load: Message): Promise<void> {
    this.#check ??= new Promise<void>((resolve, reject) => {
      const worker = new NodeWorker(PRELUDE_URL);
      let ended = false;
      const end = (err?: Error) => {
        if (ended) return;
        ended = true;
        void worker.terminate();
        if (err) reject(err);
        else resolve();
      };
      worker.on("message", (data: Message) => {
        if (data?.cmd === "loaded") end();
        else if (data?.pthreadStartError) {
          end(new Error(`a pthread worker failed: ${data.pthreadStartError}`));
        }
      });
      worker.on("error", (err: Error) => end(new Error(`a pthread worker failed: ${err.message}`)));
      worker.on("exit", () => end(new Error("a pthread worker exited while loading")));
      worker.postMessage({ pthreadScripts: scripts });
      worker.postMessage(load);
    });
    return this.#check;
  }
}

/**
 * What emscripten's glue takes for a node worker_threads Worker: an event emitter with `postMessage`,
 * `terminate`, `ref` and `unref`. The real worker starts with the first message after `load` (a pthread's
 * `run`), so the pool's idle workers (8, whatever the thread count) cost nothing.
 */
class PthreadWorker extends EventEmitter {
  #start: PthreadStart;
  #script: Promise<string>;
  #scripts: Scripts | undefined;
  #load: Message | undefined;
  #real: NodeWorker | undefined;

  constructor(scriptUrl: string, start: PthreadStart) {
    super();
    this.#start = start;
    this.#script = fetch(scriptUrl).then((r) => r.text()).finally(() => URL.revokeObjectURL(scriptUrl));
    this.#script.catch(() => {});
  }

  postMessage(message: Message, transfer?: Parameters<NodeWorker["postMessage"]>[1]): void {
    if (message?.cmd === "load" && message.urlOrBlob instanceof Blob) {
      void this.#loaded(message, message.urlOrBlob);
      return;
    }
    this.#started().postMessage(message, transfer);
  }

  terminate(): Promise<number> {
    return this.#real?.terminate() ?? Promise.resolve(0);
  }

  // A pthread runs until the backend is disposed; it must not keep this thread's event loop alive.
  ref(): void {}
  unref(): void {}

  async #loaded(message: Message, mainBlob: Blob) {
    // The pthread script already holds the main script; `importScripts` of this name is a no-op.
    this.#load = { ...message, urlOrBlob: "tfjs-backend-wasm-threaded-simd.js" };
    try {
      const [worker, main] = await Promise.all([this.#script, this.#start.mainScript(mainBlob)]);
      this.#scripts = { worker, main };
      if (this.#start.abandoned) return;
      await this.#start.check(this.#scripts, this.#load);
    } catch (err) {
      this.#start.fail(err);
      return;
    }
    // A given-up start never finishes loading, so its glue never runs a pthread.
    if (!this.#start.abandoned) this.emit("message", { cmd: "loaded" });
  }

  #started(): NodeWorker {
    if (this.#real) return this.#real;
    if (!this.#scripts || !this.#load) throw new Error("wasm pthreads: a worker was used before it loaded");
    const real = new NodeWorker(PRELUDE_URL);
    real.unref();
    let echoed = false;
    real.on("message", (data: Message) => {
      // Its own `loaded` repeats the one this side already gave.
      if (!echoed && data?.cmd === "loaded") echoed = true;
      else this.emit("message", data);
    });
    real.on("error", (err: Error) => this.emit("error", err));
    real.postMessage({ pthreadScripts: this.#scripts });
    real.postMessage(this.#load);
    return (this.#real = real);
  }
}

/**
 * Runs `start` (which must bring up tfjs's threaded wasm build) with a `Worker` global that starts
 * emscripten's pthreads as Deno can, and with `os.cpus()` counting `2 * threads` cores so that tfjs does not
 * cap the thread count below `threads`. Restores both when `start` settles. Rejects when a pthread worker
 * fails to load or `timeoutMs` passes first; the start is then given up and its glue never runs.
 */
export async function withPthreadWorkers<T>(
  threads: number,
  timeoutMs: number,
  start: () => Promise<T>,
): Promise<T> {
  const attempt = new PthreadStart();
  const worker = Object.getOwnPropertyDescriptor(globalThis, "Worker");
  const DenoWorker = worker?.value as typeof Worker | undefined;
  // Only emscripten's `new Worker(blobUrl)` gets a pthread worker; anyone else still gets Deno's.
  const intercepted = function (url: string | URL, options?: WorkerOptions) {
    if (options === undefined && String(url).startsWith("blob:")) {
      return new PthreadWorker(String(url), attempt);
    }
    if (!DenoWorker) throw new ReferenceError("Worker is not defined");
    return new DenoWorker(url, options);
  };
  // The glue assigns node's Worker to `globalThis.Worker` as it starts; the setter drops that.
  Object.defineProperty(globalThis, "Worker", {
    configurable: true,
    enumerable: worker?.enumerable ?? false,
    get: () => intercepted,
    set: () => {},
  });
  const cpus = os.cpus;
  // Not the real list: reading it needs --allow-sys, which `deno task serve` does not grant.
  const core = { model: "", speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } };
  os.cpus = () => Array.from({ length: 2 * threads }, () => core);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`its pthread workers did not load within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return await Promise.race([start(), attempt.failed, timeout]);
  } catch (err) {
    attempt.abandoned = true;
    throw err;
  } finally {
    clearTimeout(timer);
    os.cpus = cpus;
    if (worker) Object.defineProperty(globalThis, "Worker", worker);
    else delete (globalThis as { Worker?: unknown }).Worker;
  }
}
