// `deno task serve`: read the configuration, lock the data directory, bind the port, open the data directory
// (crash recovery), serve the API from routes/, then bring up the compute backend (the server answers
// /healthz, and /readyz with 503, meanwhile).
import { createApp } from "./routes/app.ts";
import { CONFIG_ENV_VARS, configTable, isLoopback, loadConfig } from "./src/config.ts";
import { RuntimeError } from "./src/errors.ts";
import { openRuntime } from "./src/runtime.ts";
import { loadSharp } from "./src/data/_sharp.ts";
import { missingPermissionFlags, serverPermissions } from "./src/serve/server_permissions.ts";
import { type InstanceLock, lockDataDir } from "./src/store/instance_lock.ts";

const USAGE = `Usage: deno task serve [flags]

Serves the daft-edge HTTP API. Flags win over environment variables; both are optional. The task grants
the server exactly the permissions these settings need (network on the port, reads and writes of the data
directory).

`;

// A variable this process may not read counts as unset here; the permission check below names it.
function readEnv(name: string): string | undefined {
  if (!CONFIG_ENV_VARS.includes(name)) return undefined;
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") return undefined;
  return Deno.env.get(name);
}

let loaded;
try {
  loaded = loadConfig(Deno.args, readEnv);
} catch (err) {
  console.error(`${err instanceof RuntimeError ? err.message : err} (--help lists the settings)`);
  Deno.exit(2);
}
if (loaded.help) {
  console.log(USAGE + configTable());
  Deno.exit(0);
}
const config = loaded.config;
// Started by `deno run` with narrower permissions than this configuration needs: say which, before anything
// fails half-way with a stack trace (or, for the training worker's code, only when the first job runs).
const missing = missingPermissionFlags(serverPermissions(config));
if (missing.length) {
  console.error(
    `missing permissions for this configuration: ${missing.join(" ")}. ` +
      "'deno task serve [flags]' grants exactly what the flags need.",
  );
  Deno.exit(2);
}
// The image codec is a native addon in Deno's npm cache, whose path only the launcher knows: load it now, so
// a missing --allow-ffi is this one line and not a failed first upload.
try {
  await loadSharp();
} catch (err) {
  console.error(
    `the image codec (sharp) cannot be loaded: ${(err as Error).message.split("\n")[0]}. ` +
      "'deno task serve [flags]' grants exactly what it needs (--allow-ffi=<Deno's npm cache>).",
  );
  Deno.exit(2);
}

// One server per data directory, decided before anything in it is read or repaired.
let lock: InstanceLock;
try {
  lock = await lockDataDir(config.dataDir);
} catch (err) {
  if (err instanceof RuntimeError) {
    console.error(err.message);
    Deno.exit(1);
  }
  console.error(`cannot open the data directory ${config.dataDir}: ${(err as Error).message}`);
  Deno.exit(2);
}
if (lock.staleHolder) {
  console.log(
    `took over the data directory from pid ${lock.staleHolder.pid}, which stopped without releasing it ` +
      "(its running job, if any, is marked interrupted)",
  );
}

// The port is bound before crash recovery, so a server that cannot listen changes nothing; requests that
// come while the data directory opens are told to wait.
const serving: { app?: ReturnType<typeof createApp> } = {};
let server: Deno.HttpServer<Deno.NetAddr>;
try {
  server = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    onListen: ({ hostname, port }) => {
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      console.log(`daft-edge listening on http://${host}:${port} (docs at /docs), data in ${config.dataDir}`);
      if (!config.apiToken) {
        console.log(
          "No API token is set, so the server binds to localhost only, answers only requests addressed to a " +
            "localhost name, and mutating endpoints are open to local callers. Set --api-token or API_TOKEN " +
            "to serve other machines.",
        );
      } else if (!isLoopback(config.hostname)) {
        console.log("An API token is set: mutating endpoints require 'Authorization: Bearer <token>'.");
      }
    },
  }, (request, info) => serving.app ? serving.app.fetch(request, info) : starting());
} catch (err) {
  const reason = err instanceof Deno.errors.AddrInUse
    ? "the address is in use (another server?); pick another with --port or PORT"
    : (err as Error).message;
  console.error(`cannot listen on ${config.hostname}:${config.port}: ${reason}`);
  lock.release();
  Deno.exit(1);
}

let runtime: Awaited<ReturnType<typeof openRuntime>>;
try {
  runtime = await openRuntime(config);
} catch (err) {
  // An unusable data directory (not writable, a file, a path Deno guards) is a configuration mistake too.
  console.error(`cannot open the data directory ${config.dataDir}: ${(err as Error).message}`);
  lock.release();
  Deno.exit(2);
}
serving.app = createApp({ runtime });

function starting(): Response {
  const body = {
    error: {
      code: "starting",
      message: "the server is opening its data directory; try again shortly",
      details: {},
    },
  };
  return Response.json(body, { status: 503, headers: { "retry-after": "1" } });
}

runtime.bringUp().then(() => {
  const info = runtime.info();
  console.log(
    `ready: backend ${info.backend.name}${
      info.backend.fellBack ? ` (fell back: ${info.backend.fallbackReason})` : ""
    }, ` +
      `default backbone ${info.defaultBackbone}, active model ${info.activeModel ?? "none"}`,
  );
}, (err) => {
  console.error(`not ready: ${(err as Error).message}`);
});

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping (a running adaptation is marked interrupted and can be retried)`);
  await runtime.close();
  // Event streams of jobs still queued would hold shutdown open; they get a moment, not forever.
  await Promise.race([server.shutdown(), new Promise((resolve) => setTimeout(resolve, 2000))]);
  lock.release();
  Deno.exit(0);
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => void shutdown(signal));
}
