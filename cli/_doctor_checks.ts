// The checks `doctor` runs, each over the same src/ code the server runs: the WebGPU adapter probe, the
// backend bring-up with its self-test, the backbone registry, the configuration.
import { statfsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { initBackend } from "../src/backend/init_backend.ts";
import { probeAdapter } from "../src/backend/probe_adapter.ts";
import type { Config } from "../src/config.ts";
import { listBackbones, loadBackbone } from "../src/model/registry.ts";
import { missingPermissionFlags, serverPermissions } from "../src/serve/server_permissions.ts";

/** How a check came out: `fail` makes `doctor` exit non-zero; `warn` is worth reading but serves. */
export type CheckStatus = "ok" | "warn" | "fail";

/** One line of the report, and what a fleet tool reads in `--json`. */
export interface CheckResult {
  name: string;
  status: CheckStatus;
  summary: string;
  details?: Record<string, unknown>;
}

/** Free space under which the data directory is a warning, and under which it is a failure. */
export const FREE_SPACE_WARN_BYTES = 1024 ** 3;
export const FREE_SPACE_FAIL_BYTES = 64 * 1024 ** 2;

// Where the Vulkan loader looks for installable client drivers (ICDs), in its own order, and where
// distributions put libvulkan (deploy/daft-edge lets `doctor` read these).
const ICD_DIRS = [
  "/etc/vulkan/icd.d",
  "/usr/local/etc/vulkan/icd.d",
  "/usr/local/share/vulkan/icd.d",
  "/usr/share/vulkan/icd.d",
];
const LIB_DIRS = [
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/usr/lib64",
  "/usr/lib",
  "/lib/x86_64-linux-gnu",
  "/lib/aarch64-linux-gnu",
  "/usr/local/lib",
];
const VULKAN_LOADER = "libvulkan.so.1";

const canRead = (path: string) => Deno.permissions.querySync({ name: "read", path }).state === "granted";

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The WebGPU adapter, and whether it is hardware. A software adapter or none is a warning (wasm serves). */
export async function checkGpuAdapter(config: Config): Promise<CheckResult> {
  const adapter = await probeAdapter();
  const needed = config.backend === "webgpu";
  if (!adapter.available) {
    return {
      name: "gpu adapter",
      status: needed ? "fail" : "warn",
      summary: `none: ${adapter.reason}${
        needed ? "; BACKEND=webgpu needs one" : "; the wasm backend serves"
      }`,
      details: { ...adapter },
    };
  }
  const kind = adapter.isFallback ? "software" : "hardware";
  return {
    name: "gpu adapter",
    status: adapter.isFallback ? "warn" : "ok",
    summary: `${adapter.description} (${kind}${adapter.vendor ? `, ${adapter.vendor}` : ""})` +
      (adapter.isFallback ? ": a software rasteriser, so auto picks wasm" : ""),
    details: { ...adapter, hardware: !adapter.isFallback },
  };
}

/** Where {@linkcode checkVulkan} looks: the system's directories unless a test says otherwise. */
export interface VulkanSearch {
  libDirs: readonly string[];
  icdDirs: readonly string[];
}

/** The Vulkan loader (`libvulkan.so.1`) and the ICD manifests it would load, with each driver's library. */
export function checkVulkan(search: VulkanSearch = { libDirs: LIB_DIRS, icdDirs: ICD_DIRS }): CheckResult {
  const { libDirs, icdDirs } = search;
  const unreadable = [...icdDirs, ...libDirs].filter((p) => exists(p) && !canRead(p));
  const loaders = libDirs.map((d) => join(d, VULKAN_LOADER)).filter(exists);
  const icds: { file: string; library: string }[] = [];
  const override = ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"].map((v) => envIfAllowed(v)).find(Boolean);
  const manifests = override ? override.split(":").filter(Boolean) : icdDirs.flatMap((dir) => {
    try {
      return [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".json")).map((e) => join(dir, e.name))
        .sort();
    } catch {
      return [];
    }
  });
  for (const file of manifests) {
    try {
      const json = JSON.parse(Deno.readTextFileSync(file));
      icds.push({ file, library: String(json?.ICD?.library_path ?? "?") });
    } catch {
      icds.push({ file, library: "(unreadable manifest)" });
    }
  }
  const details = { loader: loaders, icds, ...(override ? { override } : {}), unreadable };
  if (loaders.length === 0) {
    return {
      name: "vulkan",
      status: "warn",
      summary: `no ${VULKAN_LOADER} found` +
        (unreadable.length ? ` (cannot read ${unreadable.join(", ")})` : " (apt install libvulkan1)") +
        "; WebGPU can only use GL, if anything",
      details,
    };
  }
  if (icds.length === 0) {
    return {
      name: "vulkan",
      status: "warn",
      summary: `loader ${loaders[0]}, but no ICD manifest in ${icdDirs.join(", ")} (no Vulkan driver)`,
      details,
    };
  }
  const drivers = icds.map((i) => `${i.file.split("/").pop()} -> ${i.library}`).join("; ");
  return { name: "vulkan", status: "ok", summary: `loader ${loaders[0]}; drivers: ${drivers}`, details };
}

