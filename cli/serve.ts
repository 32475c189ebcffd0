/**
 * `deno task serve [flags]`: starts `main.ts` with exactly the Deno permissions its configuration needs (the
 * port it listens on, reads and writes of its data directory), computed from the same flags and environment
 * variables the server reads. A configuration mistake is one line on stderr and exit code 2.
 *
 * The launcher itself may read the environment and run this Deno executable, nothing else.
 */
import { CONFIG_ENV_VARS, loadConfig } from "../src/config.ts";
import { RuntimeError } from "../src/errors.ts";
import { permissionFlags, serverPermissions } from "../src/serve/server_permissions.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const env = (name: string) => CONFIG_ENV_VARS.includes(name) ? Deno.env.get(name) : undefined;

async function npmCacheDir(): Promise<string | undefined> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stderr: "inherit" })
    .output();
  if (!out.success) return undefined;
  return JSON.parse(new TextDecoder().decode(out.stdout)).npmCache;
}

let flags: string[] = [];
try {
  const loaded = loadConfig(Deno.args, env);
  // --help needs no permission: main.ts prints the settings table.
  if (!loaded.help) flags = permissionFlags(serverPermissions(loaded.config, await npmCacheDir()));
} catch (err) {
  console.error(
    `${err instanceof RuntimeError ? err.message : (err as Error).message} (--help lists the settings)`,
  );
  Deno.exit(2);
}

const child = new Deno.Command(Deno.execPath(), {
  args: ["run", "--v8-flags=--no-liftoff", ...flags, MAIN, ...Deno.args],
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
// Ctrl-C reaches the server from the terminal; a signal sent to this process alone is passed on. Either way
// this process waits for the server to stop and exits as it did.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  });
}
const status = await child.status;
Deno.exit(status.code);
