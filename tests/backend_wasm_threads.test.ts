// Every test of backend_wasm_training.test.ts again, on tfjs-backend-wasm's threaded build with 2 threads:
// the gradient kernels read and write a shared heap there, while XNNPACK's pthreads work on it too.
import { setWasmTestThreads } from "./_wasm_threads.ts";

setWasmTestThreads(2);
await import("./backend_wasm_training.test.ts");
