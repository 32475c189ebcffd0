import { parseArgs } from "node:util";
import { z } from "zod";
import { BACKEND_POLICIES, type BackendPolicy } from "./backend/init_backend.ts";
import { WASM_MAX_THREADS, type WasmThreads } from "./backend/start_wasm_backend.ts";
import { RuntimeError } from "./errors.ts";
import { DEFAULT_DRIFT_THRESHOLD } from "./adapt/drift_score.ts";
import { DEFAULT_BACKBONE } from "./model/registry.ts";
import { DEFAULT_MAX_SIDE } from "./data/image.ts";

/** The server's settings, after flags and environment are merged and validated. */
export interface Config {
  /** TCP port to listen on; 0 picks a free one. */
  port: number;
  /** Interface to bind; must be a loopback address unless `apiToken` is set. */
  hostname: string;
  /** Where datasets, models and jobs are kept. */
  dataDir: string;
  /** tfjs backend policy for predictions and for each adaptation worker. */
  backend: BackendPolicy;
  /** Threads the wasm backend computes on in each adaptation worker. */
  wasmThreads: WasmThreads;
  /**
   * Threads the server's own wasm backend computes predictions on: `auto` is half the logical cores (at
   * least 1), so that a training job and the predictions served meanwhile each keep cores of their own.
   */
  servingWasmThreads: WasmThreads;
  /** Bearer token every mutating endpoint requires; unset means localhost only. */
  apiToken?: string;
  /**
   * Host names (lowercase, without port; `*` for any) a request's `Host` may name besides the loopback
   * names. Empty: only loopback names without an API token, any name with one.
   */
  allowedHosts: string[];
  /** Backbone an adaptation uses when the request names none, and the one `/readyz` waits for. */
  defaultBackbone: string;
  /** Largest request body, in bytes. */
  maxBodyBytes: number;
  /** Largest single image file, in bytes. */
  maxImageBytes: number;
  /** Largest image, in pixels (width x height), checked from the header before decoding. */
  maxImagePixels: number;
  /** Longest side an image is decoded and stored at; larger ones are shrunk (antialiased) on arrival. */
  maxImageSide: number;
  /** Most source pixels (summed over the headers) one upload or prediction request may decode. */
  maxRequestPixels: number;
  /** Most stored pixels (after `maxImageSide`) a dataset may hold. */
  maxDatasetPixels: number;
  /** Most samples one upload may carry. */
  maxSamplesPerRequest: number;
  /** Most samples a dataset may hold. */
  maxSamplesPerDataset: number;
  /** Most images one prediction request may carry. */
  maxPredictImages: number;
  /** Most adaptation jobs waiting behind the running one. */
  maxQueuedJobs: number;
  /** How long a cancelled job may take to stop before its worker is terminated, in ms. */
  cancelGraceMs: number;
  /** Most adapted models kept loaded for predictions (the active one always is). */
  maxCachedModels: number;
  /** Images in each served model's drift window; 0 turns the drift monitor off. */
  driftWindow: number;
  /** Drift score at or over which the monitor raises a `drift` event. */
  driftThreshold: number;
  /**
   * Served images kept in memory per model for a `bn-refresh` from traffic (`"source": "traffic"`); 0 (the
   * default) keeps none, so a server keeps no user images unless asked to.
   */
  keepTraffic: number;
  /** Most bytes of served images kept for all models together (the oldest go first). */
  keepTrafficBytes: number;
  /** Boxes `POST /v1/models/import` may pull from: `host` (any port) or `host:port`, lowercased. */
  peers: string[];
}

/** One row of the settings table: what to pass, where, and what it defaults to. */
export interface ConfigSetting {
  key: keyof Config;
  flag: string;
  env: string;
  default: string;
  description: string;
}

const MiB = 1024 * 1024;
// A host name, an IPv4 address or a bracketed IPv6 address, then an optional port.
const PEER = /^([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(:\d{1,5})?$/;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
// A DNS name, an IPv4 address, or a bracketed IPv6 address, as a Host header names them (no port).
const HOST_NAME =
  /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])$/;
