// The speed benchmark's Markdown report: the goals, one table per backbone with the ratio to PyTorch, where
// a training step goes, the memory soak, how figures are taken, and a run log with the load average.
import { analysisSection } from "./_report_analysis.ts";
import { BACKBONE_TITLES, type SpeedBackbone } from "./_speed_models.ts";
import {
  type InfoRecord,
  lastRecordOf,
  median,
  mergeRounds,
  type ProfileRecord,
  recordOf,
  type RowResult,
} from "./_speed_records.ts";
import type { SpeedRun } from "./speed.ts";

/** One figure of a row: a number, or why there is none. */
export type Figure = { value: number } | { missing: string };

/** The figures of a table row, in column order. */
export const FIGURES = [
  { key: "train16", title: "train b16 (samples/s)", better: "higher" },
  { key: "train32", title: "train b32 (samples/s)", better: "higher" },
  { key: "p50", title: "latency p50 (ms)", better: "lower" },
  { key: "p99", title: "latency p99 (ms)", better: "lower" },
  { key: "infer32", title: "infer b32 (samples/s)", better: "higher" },
  { key: "adapt", title: "adapt job (s)", better: "lower" },
  { key: "rss", title: "peak RSS (MiB)", better: "lower" },
  { key: "tensors", title: "tensor peak (MiB)", better: "lower" },
] as const;

/** A figure's key. */
export type FigureKey = (typeof FIGURES)[number]["key"];

function why(row: RowResult, what: string): string {
  const skipped = row.records.find((r) => r.kind === "skipped" && (r.what === what || r.what === "all"));
  if (skipped?.kind === "skipped") return `skipped: ${skipped.reason}`;
  return row.stopped ? `not reached: ${row.stopped}` : "not measured";
}

/** Every figure of a row, by key. */
export function rowFigures(row: RowResult): Record<FigureKey, Figure> {
  const has = (value: number | undefined, what: string): Figure =>
    value === undefined || !Number.isFinite(value) ? { missing: why(row, what) } : { value };
  const memory = lastRecordOf(row, "memory");
  const train = (batch: number) => recordOf(row, "train", (r) => r.batch === batch)?.samplesPerSec;
  const batches = row.records.filter((r) => r.kind === "train").map((r) => r.kind === "train" ? r.batch : 0);
  return {
    train16: has(train(16) ?? (batches[0] === undefined ? undefined : train(batches[0])), "train b16"),
    train32: has(train(32) ?? (batches[1] === undefined ? undefined : train(batches[1])), "train b32"),
    p50: has(recordOf(row, "latency")?.p50Ms, "latency"),
    p99: has(recordOf(row, "latency")?.p99Ms, "latency"),
    infer32: has(recordOf(row, "throughput")?.samplesPerSec, "throughput"),
    adapt: has(recordOf(row, "adapt")?.seconds, "adapt"),
    rss: has(memory?.hwmMiB ?? memory?.peakRssMiB, "memory"),
    tensors: has(memory?.tensorPeakMiB, "tensor peak"),
  };
}