/** Brings the backend up by the configured policy and reports its self-test against the CPU reference. */
export async function checkBackend(config: Config): Promise<CheckResult> {
  try {
    const info = await initBackend(config.backend, { wasmThreads: config.wasmThreads });
    const test = info.selfTest;
    const worst = Math.max(...Object.values(test.maxAbsDiff));
    const threads = info.wasm ? `, ${info.wasm.threads} thread${info.wasm.threads === 1 ? "" : "s"}` : "";
    return {
      name: "backend",
      status: test.passed ? "ok" : "fail",
      summary: `${info.name}${threads} (policy ${config.backend}): self-test ` +
        `${test.passed ? "passed" : "FAILED"}, max |diff| ${worst.toExponential(1)} ≤ ${test.tolerance}, ` +
        `${test.millis.toFixed(0)} ms` + (info.fellBack ? `; fell back: ${info.fallbackReason}` : ""),
      details: { ...info },
    };
  } catch (err) {
    return { name: "backend", status: "fail", summary: `did not start: ${(err as Error).message}` };
  }
}

/** The data directory: there (or creatable), writable, and with room for datasets and models. */
export function checkDataDir(config: Config): CheckResult {
  const dir = resolve(config.dataDir);
  const name = "data dir";
  let created = false;
  try {
    const stat = Deno.statSync(dir);
    if (!stat.isDirectory) return { name, status: "fail", summary: `${dir} is not a directory` };
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      return { name, status: "fail", summary: `${dir} cannot be read: ${(err as Error).message}` };
    }
    try {
      Deno.mkdirSync(dir, { recursive: true });
      created = true;
    } catch (err) {
      return {
        name,
        status: "fail",
        summary: `${dir} does not exist and cannot be created: ${(err as Error).message}`,
      };
    }
  }
  const probe = join(dir, `.doctor-${crypto.randomUUID()}`);
  try {
    Deno.writeTextFileSync(probe, "ok");
    Deno.removeSync(probe);
  } catch (err) {
    return { name, status: "fail", summary: `${dir} is not writable: ${(err as Error).message}` };
  } finally {
    if (created) Deno.removeSync(dir, { recursive: true });
  }
  let free: number | undefined;
  try {
    const fs = statfsSync(created ? dirname(dir) : dir);
    free = fs.bavail * fs.bsize;
  } catch { /* reported as unknown */ }
  const gib = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`;
  const status: CheckStatus = free === undefined
    ? "warn"
    : free < FREE_SPACE_FAIL_BYTES
    ? "fail"
    : free < FREE_SPACE_WARN_BYTES
    ? "warn"
    : "ok";
  return {
    name,
    status,
    summary: `${dir} ${created ? "can be created" : "is"} writable, ` +
      (free === undefined ? "free space unknown" : `${gib(free)} free`),
    details: { path: dir, freeBytes: free ?? null },
  };
}

/**
 * The permissions this process has against those the configuration needs, as the server itself works them
 * out ({@linkcode serverPermissions}: the listening address and the peers, the data directory, the backbone
 * weights and the worker's code, the settings' variables). Any missing is a failure; holding everything
 * (`-A`) is noted, as the release launcher grants only these.
 */
export function checkPermissions(config: Config): CheckResult {
  const needed = serverPermissions(config);
  const missing = missingPermissionFlags(needed);
  const unrestricted = (["read", "write", "net", "env", "run", "ffi", "sys"] as const)
    .filter((name) => Deno.permissions.querySync({ name }).state === "granted");
  const count = Object.values(needed).reduce((n, list) => n + list.length, 0);
  if (missing.length) {
    return {
      name: "permissions",
      status: "fail",
      summary: `missing for this configuration: ${missing.join(" ")}`,
      details: { missing, needed, unrestricted },
    };
  }
  return {
    name: "permissions",
    status: "ok",
    summary: `all ${count} needed are granted` +
      (unrestricted.length
        ? `; unrestricted: ${unrestricted.join(", ")} (the release launcher narrows these)`
        : ""),
    details: { needed, unrestricted },
  };
}

/** Each registered backbone builds from its weights; the default one failing is a failure. */
export async function checkBackbones(config: Config): Promise<CheckResult> {
  const loaded: string[] = [];
  const failed: { name: string; error: string }[] = [];
  for (const { name } of listBackbones()) {
    try {
      const backbone = await loadBackbone({ name });
      loaded.push(`${name} (${backbone.featureDim} features)`);
      backbone.model.dispose();
    } catch (err) {
      failed.push({ name, error: (err as Error).message });
    }
  }
  const defaultFailed = failed.some((f) => f.name === config.defaultBackbone) ||
    !listBackbones().some((b) => b.name === config.defaultBackbone);
  const status: CheckStatus = defaultFailed ? "fail" : failed.length ? "warn" : "ok";
  return {
    name: "backbones",
    status,
    summary: [
      loaded.length ? `load: ${loaded.join(", ")}` : "",
      ...failed.map((f) => `${f.name} FAILED: ${f.error}`),
      defaultFailed ? `the default backbone '${config.defaultBackbone}' is not usable` : "",
    ].filter(Boolean).join("; "),
    details: { loaded, failed, default: config.defaultBackbone },
  };
}

/**
 * The listening port is free; if a daft-edge already answers `/healthz` there (the service is running),
 * that is reported as such, not as a clash.
 */
export async function checkPort(config: Config): Promise<CheckResult> {
  const name = "port";
  const where = `${config.hostname}:${config.port}`;
  if (config.port === 0) return { name, status: "ok", summary: "0: the server takes any free port" };
  try {
    const listener = Deno.listen({ hostname: config.hostname, port: config.port });
    listener.close();
    return { name, status: "ok", summary: `${where} is free` };
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse)) {
      return { name, status: "fail", summary: `cannot listen on ${where}: ${(err as Error).message}` };
    }
  }
  const host = ["0.0.0.0", "::", "[::]"].includes(config.hostname) ? "127.0.0.1" : config.hostname;
  try {
    const res = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${config.port}/healthz`, {
      signal: AbortSignal.timeout(2000),
    });
    const body = await res.json().catch(() => undefined);
    if (res.ok && body?.status === "ok") {
      return {
        name,
        status: "ok",
        summary: `${where} is in use by a running daft-edge (its /healthz answers)`,
      };
    }
  } catch { /* not ours, or not allowed to ask */ }
  return { name, status: "fail", summary: `${where} is in use by another process` };
}

function envIfAllowed(variable: string): string | undefined {
  return Deno.permissions.querySync({ name: "env", variable }).state === "granted"
    ? Deno.env.get(variable)
    : undefined;
}