const notHostNames = (hosts: string[]) => hosts.filter((h) => h !== "*" && !HOST_NAME.test(h));

const int = (min: number, max: number) => {
  const error = `must be a whole number from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

/** A thread count: `auto` or 1 to the wasm backend's most. */
const threadsSchema = z.union([z.literal("auto"), int(1, WASM_MAX_THREADS)], {
  error: `must be auto or a whole number from 1 to ${WASM_MAX_THREADS}`,
});

// The source of truth for every setting: its flag, environment variable, default and rule.
const SETTINGS = {
  port: {
    env: "PORT",
    default: 8787,
    schema: int(0, 65535),
    doc: "TCP port to listen on (0: any free port)",
  },
  hostname: {
    env: "LISTEN_HOSTNAME",
    default: undefined,
    schema: z.string().min(1).optional(),
    doc: "interface to bind; default 127.0.0.1, or 0.0.0.0 when an API token is set. " +
      "A non-loopback address requires an API token",
  },
  dataDir: {
    env: "DATA_DIR",
    default: "./data",
    schema: z.string().min(1),
    doc: "directory for datasets, models and jobs (created if missing)",
  },
  backend: {
    env: "BACKEND",
    default: "auto",
    schema: z.enum(BACKEND_POLICIES as [BackendPolicy, ...BackendPolicy[]]),
    doc: `tfjs backend policy, one of ${BACKEND_POLICIES.join(", ")}`,
  },
  wasmThreads: {
    env: "WASM_THREADS",
    default: "auto",
    schema: threadsSchema,
    doc:
      `threads for the wasm backend in adaptation jobs: auto (one per logical core) or 1 to ${WASM_MAX_THREADS}; ` +
      "1 runs the single-threaded build",
  },
  servingWasmThreads: {
    env: "SERVING_WASM_THREADS",
    default: "auto",
    schema: threadsSchema,
    doc: `threads the server's wasm backend predicts on: auto (half the logical cores, at least 1, so a ` +
      `training job does not stall predictions) or 1 to ${WASM_MAX_THREADS}`,
  },
  apiToken: {
    env: "API_TOKEN",
    default: undefined,
    schema: z.string().regex(/^[A-Za-z0-9._~+/-]{16,}=*$/, {
      message: "must be at least 16 characters of A-Z a-z 0-9 . _ ~ + / -",
    }).optional(),
    doc: "bearer token for mutating endpoints (16+ characters); without one the server binds to localhost",
  },
  allowedHosts: {
    env: "ALLOWED_HOSTS",
    default: undefined,
    schema: z.string().optional()
      .transform((list) =>
        (list ?? "").split(",").map((h) => h.trim().toLowerCase().replace(/\.$/, "")).filter(Boolean)
      )
      .refine((hosts) => notHostNames(hosts).length === 0, {
        error: (issue) =>
          `not host names: ${notHostNames(issue.input as string[]).join(", ")} (give names or addresses ` +
          "without scheme or port, comma-separated, or *)",
      }),
    doc: "comma-separated host names requests may address (the Host header, any port) besides localhost, " +
      "127.0.0.1 and [::1]; * for any. Unset: only those without an API token (a DNS-rebinding guard), " +
      "any with one",
  },
  defaultBackbone: {
    env: "DEFAULT_BACKBONE",
    default: DEFAULT_BACKBONE,
    schema: z.string().min(1),
    doc: "backbone used when an adaptation names none; /readyz waits until it loads",
  },
  maxBodyBytes: {
    env: "MAX_BODY_BYTES",
    default: 32 * MiB,
    schema: int(1024, 2 ** 31),
    doc: "largest request body",
  },
  maxImageBytes: {
    env: "MAX_IMAGE_BYTES",
    default: 8 * MiB,
    schema: int(64, 2 ** 31),
    doc: "largest single image file",
  },
  maxImagePixels: {
    env: "MAX_IMAGE_PIXELS",
    default: 4096 * 4096,
    schema: int(1, 2 ** 28),
    doc: "largest image in pixels (width x height), checked before decoding",
  },
  maxImageSide: {
    env: "MAX_IMAGE_SIDE",
    default: DEFAULT_MAX_SIDE,
    schema: int(32, 8192),
    doc: "longest side an image is decoded and stored at; larger images are shrunk (antialiased) on arrival",
  },
  maxRequestPixels: {
    env: "MAX_REQUEST_PIXELS",
    default: 4 * 4096 * 4096,
    schema: int(1, 2 ** 40),
    doc: "most source pixels, summed over the image headers, one upload or prediction may decode",
  },
  maxDatasetPixels: {
    env: "MAX_DATASET_PIXELS",
    default: 2 ** 31,
    schema: int(1, 2 ** 46),
    doc: "most stored pixels (each image after --max-image-side) a dataset may hold",
  },
  maxSamplesPerRequest: {
    env: "MAX_SAMPLES_PER_REQUEST",
    default: 512,
    schema: int(1, 100_000),
    doc: "most samples in one upload",
  },
  maxSamplesPerDataset: {
    env: "MAX_SAMPLES_PER_DATASET",
    default: 10_000,
    schema: int(1, 1_000_000),
    doc: "most samples a dataset may hold",
  },
  maxPredictImages: {
    env: "MAX_PREDICT_IMAGES",
    default: 64,
    schema: int(1, 10_000),
    doc: "most images in one prediction request",
  },
  maxQueuedJobs: {
    env: "MAX_QUEUED_JOBS",
    default: 8,
    schema: int(0, 1000),
    doc: "most adaptation jobs waiting behind the running one (then 429)",
  },
  cancelGraceMs: {
    env: "CANCEL_GRACE_MS",
    default: 10_000,
    schema: int(0, 600_000),
    doc: "how long a cancelled job may take to stop before its worker is terminated (ms)",
  },
  maxCachedModels: {
    env: "MAX_CACHED_MODELS",
    default: 4,
    schema: int(1, 100),
    doc: "most adapted models kept in memory for predictions",
  },
  driftWindow: {
    env: "DRIFT_WINDOW",
    default: 64,
    schema: int(0, 4096),
    doc: "images in each served model's drift window (GET /v1/models/{id}/drift); 0 turns the monitor off",
  },
  driftThreshold: {
    env: "DRIFT_THRESHOLD",
    default: DEFAULT_DRIFT_THRESHOLD,
    schema: z.coerce.number({ error: "must be a number above 0" }).positive({
      error: "must be a number above 0",
    })
      .max(1e6, { error: "must be at most 1000000" }),
    doc: "drift score at or over which the monitor raises a drift event (scale: docs/DRIFT.md)",
  },
  keepTraffic: {
    env: "KEEP_TRAFFIC",
    default: 0,
    schema: int(0, 4096),
    doc: "served images kept in memory per model, for a bn-refresh from traffic " +
      '(POST /v1/adaptations with "source": "traffic"); 0 keeps none (the default: no user images are kept)',
  },
  keepTrafficBytes: {
    env: "KEEP_TRAFFIC_BYTES",
    default: 64 * MiB,
    schema: int(1024, 2 ** 31),
    doc: "most bytes of kept served images, all models together (the oldest images go first)",
  },
  peers: {
    env: "PEERS",
    default: "",
    schema: z.string()
      .transform((list) => list.split(",").map((p) => p.trim().toLowerCase()).filter((p) => p !== ""))
      .pipe(
        z.array(z.string().regex(PEER, { error: (issue) => `'${issue.input}' is not host or host:port` })),
      ),
    doc: "comma-separated host or host:port of the boxes `POST /v1/models/import` may pull a model from",
  },
} satisfies Record<keyof Config, { env: string; default: unknown; schema: z.ZodType; doc: string }>;

