import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../src/backend/init_backend.ts";
import { probeAdapter } from "../src/backend/probe_adapter.ts";
import { startWasmBackend, stopWasmBackend } from "../src/backend/start_wasm_backend.ts";
import { RuntimeError } from "../src/errors.ts";

const DenoWorker = globalThis.Worker;

// These run the real WebGPU path: on the CI machines that is Mesa's llvmpipe software adapter.

Deno.test("the WebGPU adapter is found and reported, software or not", async () => {
  const report = await probeAdapter();
  assert.ok(report.available, report.reason ?? "");
  assert.ok(report.description.length > 0);
  if (/llvmpipe|lavapipe|swiftshader/i.test(report.description)) assert.equal(report.isFallback, true);
});

Deno.test("the webgpu policy brings up WebGPU and its self-test passes against the CPU reference", async () => {
  const info = await initBackend("webgpu");
  assert.equal(info.name, "webgpu");
  assert.equal(tf.getBackend(), "webgpu");
  assert.equal(info.selfTest.passed, true, JSON.stringify(info.selfTest));
  for (const d of Object.values(info.selfTest.maxAbsDiff)) assert.ok(d <= info.selfTest.tolerance);
});

Deno.test("auto picks wasm over a software WebGPU adapter and says why", async () => {
  const info = await initBackend("auto");
  if (info.adapter.available && !info.adapter.isFallback) {
    assert.equal(info.name, "webgpu");
  } else {
    assert.equal(info.name, "wasm");
    assert.equal(info.fellBack, true);
    assert.match(info.fallbackReason ?? "", /software|adapter/);
  }
  assert.equal(info.selfTest.passed, true);
});

Deno.test("the wasm and cpu policies each pass the self-test", async () => {
  for (const policy of ["wasm", "cpu"] as const) {
    const info = await initBackend(policy);
    assert.equal(info.name, policy);
    assert.equal(info.selfTest.passed, true, JSON.stringify(info.selfTest));
  }
});

Deno.test("an unknown backend policy is rejected with a clear error", async () => {
  await assert.rejects(
    () => initBackend("tpu" as "auto"),
    (e: unknown) => e instanceof RuntimeError && e.code === "unknown_backend",
  );
});

Deno.test("wasm on 2 threads runs the threaded build, passes the self-test and leaves Worker Deno's own", async () => {
  const info = await initBackend("wasm", { wasmThreads: 2 });
  assert.equal(info.name, "wasm");
  assert.deepEqual(info.wasm, { threads: 2, requestedThreads: 2 });
  assert.equal(info.selfTest.passed, true, JSON.stringify(info.selfTest));
  assert.equal(globalThis.Worker, DenoWorker);
  // The heap is a shared memory that grows: tensors past its first size (16 MiB) still read and write, through
  // tfjs's kernels and this project's (Slice reads the heap directly).
  const big = tf.fill([32 * 1024 * 1024], 3);
  const tail = tf.slice(tf.mul(big, 2), [32 * 1024 * 1024 - 3], [3]);
  assert.deepEqual(Array.from(await tail.data()), [6, 6, 6]);
  tf.dispose([big, tail]);
});

Deno.test("wasm on 1 thread runs the single-threaded build", async () => {
  const info = await initBackend("wasm", { wasmThreads: 1 });
  assert.deepEqual(info.wasm, { threads: 1, requestedThreads: 1 });
  assert.equal(info.selfTest.passed, true, JSON.stringify(info.selfTest));
});

Deno.test("a threaded build that does not start gives way to the single-threaded one, which says why", async () => {
  stopWasmBackend();
  try {
    const build = await startWasmBackend({ threads: 2, startTimeoutMs: 1 });
    assert.equal(build.threads, 1);
    assert.equal(build.requestedThreads, 2);
    assert.match(build.fallbackReason ?? "", /threaded build failed to start.*did not load within 1 ms/);
    assert.equal(tf.getBackend(), "wasm");
    assert.equal((await tf.matMul(tf.ones([4, 4]), tf.ones([4, 4])).data())[0], 4);
    assert.equal(globalThis.Worker, DenoWorker);
  } finally {
    stopWasmBackend();
  }
});

Deno.test("the threaded wasm backend works inside a Web Worker, whose pthreads are its own workers", async () => {
  const worker = new Worker(new URL("./_wasm_worker.ts", import.meta.url), { type: "module" });
  try {
    const report = await new Promise<Record<string, unknown>>((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(event.message));
      };
      worker.postMessage("start");
    });
    assert.equal(report.error, undefined, String(report.error));
    assert.deepEqual(report.wasm, { threads: 2, requestedThreads: 2 });
    assert.equal(report.selfTestPassed, true);
    assert.equal(report.workerIsDenos, true);
    assert.ok((report.maxRelativeDiff as number) < 1e-4, `gradients differ by ${report.maxRelativeDiff}`);
  } finally {
    worker.terminate();
  }
});

Deno.test("a script on the threaded wasm backend exits by itself, with deno task serve's narrow permissions", async () => {
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
    .output();
  const npmCache = JSON.parse(new TextDecoder().decode(info.stdout)).npmCache;
  const script = `
    import * as tf from "@tensorflow/tfjs";
    import { initBackend } from "./src/backend/init_backend.ts";
    const info = await initBackend("wasm", { wasmThreads: 2 });
    const y = tf.conv2d(tf.ones([1, 32, 32, 8]), tf.ones([3, 3, 8, 8]), 1, "same");
    console.log(JSON.stringify({ wasm: info.wasm, y: (await y.data())[0] }));
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", `--allow-read=${npmCache}`, script],
    cwd: new URL("..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(killer);
  const errors = new TextDecoder().decode(stderr);
  assert.equal(code, 0, `exit ${code} (SIGKILL after 60 s means it never exited): ${errors}`);
  const lines = new TextDecoder().decode(stdout).trim().split("\n");
  assert.deepEqual(JSON.parse(lines.at(-1)!), { wasm: { threads: 2, requestedThreads: 2 }, y: 32 });
});
