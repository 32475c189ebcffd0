import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import "@tensorflow/tfjs-backend-wasm";
import { RuntimeError } from "../errors.ts";
import {
  type BackendChoiceOptions,
  choiceKey,
  type MeasuredChoice,
  pickFaster,
  readCachedChoice,
  saveChoice,
  type TrialFailure,
  type TrialTiming,
} from "./backend_choice.ts";
import { type AdapterReport, probeAdapter } from "./probe_adapter.ts";
import { runSelfTest, type SelfTestResult } from "./self_test.ts";
import { startWasmBackend, type WasmBuild, type WasmThreads } from "./start_wasm_backend.ts";
import { registerWasmTrainingKernels } from "./wasm_training.ts";
import { registerWebgpuTrainingKernels, unregisterWebgpuTrainingKernels } from "./webgpu_training.ts";

/**
 * Which tfjs backend to run on. `auto`, on a hardware adapter, times a few training steps on WebGPU and on
 * `wasm` and takes the faster (cached per adapter and Deno version; see {@linkcode InitBackendOptions.choice});
 * without a trial to run or a cached result, it takes WebGPU there. On a software adapter (llvmpipe and the
 * like) or none, it takes `wasm` (XNNPACK plus this project's gradient kernels), which trains several times
 * faster there; `cpu` (pure JS) is the last resort.
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
  /** For `auto` on a hardware adapter: both backends' measured training speed and the choice it made. */
  choice?: MeasuredChoice;
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
  /**
   * How `auto` decides on a hardware adapter: the choice cached in `dataDir` for this adapter and Deno
   * version, else `trial` timed on webgpu and on wasm (the faster wins, and is cached), else WebGPU.
   */
  choice?: BackendChoiceOptions;
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
  const choice = policy === "auto" && adapter.available &&
      (!adapter.isFallback || options.choice?.measureSoftware)
    ? await measuredChoice(adapter, options)
    : undefined;
  let fallbackReason: string | undefined;
  const webgpuFirst = choice ? choice.chosen === "webgpu" : adapter.available && !adapter.isFallback;
  if (policy === "webgpu" || (policy === "auto" && webgpuFirst)) {
    fallbackReason = adapter.available ? await tryWebgpu(options.webgpuKernels ?? true) : adapter.reason;
    if (!fallbackReason) {
      const selfTest = await runSelfTest();
      if (selfTest.passed) {
        return (current = { name: "webgpu", policy, adapter, selfTest, fellBack: false, choice });
      }
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
  } else if (policy === "auto" && !choice) {
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
          // A measured choice of wasm is not a fallback, unless WebGPU was chosen and then failed.
          fellBack: policy === "auto" && (!choice || choice.chosen === "webgpu"),
          fallbackReason,
          wasm,
          choice,
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

// Times `trial` on one backend: brought up as initBackend would, then trained.
async function timeOn(
  name: "webgpu" | "wasm",
  options: InitBackendOptions,
  trial: () => Promise<TrialTiming>,
): Promise<TrialTiming | TrialFailure> {
  const failed = name === "webgpu"
    ? await tryWebgpu(options.webgpuKernels ?? true)
    : await tryWasm(options.choice?.wasmThreads ?? options.wasmThreads).then((w) =>
      typeof w === "string" ? w : undefined
    );
  if (failed) return { error: failed };
  try {
    return await trial();
  } catch (err) {
    return { error: `training trial failed: ${(err as Error).message}` };
  }
}

// The choice cached for this adapter and Deno version, else a new measurement (cached when it can be), else
// undefined (no trial to run, or neither backend trained).
async function measuredChoice(
  adapter: AdapterReport,
  options: InitBackendOptions,
): Promise<MeasuredChoice | undefined> {
  const { dataDir, trial } = options.choice ?? {};
  const key = choiceKey(adapter);
  const cached = dataDir ? await readCachedChoice(dataDir, key) : undefined;
  if (cached || !trial) return cached;
  const webgpu = await timeOn("webgpu", options, trial);
  const wasm = await timeOn("wasm", options, trial);
  const choice = pickFaster(webgpu, wasm, key);
  if (choice) console.warn(`[backend] ${choice.reason}`);
  if (choice && dataDir) {
    await saveChoice(dataDir, choice).catch((err) =>
      console.warn(`[backend] could not cache the backend choice: ${(err as Error).message}`)
    );
  }
  return choice;
}
