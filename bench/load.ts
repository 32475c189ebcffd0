/**
 * Serving while training: prediction latency with and without an adaptation job running, side by side in one
 * run, and how long a job takes on an otherwise idle server. Starts `main.ts` as `deno task serve` would (its
 * own process, its own data directory), trains and activates a model on the digit fixtures, then, for each
 * round: predictions at each concurrency with the server idle, then the same with a long job training, then
 * the job is cancelled. Last, jobs of `--job-epochs` run alone and are timed (from the records' `startedAt`
 * to `finishedAt`).
 *
 *   deno task bench:load [--backbone mobilenetv2-imagenet] [--concurrency 1,8] [--phase-seconds 6]
 *                        [--rounds 2] [--job-epochs 4] [--idle-jobs 2] [--server-flags "--wasm-threads 2"]
 *                        [--baseline-main ../other-checkout/main.ts] [--json results.json]
 *
 * With `--baseline-main`, the idle-server jobs alternate between this checkout's server and that one's (each
 * on its own data directory, one computing at a time), so a change's cost to training is compared under
 * the same background load.
 *
 * A request is one 28x28 digit PNG, JSON-encoded, to `POST /v1/models/active/predict`, so it measures the
 * serving path (decode, preprocess to the backbone's input, forward pass), not image size. The cores may be
 * shared with other work: the run prints the load average and the machine's busy cores during each phase
 * (from /proc/stat, the server and this client included), so a noisy phase can be seen for what it is.
 *
 * @module
 */
import { commandLine } from "../cli/_args.ts";
import { machineCpuSeconds } from "./_speed_machine.ts";

const USAGE = `usage: deno task bench:load [options]

Predict latency and throughput with and without a training job (docs/RELIABILITY.md).

  --backbone NAME --concurrency LIST --phase-seconds N --rounds N --job-epochs N --idle-jobs N
  --server-flags STRING --baseline-main DIR --json FILE`;

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const FIXTURES = new URL("../fixtures/digits/", import.meta.url).pathname;

/** Latency figures of one phase, in ms, and throughput. */
export interface PhaseResult {
  state: "idle" | "busy";
  round: number;
  concurrency: number;
  requests: number;
  errors: number;
  p50: number;
  p99: number;
  max: number;
  perSecond: number;
  /** Cores the whole machine kept busy during the phase. */
  busyCores?: number;
  /** The server's resident memory at the end of the phase, in MiB (Linux). */
  rssMiB?: number;
  /** In a busy phase: the epochs the job trained per minute meanwhile. */
  jobEpochsPerMinute?: number;
}

/** The q-quantile (0..1) of sorted values, by the nearest-rank method. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function digitImages(perDigit: number, digits: number[]) {
  const out: { label: string; bytes: Uint8Array }[] = [];
  for (const d of digits) {
    const names = [...Deno.readDirSync(`${FIXTURES}${d}`)].map((e) => e.name).sort().slice(0, perDigit);
    for (const name of names) {
      out.push({ label: String(d), bytes: Deno.readFileSync(`${FIXTURES}${d}/${name}`) });
    }
  }
  return out;
}

const base64 = (bytes: Uint8Array) => (bytes as unknown as { toBase64(): string }).toBase64();

async function startServer(dataDir: string, backbone: string, extraFlags: string[], main = MAIN) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--no-liftoff",
      main,
      "--data-dir",
      dataDir,
      "--port",
      "0",
      "--default-backbone",
      backbone,
      ...extraFlags,
    ],
    stdout: "piped",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  let port: string | undefined;
  while (!port) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the server exited: ${out}`);
    out += value;
    port = out.match(/listening on http:\/\/[^:]+:(\d+)/)?.[1];
  }
  // Keep draining its output so it never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done);
  })();
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0;; i++) {
    const res = await fetch(`${base}/readyz`).catch(() => undefined);
    await res?.body?.cancel();
    if (res?.status === 200) break;
    if (i > 1200) throw new Error("the server did not become ready in 10 minutes");
    await new Promise((r) => setTimeout(r, 500));
  }
  return { base, pid: child.pid, stop: async () => (child.kill("SIGTERM"), await child.status) };
}

async function call(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function waitJob(base: string, id: string, until: (job: any) => boolean) {
  for (;;) {
    const job = await call("GET", `${base}/v1/adaptations/${id}`);
    if (until(job)) return job;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A dataset of 48 digits (12 each of 0, 1, 4, 7); returns its id. */
async function uploadDigits(base: string): Promise<string> {
  const ds = (await call("POST", `${base}/v1/datasets`, { name: "digits" })).id;
  await call("POST", `${base}/v1/datasets/${ds}/samples`, {
    samples: digitImages(12, [0, 1, 4, 7]).map((s) => ({ label: s.label, image: base64(s.bytes) })),
  });
  return ds;
}

