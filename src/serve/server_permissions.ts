import { resolve } from "node:path";
import { type Config, CONFIG_ENV_VARS } from "../config.ts";
import { CODEC_PERMISSIONS } from "../data/_sharp.ts";

/** The Deno permissions the server needs for one configuration: exactly these, nothing wider. */
export interface ServerPermissions {
  /** `host:port` the server listens on, then the peers it may pull models from (`host` or `host:port`). */
  net: string[];
  /** The data directory, the tiny backbone's weights (`fixtures/`), the training worker's code (`src/`), and
   * Deno's npm cache (the tfjs wasm binaries) when known. */
  read: string[];
  /** The data directory. */
  write: string[];
  /** The configuration's environment variables, and the image codec's own two. */
  env: string[];
  /** Deno's npm cache, when known: the image codec (sharp) is a native addon loaded from it. */
  ffi: string[];
  /** What the image codec reads of the system at start-up: the CPU count and the platform report. */
  sys: string[];
}

const ROOT = new URL("../../", import.meta.url);
const pathOf = (relative: string) => decodeURIComponent(new URL(relative, ROOT).pathname).replace(/\/$/, "");

/**
 * What the server needs for `config`, with paths made absolute against the working directory. `npmCache`
 * (from `deno info --json`) is added to the reads when given.
 *
 * @example
 * ```ts
 * import { serverPermissions } from "./server_permissions.ts";
 * import { loadConfig } from "../config.ts";
 * const result = loadConfig(["--port", "9000", "--data-dir", "/srv/daft"], () => undefined);
 * if (!result.help) {
 *   const p = serverPermissions(result.config);
 *   console.assert(p.net[0] === "127.0.0.1:9000" && p.write[0] === "/srv/daft");
 * }
 * ```
 */
export function serverPermissions(config: Config, npmCache?: string): ServerPermissions {
  const host = config.hostname.includes(":") && !config.hostname.startsWith("[")
    ? `[${config.hostname}]`
    : config.hostname;
  const dataDir = resolve(config.dataDir);
  return {
    net: [`${host}:${config.port}`, ...config.peers],
    read: [dataDir, pathOf("fixtures/"), pathOf("src/"), ...(npmCache ? [npmCache] : [])],
    write: [dataDir],
    env: [...CONFIG_ENV_VARS, ...CODEC_PERMISSIONS.env],
    ffi: npmCache ? [npmCache] : [],
    sys: [...CODEC_PERMISSIONS.sys],
  };
}

/**
 * The `deno run` flags that grant `permissions` (none for an empty list, which would grant everything).
 *
 * @throws {Error} when a path holds a comma, which a permission flag cannot express.
 *
 * @example
 * ```ts
 * import { permissionFlags } from "./server_permissions.ts";
 * const flags = permissionFlags({ net: ["127.0.0.1:8787"], read: ["/d"], write: ["/d"], env: ["PORT"], ffi: [], sys: [] });
 * console.assert(flags[0] === "--allow-net=127.0.0.1:8787" && flags.length === 4);
 * ```
 */
export function permissionFlags(permissions: ServerPermissions): string[] {
  return Object.entries(permissions).filter(([, values]) => values.length).map(
    ([name, values]: [string, string[]]) => {
      const comma = values.find((v) => v.includes(","));
      if (comma) throw new Error(`'${comma}' holds a comma, which --allow-${name} cannot express`);
      return `--allow-${name}=${values.join(",")}`;
    },
  );
}

/**
 * The flags for what this process lacks of `permissions` (empty when it has them all), as `deno run` would
 * need them.
 *
 * @example
 * ```ts
 * import { missingPermissionFlags } from "./server_permissions.ts";
 * const missing = missingPermissionFlags({ net: ["127.0.0.1:1"], read: [], write: [], env: [], ffi: [], sys: [] });
 * console.assert(missing.length <= 1);
 * ```
 */
export function missingPermissionFlags(permissions: ServerPermissions): string[] {
  const lacking = (descriptor: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(descriptor).state !== "granted";
  const missing = {
    net: permissions.net.filter((host) => lacking({ name: "net", host })),
    read: permissions.read.filter((path) => lacking({ name: "read", path })),
    write: permissions.write.filter((path) => lacking({ name: "write", path })),
    env: permissions.env.filter((variable) => lacking({ name: "env", variable })),
    ffi: permissions.ffi.filter((path) => lacking({ name: "ffi", path })),
    sys: permissions.sys.filter((kind) =>
      lacking({ name: "sys", kind: kind as Deno.SysPermissionDescriptor["kind"] })
    ),
  };
  return Object.entries(missing).filter(([, v]) => v.length).map(([name, v]) =>
    `--allow-${name}=${v.join(",")}`
  );
}
