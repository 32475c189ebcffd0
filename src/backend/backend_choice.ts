import type { WasmThreads } from "./start_wasm_backend.ts";
import type { AdapterReport } from "./probe_adapter.ts";

/** What a {@linkcode BackendTrial} measured on the backend it ran on. */
export interface TrialTiming {
  /** Training samples per second: `batch / median step time`. */
  samplesPerSec: number;
  /** Median milliseconds of one training step. */
  stepMs: number;
  batch: number;
  /** Timed steps (after one untimed warm-up). */
  steps: number;
}

/**
 * Times a few training steps on the current tfjs backend. Injected by the caller (src/backend sits below
 * the models it would train): the server passes `trainingSpeedTrial` (src/adapt), which trains the default
 * backbone.
 */
export type BackendTrial = () => Promise<TrialTiming>;

/** Why a backend has no timing: it did not start, or its trial failed. */
export interface TrialFailure {
  error: string;
}

/** The choice `auto` made between webgpu and wasm by timing both, as `/v1/info` reports it. */
export interface MeasuredChoice {
  chosen: "webgpu" | "wasm";
  webgpu: TrialTiming | TrialFailure;
  wasm: TrialTiming | TrialFailure;
  reason: string;
  /** When the trials ran (ISO 8601). */
  measuredAt: string;
  /** What the measurement is valid for: the adapter (description, vendor, architecture) and Deno version. */
  key: string;
  /** True when read from the data dir's cache rather than measured by this bring-up. */
  cached: boolean;
}

/** How `auto` decides between webgpu and wasm (see `initBackend`). */
export interface BackendChoiceOptions {
  /** Where the measured choice is cached, per adapter and Deno version: `<dataDir>/backend-choice.json`. */
  dataDir?: string;
  /** Times training steps on the current backend; without it, `auto` takes a cached choice or assumes. */
  trial?: BackendTrial;
  /** Measure on a software adapter too (llvmpipe and the like), where wasm is otherwise assumed faster. */
  measureSoftware?: boolean;
  /**
   * Threads wasm trains on in the trial: the adaptation jobs' count, where the backend being brought up
   * serves predictions on fewer; default `initBackend`'s `wasmThreads`.
   */
  wasmThreads?: WasmThreads;
}

/** The file, in the data dir, that holds measured choices. */
export const CHOICE_FILE = "backend-choice.json";

/**
 * What a measured choice is valid for: the adapter and the Deno version (a driver or runtime update can turn
 * the comparison around).
 *
 * @example
 * ```ts
 * import { choiceKey } from "./backend_choice.ts";
 * const key = choiceKey({ available: true, description: "NVIDIA H200", vendor: "nvidia", architecture: "hopper", isFallback: false });
 * console.log(key); // NVIDIA H200 (nvidia, hopper); deno 2.9.6
 * ```
 */
export function choiceKey(adapter: AdapterReport): string {
  const detail = [adapter.vendor, adapter.architecture].filter(Boolean).join(", ");
  return `${adapter.description}${detail ? ` (${detail})` : ""}; deno ${Deno.version.deno}`;
}

const isTiming = (t: TrialTiming | TrialFailure): t is TrialTiming => "samplesPerSec" in t;

/**
 * Picks the backend whose trial trained faster, or the one whose trial ran when the other failed;
 * undefined when neither ran.
 *
 * @example
 * ```ts
 * import { pickFaster } from "./backend_choice.ts";
 * const t = (samplesPerSec: number) => ({ samplesPerSec, stepMs: 16000 / samplesPerSec, batch: 16, steps: 3 });
 * const choice = pickFaster(t(120), t(55), "NVIDIA H200 (nvidia, hopper); deno 2.9.6");
 * console.log(choice?.chosen, choice?.reason); // webgpu, measured at bring-up: webgpu trains 120 samples/s, ...
 * ```
 */
