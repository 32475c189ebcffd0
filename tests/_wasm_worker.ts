/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// A Web Worker for backend.test.ts, as an adaptation job runs in one: brings up the wasm backend on 2 threads
// here (its pthreads are workers of this worker), checks a conv gradient against cpu, stops it, reports.
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend/init_backend.ts";
import { stopWasmBackend } from "../src/backend/start_wasm_backend.ts";

const DenoWorker = globalThis.Worker;

/** The input and filter gradients of a strided depthwise + pointwise conv pair, as plain arrays. */
async function gradients(): Promise<Float32Array[]> {
  const ramp = (shape: number[], k: number) =>
    tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => Math.sin(i * k)), shape);
  const x = ramp([2, 9, 9, 8], 0.3), dw = ramp([3, 3, 8, 1], 0.7), pw = ramp([1, 1, 8, 16], 0.11);
  const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
    tf.conv2d(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same"), c as tf.Tensor4D, 1, "same")
      .square().sum();
  const grads = tf.grads(f)([x, dw, pw]);
  const values = await Promise.all(grads.map((g) => g.data() as Promise<Float32Array>));
  tf.dispose([x, dw, pw, ...grads]);
  return values;
}

self.onmessage = async () => {
  try {
    const info = await initBackend("wasm", { wasmThreads: 2 });
    const wasm = await gradients();
    await tf.setBackend("cpu");
    const cpu = await gradients();
    let maxRelativeDiff = 0;
    cpu.forEach((expected, i) => {
      const scale = Math.max(...expected.map(Math.abs));
      expected.forEach((v, j) =>
        maxRelativeDiff = Math.max(maxRelativeDiff, Math.abs(wasm[i][j] - v) / scale)
      );
    });
    // This worker is about to be terminated: its pthreads would outlive it.
    stopWasmBackend();
    self.postMessage({
      name: info.name,
      wasm: info.wasm,
      selfTestPassed: info.selfTest.passed,
      workerIsDenos: globalThis.Worker === DenoWorker,
      maxRelativeDiff,
    });
  } catch (err) {
    self.postMessage({ error: String((err as Error)?.stack ?? err) });
  }
};
