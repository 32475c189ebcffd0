// The thread count the wasm kernel tests run on: 1 (the single-threaded build) unless a test file sets
// another before it imports them, as backend_wasm_threads.test.ts does.
let threads = 1;

/** Threads the wasm tests ask for. */
export function wasmTestThreads(): number {
  return threads;
}

/** Sets the threads the wasm tests ask for; call before importing them. */
export function setWasmTestThreads(count: number): void {
  threads = count;
}
