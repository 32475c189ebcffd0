// One server per data directory: a second one on the same directory stops before it reads anything, a lock
// left by a killed server is taken over, and a server that cannot bind its port changes nothing. These run
// main.ts as a real process, as `deno task serve` does.
import assert from "node:assert/strict";
import { join } from "node:path";
import { LOCK_FILE, lockDataDir } from "../src/store/instance_lock.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A job record as a server writes it while the job runs. */
function runningJob(id: string) {
  return {
    id,
    status: "running",
    request: { dataset: "ds_0000000000000000", backbone: "tiny", method: "daft" },
    createdAt: new Date().toISOString(),
    startedAt: new Date().toISOString(),
    history: [],
  };
}

/** Starts main.ts on `dataDir`; resolves once it printed a line matching `until` (or exited). */
function serve(dataDir: string, flags: string[] = []) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--data-dir", dataDir, "--port", "0", "--backend", "cpu", ...flags],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let stdout = "";
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stderr = new Response(child.stderr).text();
  const waitFor = async (pattern: RegExp) => {
    while (!pattern.test(stdout)) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`the server exited before printing ${pattern}: ${stdout}\n${await stderr}`);
      stdout += value;
    }
    return stdout.match(pattern)!;
  };
  const exit = async () => {
    const status = await child.status;
    for (let r; !(r = await lines.read()).done;) stdout += r.value;
    return { code: status.code, stdout, stderr: await stderr };
  };
  return { child, waitFor, exit };
}

/** Waits until the server has opened its data directory (it answers 503 `starting` until then). */
async function untilOpen(port: string) {
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/v1/datasets`);
    await res.body?.cancel();
    if (res.status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the server did not open its data directory");
}

async function writeJson(path: string, value: unknown) {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(value));
}

Deno.test("a data directory lock is exclusive, and free again once released", async () => {
  const dir = await Deno.makeTempDir();
  const lock = await lockDataDir(dir);
  await assert.rejects(lockDataDir(dir), (err: Error & { code?: string }) => {
    assert.equal(err.code, "data_dir_in_use");
    assert.match(err.message, new RegExp(`pid ${Deno.pid}`));
    return true;
  });
  lock.release();
  const again = await lockDataDir(dir);
  assert.equal(again.staleHolder, undefined, "a released lock is not stale");
  again.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a second server on the same data directory exits with one line naming the first, before touching its jobs", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "daft-two-" });
  const first = serve(dataDir);
  try {
    const { port } = (await first.waitFor(/listening on http:\/\/127\.0\.0\.1:(?<port>\d+)/)).groups!;
    await untilOpen(port);
    // The first server's job, running: a second server's crash recovery would mark it interrupted.
    const record = join(dataDir, "jobs", "job_000000000000000a.json");
    await writeJson(record, runningJob("job_000000000000000a"));

    const second = await serve(dataDir).exit();
    assert.equal(second.code, 1);
    const lines = second.stderr.trim().split("\n");
    assert.equal(lines.length, 1, second.stderr);
    assert.match(
      lines[0],
      new RegExp(`in use by another daft-edge server \\(pid ${first.child.pid}, started `),
    );
    assert.equal(JSON.parse(await Deno.readTextFile(record)).status, "running");
  } finally {
    first.child.kill("SIGTERM");
    await first.exit();
  }
  assert.equal(await Deno.readTextFile(join(dataDir, LOCK_FILE)), "", "SIGTERM released the lock");
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("a lock left by a killed server is taken over, naming the dead pid, and its running job is marked interrupted", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "daft-stale-" });
  const first = serve(dataDir);
  await first.waitFor(/listening on/);
  first.child.kill("SIGKILL");
  await first.exit();
  const record = join(dataDir, "jobs", "job_000000000000000b.json");
  await writeJson(record, runningJob("job_000000000000000b"));

  const second = serve(dataDir);
  try {
    await second.waitFor(
      new RegExp(`took over the data directory from pid ${first.child.pid}, which stopped`),
    );
    const { port } = await second.waitFor(/listening on http:\/\/127\.0\.0\.1:(?<port>\d+)/).then((m) =>
      m.groups!
    );
    let job;
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/v1/adaptations/job_000000000000000b`);
      job = await res.json();
      if (res.status === 200) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual([job.status, job.error?.code], ["failed", "interrupted"]);
  } finally {
    second.child.kill("SIGTERM");
    await second.exit();
  }
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("a server that cannot bind its port says so in one line, runs no recovery, and releases the lock", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "daft-bind-" });
  const record = join(dataDir, "jobs", "job_000000000000000c.json");
  await writeJson(record, runningJob("job_000000000000000c"));
  await Deno.writeTextFile(join(dataDir, "jobs", ".tmp-1"), "{");
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const result = await serve(dataDir, ["--port", String(taken.addr.port)]).exit();
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr.trim(),
      `cannot listen on 127.0.0.1:${taken.addr.port}: the address is in use (another server?); pick another ` +
        "with --port or PORT",
    );
    assert.equal(JSON.parse(await Deno.readTextFile(record)).status, "running", "no recovery ran");
    assert.ok(Deno.statSync(join(dataDir, "jobs", ".tmp-1")).isFile, "no sweep ran");
    (await lockDataDir(dataDir)).release();
  } finally {
    taken.close();
  }
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("the server predicts on --serving-wasm-threads, apart from the jobs' --wasm-threads", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "daft-threads-" });
  const server = serve(dataDir, ["--backend", "wasm", "--serving-wasm-threads", "1", "--wasm-threads", "2"]);
  try {
    const { port } = (await server.waitFor(/listening on http:\/\/127\.0\.0\.1:(?<port>\d+)/)).groups!;
    let info: { backend?: { name: string; wasm?: { threads: number; requestedThreads: number } } } = {};
    for (let i = 0; i < 300 && !info.backend?.wasm; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/v1/info`);
      info = res.ok ? await res.json() : (await res.body?.cancel(), {});
      if (!info.backend?.wasm) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(info.backend?.name, "wasm");
    assert.deepEqual(info.backend?.wasm, { threads: 1, requestedThreads: 1 });
  } finally {
    server.child.kill("SIGTERM");
    await server.exit();
    await Deno.remove(dataDir, { recursive: true });
  }
});
