import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { initBackend } from "../src/backend/init_backend.ts";
import { probeAdapter } from "../src/backend/probe_adapter.ts";
import { RuntimeError } from "../src/errors.ts";

// These run the real WebGPU path: on the CI machines that is Mesa's llvmpipe software adapter.

Deno.test("the WebGPU adapter is found and reported, software or not", async () => {
  const report = await probeAdapter();
  assert.ok(report.available, report.reason);
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
