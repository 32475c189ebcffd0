/**
 * Compute speed of the runtime, side by side with PyTorch: training throughput, inference latency and
 * throughput, time to an adapted model and peak memory, for the default backbone (MobileNetV2 to block_10,
 * 96x96) and the tiny one, on each tfjs backend asked for, and the same figures from PyTorch
 * (`bench/peer_torch.py`) on the same architectures; then 50 small `adapt()` jobs back to back to see
 * whether memory stays flat.
 *
 *   deno task bench [--quick] [--backends auto,cpu,webgpu] [--backbones mobilenetv2,tiny] [--skip-peer]
 *                   [--peer-devices cpu] [--peer-threads 1,2] [--narrow-peer-isa SSE41|none] [--rounds 3]
 *                   [--python /usr/bin/python3]
 *                   [--budget 180] [--headline-budget 480] [--soak-jobs 50] [--quiet-wait 90] [--retries 1]
 *                   [--out docs/BENCHMARKS.md] [--json results.json] [--verbose]
 *
 * PyTorch comes from Debian: `apt-get install -y python3-torch python3-torchvision`; without it the peer
 * rows are reported as not run.
 *
 * Each row (a backend or PyTorch device, on one backbone) runs in its own process, so its peak memory is
 * its own and a row that outlives its time budget is stopped: the first backend and PyTorch get
 * `--headline-budget` seconds, the others `--budget`; figures that would not fit are marked skipped. The
 * full run (no `--quick`, default backends and backbones) writes `docs/BENCHMARKS.md`, keeping its
 * hand-written analysis; other runs print the report and write only where `--out` or `--json` say.
 * The cores may be shared: before each row the run waits (up to `--quiet-wait` seconds, 0 for not at all)
 * for other work to use less than a third of a core, measures how much other work ran beside each row
 * (from /proc/stat less the row's own CPU time), and runs a row again (`--retries`) when that was half a
 * core or more, keeping the quieter attempt. `bench/gpu.sh` runs this file bundled, on a GPU machine
 * without Deno installed.
 *
 * @module
 */
import "./_speed_wasm_dir.ts";
import { commandLine } from "../cli/_args.ts";
import { fileURLToPath } from "node:url";
import { ADAPT_DEFAULTS } from "../src/adapt/adapt_options.ts";
import { METHODS } from "../src/adapt/methods.ts";
import type { BackendPolicy } from "../src/backend/init_backend.ts";
import {
  loadAverage,
  machineCpuSeconds,
  type MachineInfo,
  machineInfo,
  waitForQuiet,
} from "./_speed_machine.ts";
import { SPEED_BACKBONES, type SpeedBackbone } from "./_speed_models.ts";
import { RECORD_PREFIX, type RowRecord, type RowResult } from "./_speed_records.ts";
import { extractAnalysis } from "./_report_analysis.ts";
import { renderSpeedReport } from "./_speed_report.ts";
import {
  type Effort,
  FULL_EFFORT,
  type JobSpec,
  QUICK_EFFORT,
  type RowSpec,
  runRow,
  runSoak,
  type SoakSpec,
} from "./_speed_row.ts";

export { type Effort, FULL_EFFORT, QUICK_EFFORT } from "./_speed_row.ts";

/** What a run measures and how long each row may take. */
export interface SpeedConfig {
  backbones: SpeedBackbone[];
  /** tfjs backend policies, one row each per backbone; the first is the headline compared with PyTorch. */
  backends: BackendPolicy[];
  /** PyTorch devices (`cpu`, `cuda`); empty to skip the peer. */
  peerDevices: string[];
  python: string;
  peerScript: string;
  /** PyTorch CPU rows, one per thread count (one thread is tfjs wasm's like for like; all cores is the
   *  usual best on a quiet machine). */
  peerThreads: number[];
  /**
   * One more PyTorch CPU row, at the largest of `peerThreads`, with oneDNN's convolutions held to this
   * instruction set (`ONEDNN_MAX_CPU_ISA`): `SSE41` gives them the 128-bit vectors WebAssembly SIMD has,
   * to tell what the vector width costs from what the code does. `null`: no such row.
   */
  narrowPeerIsa: string | null;
  /**
   * How often the headline rows (the first backend and the PyTorch rows) of each backbone run, in turn, so
   * that each sees the machine as the others do: each figure is then the median over the rounds, and the
   * report gives the goal ratios of every round (the spread a shared machine adds).
   */
  rounds: number;
  trainBatches: number[];
  inferBatch: number;
  effort: Effort;
  job: JobSpec;
  soak: Omit<SoakSpec, "backend" | "deadline"> | null;
  /** Seconds per row; the headline rows (first backend, PyTorch) and the soak get `headlineBudgetS`. */
  budgetS: number;
  headlineBudgetS: number;
  /** Extra seconds a row gets past its budget to finish the figure it is on before it is killed. */
  graceS: number;
  /**
   * Before each row, wait up to `maxWaitS` for other work to use less than `belowCores` cores; a row
   * during which other work used `retryAboveCores` or more is run again, up to `retries` times, and the
   * quietest attempt kept. `null`: start every row at once, run each once.
   */
  quiet: { belowCores: number; maxWaitS: number; retryAboveCores: number; retries: number } | null;
  verbose: boolean;
}