export function pickFaster(
  webgpu: TrialTiming | TrialFailure,
  wasm: TrialTiming | TrialFailure,
  key: string,
): MeasuredChoice | undefined {
  const fmt = (t: TrialTiming) => `${t.samplesPerSec.toPrecision(3)} samples/s`;
  let chosen: "webgpu" | "wasm";
  let reason: string;
  if (isTiming(webgpu) && isTiming(wasm)) {
    chosen = webgpu.samplesPerSec >= wasm.samplesPerSec ? "webgpu" : "wasm";
    const [fast, slow] = chosen === "webgpu" ? [webgpu, wasm] : [wasm, webgpu];
    reason =
      `measured at bring-up: webgpu trains ${fmt(webgpu)}, wasm ${fmt(wasm)} (batch ${webgpu.batch}); ` +
      `${chosen} is ${(fast.samplesPerSec / slow.samplesPerSec).toFixed(2)}x as fast`;
  } else if (isTiming(webgpu) || isTiming(wasm)) {
    chosen = isTiming(webgpu) ? "webgpu" : "wasm";
    const failed = chosen === "webgpu" ? wasm as TrialFailure : webgpu as TrialFailure;
    reason = `measured at bring-up: only ${chosen} trained (${
      fmt((chosen === "webgpu" ? webgpu : wasm) as TrialTiming)
    }); ${chosen === "webgpu" ? "wasm" : "webgpu"} failed: ${failed.error}`;
  } else {
    return undefined;
  }
  return { chosen, webgpu, wasm, reason, measuredAt: new Date().toISOString(), key, cached: false };
}

type CacheFile = {
  format: "daft-edge-backend-choice/1";
  choices: Record<string, Omit<MeasuredChoice, "cached">>;
};

async function readCache(dataDir: string): Promise<CacheFile["choices"]> {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(`${dataDir}/${CHOICE_FILE}`)) as CacheFile;
    return parsed?.format === "daft-edge-backend-choice/1" && typeof parsed.choices === "object"
      ? parsed.choices
      : {};
  } catch {
    // Missing or unreadable: measured again, and rewritten.
    return {};
  }
}

function isChoice(value: unknown): value is Omit<MeasuredChoice, "cached"> {
  const c = value as MeasuredChoice | undefined;
  return (c?.chosen === "webgpu" || c?.chosen === "wasm") && typeof c.reason === "string" &&
    typeof c.webgpu === "object" && typeof c.wasm === "object" && typeof c.measuredAt === "string";
}

/**
 * The choice cached in `dataDir` for `key`, if there is a well-formed one.
 *
 * @example
 * ```ts
 * import { readCachedChoice } from "./backend_choice.ts";
 * console.log(await readCachedChoice(await Deno.makeTempDir(), "any")); // undefined
 * ```
 */
export async function readCachedChoice(dataDir: string, key: string): Promise<MeasuredChoice | undefined> {
  const entry = (await readCache(dataDir))[key];
  return isChoice(entry) ? { ...entry, key, cached: true } : undefined;
}

/**
 * Caches `choice` in `dataDir` under its key, keeping the other adapters' and Deno versions' entries; the
 * file is replaced atomically (written beside, then renamed).
 *
 * @example
 * ```ts
 * import { pickFaster, readCachedChoice, saveChoice } from "./backend_choice.ts";
 * const dir = await Deno.makeTempDir();
 * const t = (samplesPerSec: number) => ({ samplesPerSec, stepMs: 100, batch: 16, steps: 3 });
 * await saveChoice(dir, pickFaster(t(2), t(1), "gpu; deno 2")!);
 * console.log((await readCachedChoice(dir, "gpu; deno 2"))?.chosen); // webgpu
 * ```
 */
export async function saveChoice(dataDir: string, choice: MeasuredChoice): Promise<void> {
  const choices = await readCache(dataDir);
  const { cached: _cached, ...entry } = choice;
  choices[choice.key] = entry;
  const file: CacheFile = { format: "daft-edge-backend-choice/1", choices };
  const path = `${dataDir}/${CHOICE_FILE}`;
  await Deno.mkdir(dataDir, { recursive: true });
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(file, null, 2) + "\n");
  await Deno.rename(`${path}.tmp`, path);
}