function format(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function rowName(row: RowResult): string {
  const info = recordOf(row, "info");
  if (row.side === "pytorch") {
    if (row.requested === "cpu") {
      return `PyTorch CPU, ${row.threads ?? info?.versions.threads ?? "default"} thread${
        row.threads === 1 ? "" : "s"
      }${row.isa ? `, convolutions held to ${row.isa}` : ""}`;
    }
    return `PyTorch ${row.requested}${info ? ` (${info.detail})` : ""}`;
  }
  const actual = info?.backend;
  const label = actual && actual !== row.requested ? `${row.requested} = ${actual}` : row.requested;
  return `ours tfjs ${label}${
    info && actual === "webgpu" ? ` (${info.detail.replace(/^WebGPU adapter: /, "")})` : ""
  }`;
}

/** ours/PyTorch for a figure, when both exist. */
export function ratio(ours: Figure, peer: Figure): number | undefined {
  return "value" in ours && "value" in peer && peer.value > 0 ? ours.value / peer.value : undefined;
}

/**
 * The PyTorch rows each of our rows is compared with: the first backend (the headline) with every PyTorch
 * CPU row, and WebGPU with PyTorch CUDA when both ran.
 */
export function comparisons(rows: RowResult[], backbone: string): { ours: RowResult; peer: RowResult }[] {
  const here = rows.filter((r) => r.backbone === backbone && r.task === "row");
  const peers = here.filter((r) => r.side === "pytorch" && recordOf(r, "info"));
  const ourRows = here.filter((r) => r.side === "ours");
  const pairs: { ours: RowResult; peer: RowResult }[] = [];
  if (ourRows[0]) {
    for (const peer of peers.filter((p) => p.requested === "cpu")) pairs.push({ ours: ourRows[0], peer });
  }
  const cudaPeer = peers.find((p) => p.requested === "cuda");
  const webgpu = ourRows.find((r) => recordOf(r, "info")?.backend === "webgpu");
  if (cudaPeer && webgpu) pairs.push({ ours: webgpu, peer: cudaPeer });
  return pairs;
}

function isSoftwareAdapter(info: InfoRecord | undefined) {
  return !info || /llvmpipe|lavapipe|swiftshader|software|microsoft basic/i.test(info.detail);
}

/** One goal, judged against PyTorch's best CPU configuration for that figure. */
export interface GoalResult {
  goal: string;
  ours?: number;
  /** PyTorch's best value and the row it came from. */
  peer?: number;
  peerRow?: string;
  ratio?: number;
  met?: boolean;
  /**
   * For context, not judged: the row whose convolutions were held to a narrower ISA (`RowResult.isa`,
   * WebAssembly SIMD's 128-bit width), its value and ours over it.
   */
  narrow?: { value: number; row: string; ratio: number };
}

/**
 * The team's goals on the default backbone, against the best PyTorch CPU configuration per figure: training
 * at least 0.5x at batch 16 (aim 1x) and 1x at batch 32, inference at least 1x (latency at most PyTorch's,
 * batch throughput at least), the adapt job no slower and peak RSS no higher.
 */
export function goals(run: SpeedRun): GoalResult[] {
  const cpuPairs = comparisons(mergeRounds(run.rows), "mobilenetv2").filter((p) =>
    p.peer.requested === "cpu"
  );
  const pairs = cpuPairs.filter((p) => !p.peer.isa);
  if (!pairs.length) return [];
  const narrowRow = cpuPairs.find((p) => p.peer.isa)?.peer;
  const o = rowFigures(pairs[0].ours);
  const line = (goal: string, key: FigureKey, test: (r: number) => boolean): GoalResult => {
    const better = FIGURES.find((f) => f.key === key)!.better;
    let best: { value: number; row: RowResult } | undefined;
    for (const { peer } of pairs) {
      const f = rowFigures(peer)[key];
      if (!("value" in f)) continue;
      if (!best || (better === "higher" ? f.value > best.value : f.value < best.value)) {
        best = { value: f.value, row: peer };
      }
    }
    const ours = "value" in o[key] ? o[key].value : undefined;
    const r = best && ours !== undefined ? ours / best.value : undefined;
    const n = narrowRow && rowFigures(narrowRow)[key];
    return {
      goal,
      ours,
      peer: best?.value,
      peerRow: best && rowName(best.row),
      ratio: r,
      met: r === undefined ? undefined : test(r),
      narrow: n && "value" in n && ours !== undefined && n.value > 0
        ? { value: n.value, row: rowName(narrowRow), ratio: ours / n.value }
        : undefined,
    };
  };
  return [
    line("training b16: at least 0.5x PyTorch (aim 1x)", "train16", (r) => r >= 0.5),
    line("training b32: at least 1x PyTorch", "train32", (r) => r >= 1),
    line("single-image latency p50: at most 1x PyTorch's", "p50", (r) => r <= 1),
    line("batch-32 inference: at least 1x PyTorch", "infer32", (r) => r >= 1),
    line("adapt job: at most 1x PyTorch's time", "adapt", (r) => r <= 1),
    line("peak RSS: at most 1x PyTorch's", "rss", (r) => r <= 1),
  ];
}

/**
 * Where the headline rows ran in rounds: each goal's ratio in every round (that round's rows judged alone,
 * as {@linkcode goals} judges the medians), with the narrow row's beside it. Empty for a run of one round.
 */
export function roundSpread(run: SpeedRun): string[] {
  const rounds = [...new Set(run.rows.filter((r) => r.round !== undefined).map((r) => r.round!))].sort((
    a,
    b,
  ) => a - b);
  if (rounds.length < 2) return [];
  const perRound = rounds.map((k) => goals({ ...run, rows: run.rows.filter((r) => r.round === k) }));
  const [first] = perRound;
  if (!first.length) return [];
  const times = (r?: number) => r === undefined ? "—" : `${r.toFixed(2)}x`;
  const range = (values: (number | undefined)[]) => {
    const v = values.filter((x): x is number => x !== undefined);
    return v.length ? `${times(Math.min(...v))} to ${times(Math.max(...v))}` : "—";
  };
  const narrow = perRound.some((g) => g.some((x) => x.narrow));
  return [
    `### Each round (${rounds.length} rounds of the headline rows, run in turn)`,
    "",
    `| goal | ${rounds.map((k) => `round ${k + 1}`).join(" | ")} | range |${
      narrow ? " against the narrow row |" : ""
    }`,
    `| --- | ${rounds.map(() => "---:").join(" | ")} | --- |${narrow ? " --- |" : ""}`,
    ...first.map((g, i) =>
      `| ${g.goal} | ${perRound.map((r) => times(r[i]?.ratio)).join(" | ")} | ${
        range(perRound.map((r) => r[i]?.ratio))
      } |${narrow ? ` ${range(perRound.map((r) => r[i]?.narrow?.ratio))} |` : ""}`
    ),
  ];
}

/** The goals section's body: a sentence, the table, and the narrow row's context where the run has one. */
export function goalTable(run: SpeedRun): string[] {
  const goalRows = goals(run);
  if (!goalRows.length) return ["_Not judged: this run has no default-backbone comparison with PyTorch._"];
  const [pair] = comparisons(mergeRounds(run.rows), "mobilenetv2");
  const narrow = goalRows.find((g) => g.narrow)?.narrow?.row;
  const cell = (value?: number) => value === undefined ? "—" : format(value);
  const times = (r?: number) => r === undefined ? "—" : `${r.toFixed(2)}x`;
  return [
    `Default backbone, ${rowName(pair.ours)} against the best PyTorch CPU configuration for each figure.`,
    ...(narrow
      ? [
        `The last two columns, for context and not judged: ${narrow} (\`ONEDNN_MAX_CPU_ISA\`; SSE41`,
        "gives PyTorch's convolutions the 128-bit vectors WebAssembly SIMD has, and its other kernels run as",
        "usual).",
      ]
      : []),
    "",
    `| goal | ours | PyTorch (best) | ours/PyTorch | met |${
      narrow ? " PyTorch, narrow convolutions | ours/that |" : ""
    }`,
    `| --- | ---: | ---: | ---: | --- |${narrow ? " ---: | ---: |" : ""}`,
    ...goalRows.map((g) =>
      `| ${g.goal} | ${cell(g.ours)} | ${
        g.peer === undefined ? "—" : `${format(g.peer)} (${g.peerRow!.replace(/^PyTorch /, "")})`
      } | ${times(g.ratio)} | ${g.met === undefined ? "not measured" : g.met ? "**yes**" : "**no**"} |${
        narrow ? ` ${cell(g.narrow?.value)} | ${times(g.narrow?.ratio)} |` : ""
      }`
    ),
  ];
}

/** Kinds of kernel, by name, tfjs and PyTorch alike; the first that matches wins. */
export const KERNEL_KINDS: [string, RegExp][] = [
  ["convolution gradients", /Backprop|convolution_backward/],
  [
    "convolution forward",
    /^(Conv2D|FusedConv2D|DepthwiseConv2dNative|FusedDepthwiseConv2D)$|aten::.*convolution/,
  ],
  ["batch norm (fused kernels)", /BatchNorm|batch_norm/],
  ["everything else (elementwise, reductions, copies, updates)", /./],
];

/** A profile's kernel time by kind, in ms. */
export function kernelKinds(profile: ProfileRecord): { kind: string; ms: number }[] {
  const totals = new Map(KERNEL_KINDS.map(([kind]) => [kind, 0]));
  for (const k of profile.kernels) {
    const [kind] = KERNEL_KINDS.find(([, re]) => re.test(k.name))!;
    totals.set(kind, totals.get(kind)! + k.ms);
  }
  return [...totals].map(([kind, ms]) => ({ kind, ms }));
}

function profileTable(profile: ProfileRecord, top = 10): string[] {
  const share = (ms: number) => `${(100 * ms / profile.stepMs).toFixed(0)}%`;
  const kinds = kernelKinds(profile).map((k) => `${k.kind} ${share(k.ms)}`);
  const lines = [
    `Step wall time ${profile.stepMs.toFixed(0)} ms (profiled); ${
      profile.kernels.reduce((n, k) => n + k.calls, 0)
    } kernel/operator calls take ${profile.kernelMs.toFixed(0)} ms of it. Of the step: ${
      kinds.join(", ")
    }, ` +
    `outside kernels ${share(Math.max(0, profile.stepMs - profile.kernelMs))}.`,
    "",
    "| kernel | calls | ms | share of kernel time |",
    "| --- | ---: | ---: | ---: |",
  ];
  let rest = profile.kernelMs;
  for (const k of profile.kernels.slice(0, top)) {
    rest -= k.ms;
    lines.push(
      `| ${k.name} | ${k.calls} | ${k.ms.toFixed(1)} | ${(100 * k.ms / profile.kernelMs).toFixed(1)}% |`,
    );
  }
  if (profile.kernels.length > top) {
    lines.push(
      `| ${profile.kernels.length - top} others | ${
        profile.kernels.slice(top).reduce((n, k) => n + k.calls, 0)
      } | ${rest.toFixed(1)} | ${(100 * rest / profile.kernelMs).toFixed(1)}% |`,
    );
  }
  return lines;
}

/** The whole report as Markdown; `analysis` is kept from an earlier report. */
export function renderSpeedReport(run: SpeedRun, analysis?: string): string {
  const { info } = run;
  // Every section but the run log reads a row run in several rounds as one, its figures the rounds' medians.
  const rows = mergeRounds(run.rows);
  const m = info.machine;
  const out: string[] = [];
  const push = (...lines: string[]) => out.push(...lines);
  const peerInfo = rows.map((r) => recordOf(r, "info")).find((i) => i?.side === "pytorch");
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(" / ");

  push(
    "# Benchmarks: compute speed, side by side with PyTorch",
    "",
    "Written by `deno task bench` (`bench/speed.ts`; PyTorch peer `bench/peer_torch.py`). Rerunning it rewrites",
    "this file and keeps the hand-written analysis at the end.",
    "",
    `- Command: \`${info.command}\`${
      info.quick ? " (quick: fewer repetitions, a 2-epoch job, fewer soak jobs)" : ""
    }`,
    `- Started ${info.startedAt}, took ${(info.wallSeconds / 60).toFixed(1)} min`,
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB.toFixed(1)} GiB, ${m.os}`,
    `- Load average (1 / 5 / 15 min): ${load(info.load.start)} at the start, ${
      load(info.load.end)
    } at the end (per row in the run log); the cores are shared with other work`,
    `- Ours: Deno ${m.deno} (V8 ${m.v8}, TypeScript ${m.typescript}), TensorFlow.js ${m.tfjs}, commit ${m.commit}`,
    peerInfo
      ? `- Peer: Python ${peerInfo.versions.python}, PyTorch ${peerInfo.versions.torch}, torchvision ${peerInfo.versions.torchvision}, CPU rows at ${
        info.config.peerThreads.join(" and ")
      } threads (\`torch.set_num_threads\`), run with \`${info.config.python}\``
      : `- Peer: not run${
        info.config.peerDevices.length ? " (PyTorch unavailable; see the run log)" : " (--skip-peer)"
      }`,
    "",
  );

  push("## Goals", "", ...goalTable(run), "");
  const spread = roundSpread(run);
  if (spread.length) push(...spread, "");

  const notes: string[] = [];
  const note = (text: string) => {
    const i = notes.indexOf(text);
    if (i >= 0) return `[${i + 1}]`;
    notes.push(text);
    return `[${notes.length}]`;
  };
  for (const backbone of info.config.backbones) {
    const here = rows.filter((r) => r.backbone === backbone && r.task === "row");
    if (!here.length) continue;
    push(
      `## ${BACKBONE_TITLES[backbone as SpeedBackbone] ?? backbone}`,
      "",
      `| row | ${FIGURES.map((f) => f.title).join(" | ")} |`,
      `| --- | ${FIGURES.map(() => "---:").join(" | ")} |`,
    );
    for (const row of here) {
      const figures = rowFigures(row);
      const cells = FIGURES.map((f) => {
        const fig = figures[f.key];
        if (!("value" in fig)) return `— ${note(fig.missing)}`;
        const diverged = f.key === "adapt" && recordOf(row, "adapt")?.diverged;
        return diverged
          ? `${format(fig.value)} ${note("the loss went non-finite; the job ran to the end")}`
          : format(fig.value);
      });
      push(`| ${rowName(row)} | ${cells.join(" | ")} |`);
    }
    for (const { ours, peer } of comparisons(rows, backbone)) {
      const o = rowFigures(ours), p = rowFigures(peer);
      const cells = FIGURES.map((f) => {
        const r = ratio(o[f.key], p[f.key]);
        return r === undefined ? "—" : `${r.toFixed(2)}x`;
      });
      push(`| **ours ${ours.requested} / ${rowName(peer)}** | ${cells.join(" | ")} |`);
    }
    push("");
  }
  if (notes.length) {
    push("Notes:", "", ...notes.map((n, i) => `${i + 1}. ${n}`), "");
  }
  push(
    "Higher is better for samples/s; lower is better for ms, s and MiB. A ratio above 1 on a samples/s",
    "column, or below 1 on the others, means ours is ahead.",
    "",
  );

  const profiled = rows.filter((r) => r.task === "row" && recordOf(r, "profile"));
  if (profiled.length) {
    push("## Where a training step goes", "");
    for (const row of profiled) {
      const p = recordOf(row, "profile")!;
      push(`### ${row.backbone}, ${rowName(row)}, batch ${p.batch}`, "", ...profileTable(p), "");
    }
    push(
      "tfjs: `tf.profile` over one step, time per kernel as the backend measures it (the gradient kernels",
      "are the backward pass). PyTorch: `torch.autograd.profiler`, self CPU time per operator.",
      "",
    );
  }

  const soakRow = rows.find((r) => r.task === "soak");
  const soak = soakRow && recordOf(soakRow, "soak");
  push("## Memory over consecutive jobs", "");
  if (soak && soak.samples.length >= 2) {
    const first = soak.samples[0], last = soak.samples[soak.samples.length - 1];
    const warm = soak.samples.find((s) => s.job === 1) ?? first;
    // The allocators settle over the first tens of jobs; a leak keeps growing in the second half.
    const half = soak.samples.find((s) => s.job >= last.job / 2) ?? first;
    const slope = (key: "rssMiB" | "heapMiB") =>
      last.job > half.job ? (last[key] - half[key]) / (last.job - half.job) : 0;
    const perJob = (key: "rssMiB" | "heapMiB") => {
      const v = slope(key) * 1024;
      return `${v >= 0 ? "+" : ""}${v.toFixed(0)} KiB`;
    };
    push(
      `${soak.jobs} \`adapt()\` jobs back to back in one process (${
        rowName(soakRow)
      }), tiny backbone, ${soak.samplesPerJob} images,`,
      `${soak.epochs} epoch each, ${soak.seconds.toFixed(0)} s in all; garbage collected before each sample.`,
      "",
      "| after job | RSS (MiB) | V8 heap used (MiB) | wasm memory (MiB) | tf.memory().numTensors |",
      "| ---: | ---: | ---: | ---: | ---: |",
      ...soak.samples.map((s) =>
        `| ${s.job} | ${s.rssMiB.toFixed(1)} | ${s.heapMiB.toFixed(1)} | ${
          s.wasmMiB?.toFixed(0) ?? "—"
        } | ${s.numTensors} |`
      ),
      "",
      `Live tensors: ${first.numTensors} at the start, ${last.numTensors} at the end (${
        last.numTensors === first.numTensors ? "**flat**" : `**${last.numTensors - first.numTensors} leaked**`
      }). RSS: ${first.rssMiB.toFixed(1)} MiB at the start, ${warm.rssMiB.toFixed(1)} after the first job, ${
        last.rssMiB.toFixed(1)
      } at the end. Over the second half (jobs ${half.job} to ${last.job}): RSS ${
        perJob("rssMiB")
      } per job, V8 heap ${perJob("heapMiB")} per job.`,
      "",
    );
  } else {
    push(`_Not run${soakRow?.stopped ? `: ${soakRow.stopped}` : ""}._`, "");
  }

  const gpuRows = rows.filter((r) => {
    const i = recordOf(r, "info");
    return i && (i.backend === "cuda" || (i.backend === "webgpu" && !isSoftwareAdapter(i)));
  });
  push("## GPU", "");
  if (gpuRows.length) {
    push(`This run measured on a GPU: ${gpuRows.map(rowName).join("; ")}.`, "");
  } else {
    push(
      "**The GPU figures are not yet measured.** The webgpu rows above run on a software adapter (the CPU).",
      "`bench/gpu.sh --prepare` builds a self-contained copy of this benchmark and of `bench/webgpu.ts` (bundled",
      "JS files, the Deno binary xz-compressed, the Vulkan loader from Debian's `libvulkan1`) under",
      "`bench/out/`; `bench/gpu.sh --run` on an NVIDIA machine first times a MobileNetV2 training step on",
      "WebGPU with and without this project's WGSL kernels (dispatches and samples/s), then runs this benchmark",
      "with `--backends webgpu,wasm --peer-devices cuda,cpu`, WebGPU on the NVIDIA Vulkan driver, against",
      "PyTorch CUDA and CPU where that machine has PyTorch, and writes its own report.",
      "",
    );
  }

  push("## How the figures are taken", "");
  push(
    "- Each row is one process: a tfjs backend (`auto` is the runtime's own choice) or a PyTorch device, on",
    "  one backbone with a new 10-class dense head. Weights: MobileNetV2 has the ImageNet weights the",
    "  runtime ships (PyTorch: random, the same shapes); tiny is `buildTinyNet` untrained. Inputs are random",
    "  images; speed does not depend on the values.",
    "- Training (samples/s): `batch / median step time`. A step is the runtime's `trainingStep`",
    "  (`src/adapt/training_step.ts`): forward in train mode (batch-statistics BN), softmax cross-entropy,",
    "  backward, momentum-SGD update of every weight (head and backbone), loss and",
    "  hits read back. PyTorch does the same in `Classifier.step`. Warm-up steps are not timed.",
    "- Latency: the served classifier (backbone + head + softmax) on one image through the server's path,",
    "  `AdaptedModel.predict` (its inference plan: batch norms folded into fused convolutions; one read; top",
    "  3), p50 and p99 over the timed runs (nearest rank). Batch inference: the same on a batch of 32.",
    `- Adapt job: \`adapt()\` with DAFT defaults on ${info.config.job.classes} classes x ${info.config.job.shots} shots` +
      ` (${info.config.job.epochs ?? 10} epochs, batch 16, 20% held out), synthetic images (a`,
    "  fixed pattern per class plus noise); a fresh backbone, timed from the call to the adapted model.",
    "  PyTorch runs the same computation written directly (`adapt_job`: pretrained validation features, BN",
    "  conversion with its statistics pass, zero head, cosine momentum SGD, a validation pass per epoch,",
    "  best-epoch restore, final evaluation).",
    "- Memory: peak RSS is the kernel's high-water mark for the row's process (`VmHWM`; PyTorch",
    "  `ru_maxrss`), falling back to the largest `Deno.memoryUsage().rss` sampled after each step. Tensor",
    "  peak: `tf.profile`'s `peakBytes` over one training step at the largest batch (PyTorch: on CUDA only,",
    "  `torch.cuda.max_memory_allocated`). tfjs counts a tensor that shares another's data (the copies it",
    "  keeps for the backward pass share their data) once more, so this overstates the memory the tensors",
    "  hold; peak RSS is what the process took.",
    `- Repetitions: ${info.config.effort.warmupSteps} warm-up steps, then ${info.config.effort.minSteps} to ${info.config.effort.maxSteps} timed` +
      ` steps per batch; up to ${info.config.effort.latencyRuns} single-image runs;`,
    `  up to ${info.config.effort.inferRuns} batch runs. Budgets: ${info.config.headlineBudgetS} s for the first backend,` +
      ` PyTorch and the soak; ${info.config.budgetS} s for the other rows.`,
    ...((info.config.rounds ?? 1) > 1
      ? [
        `- Rounds: the headline rows (the first backend and PyTorch's) ran ${info.config.rounds} times, one after the`,
        "  other in each round; a figure in the tables is the median over the rounds (the p99 latency is that of",
        "  the round with the median p50), and each round's goal ratios are listed under the goals. Other rows ran",
        "  once; the step profiles are the first round's.",
      ]
      : []),
    "",
  );

  const infos = rows.filter((r) => r.task === "row").map((r) => recordOf(r, "info"))
    .filter((i): i is InfoRecord => !!i);
  if (infos.length) {
    push(
      "## The same architectures",
      "",
      "| backbone | side | trainable parameters (with head) | BN layers | input (HxWxC) | features |",
      "| --- | --- | ---: | ---: | --- | ---: |",
    );
    const seen = new Set<string>();
    for (const i of infos) {
      const key = `${i.backbone}/${i.side}`;
      if (seen.has(key)) continue;
      seen.add(key);
      push(
        `| ${i.backbone} | ${i.side === "ours" ? "tfjs" : "PyTorch"} | ${
          i.parameters.toLocaleString("en")
        } | ${i.batchNormLayers} | ${i.inputShape.join("x")} | ${i.featureDim} |`,
      );
    }
    push(
      "",
      "Keras `block_10` is torchvision `features[11]` (Keras counts `expanded_conv` as block 0 after the",
      "stem), so the cut at `block_10_project_BN` is `features[:12]`; equal counts above confirm it.",
      "",
    );
  }

  push(
    "## Run log",
    "",
    "| row | task | seconds | attempt | waited for quiet (s) | other work beside it (cores) | load (1 min) at start / end | ended |",
    "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ...run.rows.map((r) =>
      `| ${r.backbone}: ${rowName(r)}${r.round !== undefined ? `, round ${r.round + 1}` : ""} | ${r.task} | ${
        r.seconds.toFixed(0)
      } | ${r.attempts ?? 1} | ${r.waitedS?.toFixed(0) ?? "—"} | ${r.otherCores?.toFixed(2) ?? "—"} | ${
        r.load[0].toFixed(2)
      } / ${r.load[1].toFixed(2)} | ${r.stopped ?? "complete"} |`
    ),
    "",
    "Other work: the machine's busy CPU time during the row (/proc/stat) less the row's own, over the row's",
    "wall time. The one-minute load average counts the row itself (tfjs wasm: one thread per core, `--wasm-threads auto`).",
    "",
  );

  const steps = run.rows.flatMap((r) => r.records).filter((r) => r.kind === "train");
  if (steps.length) {
    const spread = steps.map((s) => s.kind === "train" ? Math.max(...s.stepMs) / median(s.stepMs) : 1);
    push(
      `Largest step time over the median, per training figure: up to ${
        Math.max(...spread).toFixed(2)
      }x (the noise a shared machine adds).`,
      "",
    );
  }

  push(...analysisSection(analysis));
  return out.join("\n");
}
