/**
 * `deno task doctor [server flags] [--json]` (or `bin/daft-edge doctor` in a release): checks that this box
 * can serve with the configuration it would start with — GPU adapter, Vulkan loader and drivers, the backend
 * and its self-test, the data directory, the process's permissions, the backbone weights, the port — and
 * prints one line per check. Exits 1 when a check fails, 2 on a bad flag; `--json` prints the report for
 * fleet tooling.
 */
import denoJson from "../deno.json" with { type: "json" };
import { CONFIG_ENV_VARS, loadConfig } from "../src/config.ts";
import { RuntimeError } from "../src/errors.ts";
import {
  checkBackbones,
  checkBackend,
  checkDataDir,
  checkGpuAdapter,
  checkPermissions,
  checkPort,
  type CheckResult,
  checkVulkan,
} from "./_doctor_checks.ts";

const USAGE = `usage: deno task doctor [--json] [server flags]

Checks this box against the configuration the server would start with (the same flags and environment
variables; 'deno task serve --help' lists them): GPU adapter, Vulkan loader and drivers, the backend and its
self-test, the data directory, this process's permissions, the backbone weights, the port. Prints one line
per check, or with --json the report {ok, runtime, checks: [{name, status, summary, details}]}. Exits 1 when
a check fails, 0 otherwise (warnings included), 2 on a bad flag.`;

const json = Deno.args.includes("--json");
const args = Deno.args.filter((a) => a !== "--json");
const readEnv = (name: string) =>
  CONFIG_ENV_VARS.includes(name) &&
    Deno.permissions.querySync({ name: "env", variable: name }).state === "granted"
    ? Deno.env.get(name)
    : undefined;

let loaded;
try {
  loaded = loadConfig(args, readEnv);
} catch (err) {
  const message = (err instanceof RuntimeError ? err.message : String(err)).split("\n")[0];
  console.error(`error: ${message} (deno task doctor --help lists the options)`);
  Deno.exit(2);
}
if (loaded.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const config = loaded.config;

const checks: CheckResult[] = [{
  name: "config",
  status: "ok",
  summary: `listen ${config.hostname}:${config.port}, data ${config.dataDir}, backend ${config.backend}, ` +
    `default backbone ${config.defaultBackbone}, API token ${
      config.apiToken ? "set" : "not set (localhost only)"
    }` +
    (config.peers.length ? `, peers ${config.peers.join(", ")}` : ""),
}];
// The report is kept off stdout until it is whole: tfjs and the backend print their own notes meanwhile.
checks.push(await checkGpuAdapter(config));
checks.push(checkVulkan());
checks.push(await checkBackend(config));
checks.push(checkDataDir(config));
checks.push(checkPermissions(config));
checks.push(await checkBackbones(config));
checks.push(await checkPort(config));

const failures = checks.filter((c) => c.status === "fail").length;
const warnings = checks.filter((c) => c.status === "warn").length;
const runtime = {
  name: denoJson.name,
  version: denoJson.version,
  deno: Deno.version.deno,
  os: Deno.build.os,
  arch: Deno.build.arch,
};
if (json) {
  console.log(JSON.stringify({ ok: failures === 0, runtime, checks }, null, 2));
} else {
  console.log(
    `daft-edge doctor: ${runtime.name} ${runtime.version}, Deno ${runtime.deno}, ${runtime.os} ${runtime.arch}`,
  );
  const width = Math.max(...checks.map((c) => c.name.length));
  for (const c of checks) {
    console.log(`  ${c.status.toUpperCase().padEnd(4)}  ${c.name.padEnd(width)}  ${c.summary}`);
  }
  console.log(
    failures
      ? `${failures} problem${failures === 1 ? "" : "s"}, ${warnings} warning${
        warnings === 1 ? "" : "s"
      }: not ready to serve`
      : `no problems${warnings ? `, ${warnings} warning${warnings === 1 ? "" : "s"}` : ""}`,
  );
}
// Exit now: the backend's worker threads would otherwise keep the process up.
Deno.exit(failures ? 1 : 0);