type Key = keyof typeof SETTINGS;
const KEYS = Object.keys(SETTINGS) as Key[];
const flagOf = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * Every setting as a row for a table: flag, environment variable, default, description.
 *
 * @example
 * ```ts
 * import { CONFIG_SETTINGS } from "./config.ts";
 * const port = CONFIG_SETTINGS.find((s) => s.key === "port")!;
 * console.assert(port.flag === "--port" && port.env === "PORT" && port.default === "8787");
 * ```
 */
export const CONFIG_SETTINGS: readonly ConfigSetting[] = KEYS.map((key) => ({
  key,
  flag: `--${flagOf(key)}`,
  env: SETTINGS[key].env,
  default: SETTINGS[key].default === undefined ? "" : String(SETTINGS[key].default),
  description: SETTINGS[key].doc,
}));

/** The environment variables the configuration reads (for a narrow `--allow-env`). */
export const CONFIG_ENV_VARS: readonly string[] = CONFIG_SETTINGS.map((s) => s.env);

/**
 * The settings as a Markdown table, for the README and `--help`.
 *
 * @example
 * ```ts
 * import { configTable } from "./config.ts";
 * console.assert(configTable().includes("| `--data-dir` | `DATA_DIR` | `./data` |"));
 * ```
 */
export function configTable(): string {
  const cell = (text: string) => text.replaceAll("|", "\\|");
  const rows = CONFIG_SETTINGS.map((s) =>
    `| \`${s.flag}\` | \`${s.env}\` | ${s.default ? `\`${s.default}\`` : "—"} | ${cell(s.description)} |`
  );
  return ["| flag | environment | default | meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

/** What {@linkcode loadConfig} returns: the settings, or a request for help. */
export type ConfigResult = { help: true } | { help: false; config: Config };

/**
 * Reads the settings from command-line flags, then the environment, then the defaults, and validates them.
 * Flags win over the environment. `--help` asks for the table instead.
 *
 * @throws {RuntimeError} `invalid`/`invalid_config` naming each bad setting in `details.issues`.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * const result = loadConfig(["--port", "9000"], (name) => ({ DATA_DIR: "/tmp/daft" } as Record<string, string>)[name]);
 * if (!result.help) console.assert(result.config.port === 9000 && result.config.dataDir === "/tmp/daft");
 * ```
 */
export function loadConfig(args: string[], env: (name: string) => string | undefined): ConfigResult {
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: "boolean", short: "h" },
        ...Object.fromEntries(KEYS.map((k) => [flagOf(k), { type: "string" as const }])),
      },
    }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new RuntimeError("invalid", "invalid_config", (err as Error).message, {
      flags: CONFIG_SETTINGS.map((s) => s.flag),
    });
  }
  if (flags.help) return { help: true };

  const issues: { setting: string; source: string; message: string }[] = [];
  const config: Record<string, unknown> = {};
  for (const key of KEYS) {
    const setting = SETTINGS[key];
    const fromFlag = flags[flagOf(key)] as string | undefined;
    const fromEnv = env(setting.env);
    const raw = fromFlag ?? (fromEnv === "" ? undefined : fromEnv) ?? setting.default;
    const source = fromFlag !== undefined ? `--${flagOf(key)}` : fromEnv ? setting.env : "default";
    const parsed = (setting.schema as z.ZodType).safeParse(raw);
    if (parsed.success) config[key] = parsed.data;
    else issues.push({ setting: key, source, message: parsed.error.issues.map((i) => i.message).join("; ") });
  }
  if (issues.length === 0) {
    config.hostname ??= config.apiToken ? "0.0.0.0" : "127.0.0.1";
    if (!config.apiToken && !LOOPBACK.has(config.hostname as string)) {
      issues.push({
        setting: "hostname",
        source: flags.hostname !== undefined ? "--hostname" : "LISTEN_HOSTNAME",
        message: `binding to ${config.hostname} needs an API token (--api-token or API_TOKEN); ` +
          "without one the server only listens on localhost",
      });
    }
  }
  if (issues.length) {
    throw new RuntimeError(
      "invalid",
      "invalid_config",
      `invalid configuration: ${issues.map((i) => `${i.setting} (${i.source}): ${i.message}`).join("; ")}`,
      { issues },
    );
  }
  return { help: false, config: config as unknown as Config };
}

/** Whether `hostname` only accepts connections from this machine. */
export function isLoopback(hostname: string): boolean {
  return LOOPBACK.has(hostname);
}
