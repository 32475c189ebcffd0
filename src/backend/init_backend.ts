import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { RuntimeError } from "../errors.ts";
import { type AdapterReport, probeAdapter } from "./probe_adapter.ts";
import { runSelfTest, type SelfTestResult } from "./self_test.ts";

/** Which tfjs backend to run on. `auto` takes WebGPU when its adapter passes the self-test. */
export type BackendPolicy = "auto" | "webgpu" | "cpu";

/** The backends a policy may name. */
export const BACKEND_POLICIES: readonly BackendPolicy[] = ["auto", "webgpu", "cpu"];

/** What the runtime ended up computing on, and why. */
export interface BackendInfo {
  /** The tfjs backend in use: "webgpu" or "cpu". */
  name: string;
  policy: BackendPolicy;
  adapter: AdapterReport;
  selfTest: SelfTestResult;
  /** True when `auto` wanted WebGPU and could not have it. */
  fellBack: boolean;
  fallbackReason?: string;
}

// The cpu backend prints a "use tfjs-node" banner under Deno; there is no tfjs-node for Deno to use.
tf.env().set("IS_NODE", false);

let current: BackendInfo | undefined;

/** The backend chosen by the last {@linkcode initBackend}, if any. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}

async function tryWebgpu(): Promise<string | undefined> {
  try {
    const ok = await tf.setBackend("webgpu");
    if (!ok) return "tfjs could not initialise the webgpu backend";
    await tf.ready();
    return undefined;
  } catch (err) {
    return `webgpu backend failed to start: ${(err as Error).message}`;
  }
}

/**
 * Brings up a tfjs backend by policy and checks it numerically against the CPU reference.
 * `webgpu` fails with a RuntimeError if WebGPU is missing or wrong; `auto` falls back to `cpu` and says why
 * (in the result and on stderr).
 *
 * @example
 * ```ts
 * import { initBackend } from "./init_backend.ts";
 * const info = await initBackend("auto");
 * console.log(info.name, info.adapter.description, info.selfTest.passed);
 * ```
 */
export async function initBackend(policy: BackendPolicy = "auto"): Promise<BackendInfo> {
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
  if (policy !== "cpu") {
    fallbackReason = adapter.available ? await tryWebgpu() : adapter.reason;
    if (!fallbackReason) {
      const selfTest = await runSelfTest();
      if (selfTest.passed) {
        current = { name: "webgpu", policy, adapter, selfTest, fellBack: false };
        return current;
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
    console.warn(`[backend] falling back to the cpu backend: ${fallbackReason}`);
  }
  await tf.setBackend("cpu");
  await tf.ready();
  const selfTest = await runSelfTest();
  current = { name: "cpu", policy, adapter, selfTest, fellBack: policy === "auto", fallbackReason };
  return current;
}