/** The full run's configuration. */
export const DEFAULT_CONFIG: SpeedConfig = {
  backbones: [...SPEED_BACKBONES],
  backends: ["auto", "cpu", "webgpu"],
  peerDevices: ["cpu"],
  peerThreads: [...new Set([1, navigator.hardwareConcurrency])],
  narrowPeerIsa: "SSE41",
  rounds: 3,
  python: "/usr/bin/python3",
  peerScript: fileURLToPath(new URL("./peer_torch.py", import.meta.url)),
  trainBatches: [16, 32],
  inferBatch: 32,
  effort: FULL_EFFORT,
  job: { classes: 10, shots: 10 },
  soak: { jobs: 50, classes: 5, shots: 4, epochs: 1, batchSize: 8 },
  budgetS: 180,
  headlineBudgetS: 480,
  graceS: 30,
  quiet: { belowCores: 0.3, maxWaitS: 90, retryAboveCores: 0.5, retries: 1 },
  verbose: false,
};

/** How a run was started, where, and what the machine was doing meanwhile. */
export interface RunInfo {
  command: string;
  machine: MachineInfo;
  startedAt: string;
  wallSeconds: number;
  load: { start: number[]; end: number[] };
  quick: boolean;
  config: SpeedConfig;
}

/** A whole run: its circumstances and every row. */
export interface SpeedRun {
  info: RunInfo;
  rows: RowResult[];
}

// This module, bundled or not: row processes run it again with --row or --soak.
const SELF = import.meta.url;
const BUNDLED = SELF.endsWith(".js");

async function runProcess(
  command: string,
  args: string[],
  budgetS: number,
  graceS: number,
  verbose: boolean,
  env?: Record<string, string>,
): Promise<{ records: RowRecord[]; stopped?: string }> {
  const records: RowRecord[] = [];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, { args, env, stdout: "piped", stderr: "piped", stdin: "null" }).spawn();
  } catch (err) {
    return { records, stopped: `could not start ${command}: ${(err as Error).message}` };
  }
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, (budgetS + graceS) * 1000);
  let stderrTail = "";
  const readStdout = (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.startsWith(RECORD_PREFIX)) {
          const record = JSON.parse(line.slice(RECORD_PREFIX.length)) as RowRecord;
          records.push(record);
          if (verbose) console.error(`  ${line.slice(RECORD_PREFIX.length, 200)}`);
        }
      }
    }
  })();
  const readStderr = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderrTail = (stderrTail + chunk).slice(-4000);
      if (verbose) await Deno.stderr.write(new TextEncoder().encode(chunk));
    }
  })();
  const status = await child.status;
  clearTimeout(timer);
  await Promise.all([readStdout, readStderr]);
  if (killed) return { records, stopped: `stopped at its ${budgetS} s budget` };
  if (!status.success) {
    const why = stderrTail.split("\n").map((l) => l.trim()).filter((l) => l && !/XDG_RUNTIME_DIR/.test(l))
      .slice(-3).join(" / ");
    return { records, stopped: `exited with code ${status.code}: ${why}` };
  }
  const gaveUp = records.find((r) => r.kind === "skipped" && r.what === "all");
  return gaveUp?.kind === "skipped" ? { records, stopped: gaveUp.reason } : { records };
}