/** Runs one job to its end and returns its record. */
async function runJobOn(base: string, dataset: string, epochs: number, activate = false) {
  const job = await call("POST", `${base}/v1/adaptations`, { dataset, epochs, activate });
  return await waitJob(base, job.id, (j) => ["succeeded", "failed", "cancelled"].includes(j.status));
}

/** A process's resident memory now and at its peak, in MiB, from /proc (undefined elsewhere). */
function memoryOf(pid: number): { rss?: number; peak?: number } {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = (field: string) => Number(status.match(new RegExp(`${field}:\\s+(\\d+) kB`))?.[1]) / 1024;
    return { rss: kb("VmRSS"), peak: kb("VmHWM") };
  } catch {
    return {};
  }
}

/** Epochs a job has trained so far: finished ones, and the share of the one under way. */
async function epochsDone(base: string, id: string): Promise<number> {
  const { history, progress } = await call("GET", `${base}/v1/adaptations/${id}`);
  const within = progress?.phase === "training" && progress.steps ? (progress.step ?? 0) / progress.steps : 0;
  return history.length + Math.min(within, 1);
}

/** `concurrency` clients each sending one prediction after another for `seconds`. */
async function load(base: string, image: string, concurrency: number, seconds: number) {
  const latencies: number[] = [];
  let errors = 0;
  const body = JSON.stringify({ images: [image], topK: 1 });
  const end = performance.now() + seconds * 1000;
  const cpu0 = machineCpuSeconds();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const start = performance.now();
      const res = await fetch(`${base}/v1/models/active/predict`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      await res.arrayBuffer();
      if (res.status === 200) latencies.push(performance.now() - start);
      else errors++;
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = machineCpuSeconds();
  latencies.sort((a, b) => a - b);
  return {
    latencies,
    requests: latencies.length,
    errors,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    max: latencies.at(-1) ?? NaN,
    perSecond: latencies.length / elapsed,
    busyCores: cpu0 && cpu1 ? (cpu1.busy - cpu0.busy) / elapsed : undefined,
  };
}

if (import.meta.main) {
  const { values } = commandLine(USAGE, {
    backbone: { type: "string", default: "mobilenetv2-imagenet" },
    concurrency: { type: "string", default: "1,8" },
    "phase-seconds": { type: "string", default: "6" },
    rounds: { type: "string", default: "2" },
    "job-epochs": { type: "string", default: "4" },
    "idle-jobs": { type: "string", default: "2" },
    "server-flags": { type: "string", default: "" },
    "baseline-main": { type: "string" },
    json: { type: "string" },
  });
  const concurrencies = values.concurrency.split(",").map(Number);
  const phaseSeconds = Number(values["phase-seconds"]);
  const rounds = Number(values.rounds);
  const serverFlags = values["server-flags"].split(" ").filter(Boolean);
  const dataDir = await Deno.makeTempDir({ prefix: "daft-load-" });
  console.log(
    `load average ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}; server flags: ${
      serverFlags.join(" ") || "(none)"
    }`,
  );
  const server = await startServer(dataDir, values.backbone, serverFlags);
  const results: PhaseResult[] = [];
  // Every round's latencies per state and concurrency: one p99 from thousands of requests moves less
  // between runs than each round's does.
  const latenciesOf = new Map<string, number[]>();
  const pooled = (key: string) => latenciesOf.get(key) ?? latenciesOf.set(key, []).get(key)!;
  const jobSeconds: number[] = [];
  const baselineJobSeconds: number[] = [];
  let peakRssMiB: number | undefined;
  const baselineDir = await Deno.makeTempDir({ prefix: "daft-load-baseline-" });
  try {
    const { base } = server;
    const ds = await uploadDigits(base);
    const epochs = Number(values["job-epochs"]);
    const runJob = (jobEpochs: number, activate = false) => runJobOn(base, ds, jobEpochs, activate);
    const first = await runJob(epochs, true);
    if (first.status !== "succeeded") {
      throw new Error(`the first job ${first.status}: ${JSON.stringify(first.error)}`);
    }
    const image = base64(digitImages(1, [7])[0].bytes);
    await load(base, image, 1, 1); // warm-up

    for (let round = 1; round <= rounds; round++) {
      for (const c of concurrencies) {
        const { latencies, ...phase } = await load(base, image, c, phaseSeconds);
        pooled(`idle/${c}`).push(...latencies);
        results.push({ state: "idle", round, concurrency: c, ...phase, rssMiB: memoryOf(server.pid).rss });
      }
      // Long enough to outlast every busy phase; cancelled after them.
      const job = await call("POST", `${base}/v1/adaptations`, { dataset: ds, epochs: 1000 });
      await waitJob(
        base,
        job.id,
        (j) => j.progress?.phase === "training" || j.status !== "running" && j.status !== "queued",
      );
      for (const c of concurrencies) {
        const before = await epochsDone(base, job.id);
        const t0 = performance.now();
        const { latencies, ...phase } = await load(base, image, c, phaseSeconds);
        pooled(`busy/${c}`).push(...latencies);
        const jobEpochsPerMinute = (await epochsDone(base, job.id) - before) /
          ((performance.now() - t0) / 60_000);
        results.push({
          state: "busy",
          round,
          concurrency: c,
          ...phase,
          jobEpochsPerMinute,
          rssMiB: memoryOf(server.pid).rss,
        });
      }
      const still = await call("GET", `${base}/v1/adaptations/${job.id}`);
      if (still.status !== "running") {
        throw new Error(`the busy job ended early: ${still.status} ${JSON.stringify(still.error)}`);
      }
      await call("POST", `${base}/v1/adaptations/${job.id}/cancel`);
      await waitJob(base, job.id, (j) => j.status !== "running");
    }
    const baseline = values["baseline-main"]
      ? await startServer(baselineDir, values.backbone, serverFlags, values["baseline-main"])
      : undefined;
    try {
      const baselineDs = baseline && await uploadDigits(baseline.base);
      for (let i = 0; i < Number(values["idle-jobs"]); i++) {
        const job = await runJob(epochs);
        jobSeconds.push((Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000);
        if (baseline) {
          const other = await runJobOn(baseline.base, baselineDs!, epochs);
          baselineJobSeconds.push((Date.parse(other.finishedAt) - Date.parse(other.startedAt)) / 1000);
        }
      }
    } finally {
      await baseline?.stop();
    }
    peakRssMiB = memoryOf(server.pid).peak;
  } finally {
    await server.stop();
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(baselineDir, { recursive: true });
  }

  const fmt = (n: number, d = 1) => Number.isFinite(n) ? n.toFixed(d) : "-";
  console.log(`\nbackbone ${values.backbone}, ${phaseSeconds} s per phase, 1 image per request\n`);
  console.log(
    "| round | concurrency | state | requests | p50 ms | p99 ms | max ms | req/s | busy cores | p99 busy/idle | job epochs/min | server RSS MiB |",
  );
  console.log("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of results) {
    const idle = results.find((x) =>
      x.state === "idle" && x.round === r.round && x.concurrency === r.concurrency
    )!;
    console.log(
      `| ${r.round} | ${r.concurrency} | ${r.state} | ${r.requests}${
        r.errors ? ` (+${r.errors} errors)` : ""
      } | ` +
        `${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${fmt(r.perSecond, 0)} | ${
          fmt(r.busyCores ?? NaN, 2)
        } | ` +
        `${r.state === "busy" ? `${fmt(r.p99 / idle.p99, 2)}x` : ""} | ${
          fmt(r.jobEpochsPerMinute ?? NaN, 1)
        } | ${fmt(r.rssMiB ?? NaN, 0)} |`,
    );
  }
  const p99Of = (key: string) => quantile(pooled(key).sort((a, b) => a - b), 0.99);
  console.log(
    `\npooled over the rounds: ${
      concurrencies.map((c) => {
        const idle = p99Of(`idle/${c}`), busy = p99Of(`busy/${c}`);
        return `c${c} p99 idle ${fmt(idle)} ms, busy ${fmt(busy)} ms (${fmt(busy / idle, 2)}x)`;
      }).join("; ")
    }`,
  );
  console.log(
    `\nidle-server job of ${values["job-epochs"]} epochs: ${
      jobSeconds.map((s) => `${fmt(s, 2)} s`).join(", ")
    }`,
  );
  console.log(`server peak RSS (VmHWM) over the run: ${fmt(peakRssMiB ?? NaN, 0)} MiB`);
  if (baselineJobSeconds.length) {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(
      `baseline (${values["baseline-main"]}), alternating: ${
        baselineJobSeconds.map((s) => `${fmt(s, 2)} s`).join(", ")
      }; ` +
        `this/baseline mean ${fmt(mean(jobSeconds) / mean(baselineJobSeconds), 3)}`,
    );
  }
  if (values.json) {
    await Deno.writeTextFile(
      values.json,
      JSON.stringify(
        {
          serverFlags,
          phases: results,
          pooledP99: Object.fromEntries([...latenciesOf.keys()].map((key) => [key, p99Of(key)])),
          jobSeconds,
          baselineJobSeconds,
          peakRssMiB,
        },
        null,
        2,
      ),
    );
  }
}
