import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import "@tensorflow/tfjs-backend-wasm";
import { RuntimeError } from "../errors.ts";
import { type AdapterReport, probeAdapter } from "./probe_adapter.ts";
import { runSelfTest, type SelfTestResult } from "./self_test.ts";
import { startWasmBackend, type WasmBuild, type WasmThreads } from "./start_wasm_backend.ts";
import { registerWasmTrainingKernels } from "./wasm_training.ts";
import { registerWebgpuTrainingKernels, unregisterWebgpuTrainingKernels } from "./webgpu_training.ts";

/**
 * Which tfjs backend to run on. `auto` takes WebGPU on a hardware adapter that passes the self-test; on a
 * software adapter (llvmpipe and the like) or none, it takes `wasm` (XNNPACK plus this project's gradient
 * kernels), which trains several times faster there; `cpu` (pure JS) is the last resort.
 */
export type BackendPolicy = "auto" | "webgpu" | "wasm" | "cpu";

/** The backends a policy may name. */
export const BACKEND_POLICIES: readonly BackendPolicy[] = ["auto", "webgpu", "wasm", "cpu"];

/** What the runtime ended up computing on, and why. */
export interface BackendInfo {
  /** The tfjs backend in use: "webgpu", "wasm" or "cpu". */
  name: string;
  policy: BackendPolicy;
  adapter: AdapterReport;
  selfTest: SelfTestResult;
  /** True when the policy's first choice could not be had (or, for `auto`, the adapter is software). */
  fellBack: boolean;
  fallbackReason?: string;
  /** On `wasm`: the build and its thread count (and why not threaded, if more threads were asked for). */
  wasm?: WasmBuild;
}

/** Options of {@linkcode initBackend}. */
export interface InitBackendOptions {
  /** Threads for the `wasm` backend; default `auto` (one per logical core, at most 8). */
  wasmThreads?: WasmThreads;
  /**
   * On `webgpu`: run the fused training ops on this project's WGSL kernels (`registerWebgpuTrainingKernels`);
   * default true. False gives the stock tfjs-backend-webgpu graph (the benchmark's baseline).
   */
  webgpuKernels?: boolean;
}

// The cpu backend prints a "use tfjs-node" banner under Deno; there is no tfjs-node for Deno to use.
tf.env().set("IS_NODE", false);

let current: BackendInfo | undefined;

/** The backend chosen by the last {@linkcode initBackend}, if any. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}

async function tryWebgpu(kernels: boolean): Promise<string | undefined> {
  try {
    if (kernels) registerWebgpuTrainingKernels();
    else unregisterWebgpuTrainingKernels();
    const ok = await tf.setBackend("webgpu");
    if (!ok) return "tfjs could not initialise the webgpu backend";
    await tf.ready();
    return undefined;
  } catch (err) {
    return `webgpu backend failed to start: ${(err as Error).message}`;
  }
}

async function tryWasm(threads: WasmThreads | undefined): Promise<WasmBuild | string> {
  try {
    registerWasmTrainingKernels();
    const build = await startWasmBackend({ threads });
    await tf.ready();
    if (build.fallbackReason) {
      console.warn(
        `[backend] wasm runs single-threaded, not on ${build.requestedThreads}: ${build.fallbackReason}`,
      );
    }
    return build;
  } catch (err) {
    return `wasm backend failed to start: ${(err as Error).message}`;
  }
}

/**
 * Brings up a tfjs backend by policy and checks it numerically against the CPU reference.
 * `webgpu` and `wasm` fail with a RuntimeError when that backend is missing or wrong; `auto` falls back and
 * says why (in the result and on stderr). `wasm` runs on `options.wasmThreads` threads (tfjs-backend-wasm's
 * threaded build), or single-threaded when that build does not start (`wasm.fallbackReason` says why).
 *
 * @example
 * ```ts
 * import { initBackend } from "./init_backend.ts";
 * const info = await initBackend("auto", { wasmThreads: "auto" });
 * console.log(info.name, info.adapter.description, info.selfTest.passed, info.wasm?.threads);
 * ```
 */
export async function initBackend(
  policy: BackendPolicy = "auto",
  options: InitBackendOptions = {},
): Promise<BackendInfo> {
  if (!BACKEND_POLICIES.includes(policy)) {
    throw new RuntimeError(
      "invalid",
      "unknown_backend",
      `backend must be one of ${BACKEND_POLICIES.join(", ")}`,
      {
        backend: policy,
      },
    );
  }
  const adapter = await probeAdapter();
  let fallbackReason: string | undefined;
  if (policy === "webgpu" || (policy === "auto" && adapter.available && !adapter.isFallback)) {
    fallbackReason = adapter.available ? await tryWebgpu(options.webgpuKernels ?? true) : adapter.reason;
    if (!fallbackReason) {
      const selfTest = await runSelfTest();
      if (selfTest.passed) return (current = { name: "webgpu", policy, adapter, selfTest, fellBack: false });
      fallbackReason = selfTest.error
        ? `WebGPU self-test failed: ${selfTest.error}`
        : `WebGPU self-test out of tolerance: ${JSON.stringify(selfTest.maxAbsDiff)}`;
    }
    if (policy === "webgpu") {
      throw new RuntimeError(
        "unavailable",
        "webgpu_unavailable",
        `WebGPU was required but ${fallbackReason}`,
        {
          adapter,
        },
      );
    }
  } else if (policy === "auto") {
    fallbackReason = adapter.available
      ? `the WebGPU adapter is a software fallback (${adapter.description}); wasm trains faster on this CPU`
      : adapter.reason;
  }
  if (policy === "auto" || policy === "wasm") {
    const wasm = await tryWasm(options.wasmThreads);
    if (typeof wasm !== "string") {
      const selfTest = await runSelfTest();
      if (selfTest.passed) {
        if (fallbackReason) console.warn(`[backend] using wasm, not webgpu: ${fallbackReason}`);
        return (current = {
          name: "wasm",
          policy,
          adapter,
          selfTest,
          fellBack: policy === "auto",
          fallbackReason,
          wasm,
        });
      }
      fallbackReason = `wasm self-test failed: ${selfTest.error ?? JSON.stringify(selfTest.maxAbsDiff)}`;
    } else {
      fallbackReason = wasm;
    }
    if (policy === "wasm") {
      throw new RuntimeError("unavailable", "wasm_unavailable", `wasm was required but ${fallbackReason}`);
    }
  }
  if (fallbackReason) console.warn(`[backend] falling back to the pure-JS cpu backend: ${fallbackReason}`);
  await tf.setBackend("cpu");
  await tf.ready();
  const selfTest = await runSelfTest();
  current = { name: "cpu", policy, adapter, selfTest, fellBack: policy === "auto", fallbackReason };
  return current;
}
