import assert from "node:assert/strict";
import { resolveServingThreads } from "../src/backend/start_wasm_backend.ts";
import { BACKEND_POLICIES } from "../src/backend/init_backend.ts";
import { CONFIG_ENV_VARS, CONFIG_SETTINGS, configTable, loadConfig } from "../src/config.ts";
import { RuntimeError } from "../src/errors.ts";

const noEnv = () => undefined;
const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

function configOf(args: string[], env: (name: string) => string | undefined = noEnv) {
  const result = loadConfig(args, env);
  assert.equal(result.help, false);
  return (result as Extract<typeof result, { help: false }>).config;
}

function configError(args: string[], env: (name: string) => string | undefined = noEnv) {
  try {
    loadConfig(args, env);
  } catch (err) {
    assert.ok(err instanceof RuntimeError);
    assert.equal(err.code, "invalid_config");
    return err;
  }
  assert.fail(`loadConfig(${JSON.stringify(args)}) did not fail`);
}

Deno.test("the defaults serve out of the box on localhost:8787", () => {
  const config = configOf([]);
  assert.equal(config.port, 8787);
  assert.equal(config.hostname, "127.0.0.1");
  assert.equal(config.dataDir, "./data");
  assert.equal(config.backend, "auto");
  assert.equal(config.apiToken, undefined);
  assert.equal(config.defaultBackbone, "mobilenetv2-imagenet");
  assert.equal(config.maxQueuedJobs, 8);
});

Deno.test("flags win over the environment, which wins over the defaults", () => {
  const env = envOf({ PORT: "9001", DATA_DIR: "/srv/daft", BACKEND: "cpu", MAX_QUEUED_JOBS: "3" });
  const config = configOf(["--port", "9002", "--max-image-bytes=1024"], env);
  assert.equal(config.port, 9002);
  assert.equal(config.dataDir, "/srv/daft");
  assert.equal(config.backend, "cpu");
  assert.equal(config.maxQueuedJobs, 3);
  assert.equal(config.maxImageBytes, 1024);
});

Deno.test("every backend policy the backend module lists is accepted, others are not", () => {
  for (const policy of BACKEND_POLICIES) assert.equal(configOf(["--backend", policy]).backend, policy);
  const err = configError(["--backend", "tpu"]);
  assert.match(err.message, /backend \(--backend\)/);
});

Deno.test("bad values are refused, each named with where it came from", () => {
  const err = configError(["--port", "http"], envOf({ MAX_BODY_BYTES: "-5" }));
  const issues = err.details.issues as { setting: string; source: string }[];
  assert.deepEqual(issues.map((i) => [i.setting, i.source]), [["port", "--port"], [
    "maxBodyBytes",
    "MAX_BODY_BYTES",
  ]]);
  assert.match(configError(["--no-such-flag"]).message, /no-such-flag/);
  assert.match(configError(["--api-token", "short"]).message, /apiToken/);
});

Deno.test("binding beyond localhost needs an API token, and a token opens all interfaces by default", () => {
  assert.match(configError(["--hostname", "0.0.0.0"]).message, /needs an API token/);
  const token = "0123456789abcdef0123";
  assert.equal(configOf(["--api-token", token]).hostname, "0.0.0.0");
  assert.equal(configOf(["--hostname", "0.0.0.0"], envOf({ API_TOKEN: token })).apiToken, token);
  assert.equal(configOf(["--hostname", "localhost"]).hostname, "localhost");
});

Deno.test("--help asks for the settings table, which lists every setting", () => {
  assert.deepEqual(loadConfig(["--help"], noEnv), { help: true });
  const table = configTable();
  for (const s of CONFIG_SETTINGS) {
    assert.ok(table.includes(`\`${s.flag}\``) && table.includes(`\`${s.env}\``));
  }
  assert.ok(CONFIG_ENV_VARS.includes("API_TOKEN") && CONFIG_ENV_VARS.includes("PORT"));
});

Deno.test("--wasm-threads takes auto (the default) or a count from 1 to 8, from a flag or WASM_THREADS", () => {
  assert.equal(configOf([]).wasmThreads, "auto");
  assert.equal(configOf(["--wasm-threads", "2"]).wasmThreads, 2);
  assert.equal(configOf([], envOf({ WASM_THREADS: "8" })).wasmThreads, 8);
  for (const bad of ["0", "9", "2.5", "many"]) {
    assert.match(configError(["--wasm-threads", bad]).message, /wasmThreads/);
  }
  assert.ok(CONFIG_ENV_VARS.includes("WASM_THREADS"));
});

Deno.test("--serving-wasm-threads takes auto (the default: half the cores) or a count from 1 to 8", () => {
  assert.equal(configOf([]).servingWasmThreads, "auto");
  assert.equal(configOf(["--serving-wasm-threads", "3"]).servingWasmThreads, 3);
  assert.equal(configOf([], envOf({ SERVING_WASM_THREADS: "1" })).servingWasmThreads, 1);
  for (const bad of ["0", "9", "half"]) {
    assert.match(configError(["--serving-wasm-threads", bad]).message, /servingWasmThreads/);
  }
  assert.equal(
    resolveServingThreads("auto"),
    Math.max(1, Math.min(8, Math.floor(navigator.hardwareConcurrency / 2))),
  );
  assert.equal(resolveServingThreads(3), 3);
});

Deno.test("peers are host or host:port, lowercased; anything else names the bad entry", () => {
  assert.deepEqual(configOf(["--peers", "Box-2.local:8787, 10.0.0.5,[::1]:9000"]).peers, [
    "box-2.local:8787",
    "10.0.0.5",
    "[::1]:9000",
  ]);
  assert.deepEqual(configOf([]).peers, []);
  const err = configError([], envOf({ PEERS: "box-2:8787,http://evil/" }));
  assert.match(err.message, /peers \(PEERS\): 'http:\/\/evil\/' is not host or host:port/);
});

Deno.test("--allowed-hosts takes comma-separated host names, lowercased, and refuses URLs and ports", () => {
  assert.deepEqual(configOf([]).allowedHosts, []);
  assert.deepEqual(configOf(["--allowed-hosts", "Box.Local, 10.0.0.2,[::1]"]).allowedHosts, [
    "box.local",
    "10.0.0.2",
    "[::1]",
  ]);
  assert.deepEqual(configOf([], envOf({ ALLOWED_HOSTS: "*" })).allowedHosts, ["*"]);
  assert.match(
    configError(["--allowed-hosts", "http://x.example:80"]).message,
    /allowedHosts.*not host names/,
  );
});