function denoArgs(mode: "--row" | "--soak", spec: RowSpec | SoakSpec): string[] {
  return [
    "run",
    "--allow-all",
    // --no-liftoff: wasm functions compile straight to optimised code, as `deno task serve` runs them.
    "--v8-flags=--expose-gc,--no-liftoff",
    ...(BUNDLED ? ["--no-config"] : []),
    SELF,
    mode,
    JSON.stringify(spec),
  ];
}

/** Runs every row of `config` in turn, reporting progress through `log`. */
export async function runSpeedBenchmark(
  config: SpeedConfig,
  options: { command?: string; quick?: boolean; log?: (line: string) => void } = {},
): Promise<SpeedRun> {
  const log = options.log ?? ((line: string) => console.error(line));
  const startedAt = new Date().toISOString();
  const started = performance.now();
  const loadStart = loadAverage();
  const rows: RowResult[] = [];

  const run = async (
    row: Omit<RowResult, "records" | "seconds" | "load" | "stopped">,
    budgetS: number,
    start: (deadline: number) => [string, string[]],
  ) => {
    const name = `${row.backbone} ${row.side} ${row.requested}${row.threads ? `:${row.threads}` : ""}${
      row.isa ? ` (${row.isa})` : ""
    } ${row.task}${row.round !== undefined ? ` round ${row.round + 1}` : ""}`;
    let best: RowResult | undefined;
    const attempts = 1 + (config.quiet?.retries ?? 0);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const quiet = config.quiet
        ? await waitForQuiet(config.quiet.belowCores, config.quiet.maxWaitS)
        : undefined;
      const t = performance.now();
      const load0 = loadAverage()[0];
      const cpu0 = machineCpuSeconds();
      const [command, args] = start(Date.now() + budgetS * 1000);
      log(`[speed] ${name} (budget ${budgetS} s${attempt > 1 ? `, attempt ${attempt}` : ""}) ...`);
      const env = row.isa ? { ONEDNN_MAX_CPU_ISA: row.isa } : undefined;
      const result = await runProcess(command, args, budgetS, config.graceS, config.verbose, env);
      const seconds = (performance.now() - t) / 1000;
      const cpu1 = machineCpuSeconds();
      const own = result.records.findLast((r) => r.kind === "cpu");
      const done: RowResult = {
        ...row,
        ...result,
        seconds,
        load: [load0, loadAverage()[0]],
        otherCores: cpu0 && cpu1 && own?.kind === "cpu"
          ? Math.max(0, (cpu1.busy - cpu0.busy - own.seconds) / seconds)
          : undefined,
        waitedS: quiet?.waitedS,
        attempts: attempt,
      };
      log(
        `[speed]   ${seconds.toFixed(0)} s${
          done.otherCores === undefined ? "" : `, other work ${done.otherCores.toFixed(2)} cores`
        }${done.stopped ? `; ${done.stopped}` : ""}`,
      );
      if (!best || (done.otherCores ?? 0) < (best.otherCores ?? 0)) best = { ...done, attempts: attempt };
      best.attempts = attempt;
      if (!config.quiet || done.stopped || (done.otherCores ?? 0) < config.quiet.retryAboveCores) break;
    }
    rows.push(best!);
  };

  for (const backbone of config.backbones) {
    const ours = (backend: BackendPolicy, headline: boolean, round?: number) => {
      const budgetS = headline ? config.headlineBudgetS : config.budgetS;
      return run(
        { side: "ours", requested: backend, backbone, task: "row", round },
        budgetS,
        (deadline) => {
          const spec: RowSpec = {
            backend,
            backbone,
            trainBatches: config.trainBatches,
            inferBatch: config.inferBatch,
            effort: config.effort,
            job: config.job,
            profile: headline && !round,
            deadline,
          };
          return [Deno.execPath(), denoArgs("--row", spec)];
        },
      );
    };
    const peer = (device: string, threads?: number, isa?: string, round?: number) =>
      run(
        { side: "pytorch", requested: device, threads, isa, backbone, task: "row", round },
        config.headlineBudgetS,
        (deadline) => [config.python, [
          config.peerScript,
          "--backbone",
          backbone,
          "--device",
          device,
          ...(threads ? ["--threads", String(threads)] : []),
          "--train-batches",
          config.trainBatches.join(","),
          "--infer-batch",
          String(config.inferBatch),
          "--effort",
          JSON.stringify(config.effort),
          "--job",
          [
            config.job.classes,
            config.job.shots,
            config.job.epochs ?? ADAPT_DEFAULTS.epochs,
            ADAPT_DEFAULTS.batchSize,
            METHODS.daft.lrHead,
            METHODS.daft.lrBackbone,
            ADAPT_DEFAULTS.valFraction,
          ].join(","),
          "--deadline",
          String(deadline),
          ...(round ? [] : ["--profile"]),
        ]],
      );
    // The headline rows back to back, so that they see the same machine, round after round.
    const [first, ...others] = config.backends;
    const rounds = Math.max(1, Math.floor(config.rounds));
    for (let i = 0; i < rounds; i++) {
      const round = rounds > 1 ? i : undefined;
      if (first) await ours(first, true, round);
      for (const device of config.peerDevices) {
        if (device !== "cpu") await peer(device, undefined, undefined, round);
        else {
          for (const threads of config.peerThreads) await peer(device, threads, undefined, round);
          if (config.narrowPeerIsa && config.peerThreads.length) {
            await peer(device, Math.max(...config.peerThreads), config.narrowPeerIsa, round);
          }
        }
      }
    }
    for (const backend of others) await ours(backend, false);
  }

  if (config.soak && config.soak.jobs > 0 && config.backends.length) {
    const soak = config.soak;
    await run(
      { side: "ours", requested: config.backends[0], backbone: "tiny", task: "soak" },
      config.headlineBudgetS,
      (deadline) => [Deno.execPath(), denoArgs("--soak", { ...soak, backend: config.backends[0], deadline })],
    );
  }

  return {
    info: {
      command: options.command ?? "runSpeedBenchmark()",
      machine: await machineInfo(),
      startedAt,
      wallSeconds: (performance.now() - started) / 1000,
      load: { start: loadStart, end: loadAverage() },
      quick: options.quick ?? false,
      config,
    },
    rows,
  };
}

function emitRecord(record: RowRecord) {
  console.log(RECORD_PREFIX + JSON.stringify(record));
}

const USAGE = `usage: deno task bench [options]

Speed of the runtime beside PyTorch on the same architectures: training throughput, inference latency and
throughput, time to an adapted model, peak memory, and a memory soak of small jobs. The full run (no
--quick, default backends and backbones; about 10 minutes on 2 cores) writes docs/BENCHMARKS.md; other runs
print the report and write only where --out or --json say.

  --quick                      short budgets, small batches
  --backends LIST              comma list of auto, webgpu, wasm, cpu
  --backbones LIST             comma list of mobilenetv2, tiny
  --skip-peer                  no PyTorch rows
  --peer-devices LIST          PyTorch devices (cpu, cuda)
  --peer-threads LIST          PyTorch CPU thread counts, e.g. 1,2
  --rounds N                   run the headline rows (first backend, PyTorch) N times in turn; figures are
                               medians over the rounds (default 3; --quick: 1)
  --narrow-peer-isa ISA        one more PyTorch CPU row (most threads) with its convolutions held to ISA
                               (ONEDNN_MAX_CPU_ISA; default SSE41, 128-bit like WebAssembly SIMD; none: no
                               such row; --quick: none unless given)
  --python PATH                a python3 with PyTorch (default /usr/bin/python3)
  --budget S --headline-budget S   seconds per row (the first backend and PyTorch get the headline budget)
  --soak-jobs N                jobs in the memory soak (default 50)
  --quiet-wait S               wait up to S seconds for the cores to be quiet before each row (0: never)
  --retries N                  rerun a row this often when other work ran beside it
  --out FILE --json FILE       where to write the report and the raw results
  --verbose                    each row's own output`;

/** `--narrow-peer-isa`: an ISA name oneDNN knows (letters, digits, underscores), or `none`. */
function narrowIsa(flag: string | undefined, fallback: string | null): string | null {
  if (flag === undefined) return fallback;
  if (flag.toLowerCase() === "none") return null;
  if (!/^[A-Za-z0-9_]+$/.test(flag)) throw new Error(`--narrow-peer-isa: '${flag}' is not an ISA name`);
  return flag.toUpperCase();
}

async function main() {
  const { values: flags } = commandLine(USAGE, {
    quick: { type: "boolean", default: false },
    backends: { type: "string" },
    backbones: { type: "string" },
    "skip-peer": { type: "boolean", default: false },
    "peer-devices": { type: "string" },
    "peer-threads": { type: "string" },
    "narrow-peer-isa": { type: "string" },
    rounds: { type: "string" },
    python: { type: "string" },
    "peer-script": { type: "string" },
    budget: { type: "string" },
    "headline-budget": { type: "string" },
    "soak-jobs": { type: "string" },
    out: { type: "string" },
    json: { type: "string" },
    command: { type: "string" },
    "quiet-wait": { type: "string" },
    retries: { type: "string" },
    verbose: { type: "boolean", default: false },
    row: { type: "string" },
    soak: { type: "string" },
  });
  if (flags.row) return await runRow(JSON.parse(flags.row), emitRecord);
  if (flags.soak) return await runSoak(JSON.parse(flags.soak), emitRecord);

  const list = (s: string | undefined) => s?.split(",").map((v) => v.trim()).filter(Boolean);
  const number = (s: string | undefined, fallback: number) => {
    if (s === undefined) return fallback;
    const n = Number(s);
    if (!Number.isFinite(n) || n < 0) throw new Error(`expected a non-negative number, got '${s}'`);
    return n;
  };
  const backends = list(flags.backends) as BackendPolicy[] | undefined;
  for (const b of backends ?? []) {
    if (!["auto", "wasm", "cpu", "webgpu"].includes(b)) throw new Error(`unknown backend '${b}'`);
  }
  const backbones = list(flags.backbones) as SpeedBackbone[] | undefined;
  for (const b of backbones ?? []) {
    if (!SPEED_BACKBONES.includes(b)) throw new Error(`unknown backbone '${b}'; have ${SPEED_BACKBONES}`);
  }
  const quick = flags.quick!;
  const base = DEFAULT_CONFIG;
  const config: SpeedConfig = {
    ...base,
    backends: backends ?? base.backends,
    backbones: backbones ?? base.backbones,
    peerDevices: flags["skip-peer"] ? [] : list(flags["peer-devices"]) ?? base.peerDevices,
    peerThreads: list(flags["peer-threads"])?.map((t) => number(t, 1)) ?? base.peerThreads,
    narrowPeerIsa: narrowIsa(flags["narrow-peer-isa"], quick ? null : base.narrowPeerIsa),
    rounds: number(flags.rounds, quick ? 1 : base.rounds),
    python: flags.python ?? base.python,
    peerScript: flags["peer-script"] ?? base.peerScript,
    effort: quick ? QUICK_EFFORT : FULL_EFFORT,
    job: quick ? { ...base.job, epochs: 2 } : base.job,
    soak: { ...base.soak!, jobs: number(flags["soak-jobs"], quick ? 10 : base.soak!.jobs) },
    budgetS: number(flags.budget, quick ? 60 : base.budgetS),
    headlineBudgetS: number(flags["headline-budget"], quick ? 150 : base.headlineBudgetS),
    quiet: number(flags["quiet-wait"], 1) === 0 ? null : {
      ...base.quiet!,
      maxWaitS: number(flags["quiet-wait"], base.quiet!.maxWaitS),
      retries: number(flags.retries, quick ? 0 : base.quiet!.retries),
    },
    verbose: flags.verbose!,
  };
  const shown = Deno.args.filter((a) => a !== "--verbose").join(" ");
  const command = flags.command ??
    (BUNDLED ? `deno run -A --no-config ${SELF.split("/").pop()} ${shown}` : `deno task bench ${shown}`)
      .trim();
  const run = await runSpeedBenchmark(config, { command, quick });

  const full = !quick && !backends && !backbones && !flags["skip-peer"] && !flags["peer-devices"] &&
    !flags["soak-jobs"] && !flags.budget && !flags["headline-budget"];
  const out = flags.out ?? (full ? "docs/BENCHMARKS.md" : undefined);
  let existing: string | undefined;
  try {
    existing = out ? await Deno.readTextFile(out) : undefined;
  } catch { /* a new file */ }
  const report = renderSpeedReport(run, extractAnalysis(existing));
  console.log(report);
  if (out) {
    await Deno.writeTextFile(out, report);
    console.error(`[speed] wrote ${out}`);
  }
  if (flags.json) await Deno.writeTextFile(flags.json, JSON.stringify(run, null, 2) + "\n");
}

if (import.meta.main) await main();
