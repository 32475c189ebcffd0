// The speed benchmark's harness at toy size: that a run yields well-formed rows for our backend, PyTorch
// (when this machine has it) and the memory soak, and a report. Timings are never asserted: the full run is
// `deno task bench`, a benchmark, not a test.
import assert from "node:assert/strict";
import { goals, goalTable, renderSpeedReport, roundSpread, rowFigures } from "../bench/_speed_report.ts";
import { mergeRounds, type RowRecord, type RowResult } from "../bench/_speed_records.ts";
import { DEFAULT_CONFIG, type Effort, runSpeedBenchmark, type SpeedRun } from "../bench/speed.ts";
import { attachHead } from "../src/adapt/classifier_head.ts";
import { mobilenetV2ImageNet } from "../src/model/mobilenetv2_imagenet.ts";
import { trainableParameters } from "../bench/_speed_models.ts";
import { testBackend } from "./_setup.ts";

const TOY_EFFORT: Effort = {
  warmupSteps: 1,
  minSteps: 2,
  maxSteps: 2,
  stepSeconds: 0,
  latencyRuns: 12,
  latencySeconds: 0,
  inferRuns: 2,
  inferSeconds: 0,
};

async function hasTorch(): Promise<boolean> {
  try {
    const out = await new Deno.Command(DEFAULT_CONFIG.python, {
      args: ["-c", "import torch, torchvision"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

const positive = (v: number) => Number.isFinite(v) && v > 0;

function assertFigureRow(row: RowResult, batches: number[]) {
  const kinds = new Set(row.records.map((r) => r.kind));
  for (const k of ["info", "train", "latency", "throughput", "adapt", "memory"]) {
    assert.ok(kinds.has(k as RowRecord["kind"]), `${row.side} ${row.requested}: no ${k} record`);
  }
  const trains = row.records.filter((r) => r.kind === "train");
  assert.deepEqual(trains.map((r) => r.kind === "train" && r.batch), batches);
  for (const r of row.records) {
    if (r.kind === "train") {
      assert.ok(r.stepMs.length >= TOY_EFFORT.minSteps && r.stepMs.every(positive));
      assert.ok(positive(r.samplesPerSec));
    }
    if (r.kind === "latency") assert.ok(r.runs >= 10 && positive(r.p50Ms) && r.p50Ms <= r.p99Ms);
    if (r.kind === "throughput") assert.ok(r.batch === 8 && positive(r.samplesPerSec));
    if (r.kind === "adapt") {
      assert.ok(positive(r.seconds) && r.trainingSeconds <= r.seconds);
      assert.deepEqual([r.classes, r.shots, r.epochs], [3, 4, 1]);
      assert.ok(r.valAccuracy >= 0 && r.valAccuracy <= 1);
    }
    if (r.kind === "memory") assert.ok(positive(r.peakRssMiB) && positive(r.hwmMiB ?? r.peakRssMiB));
  }
  const figures = rowFigures(row);
  for (const key of ["train16", "train32", "p50", "p99", "infer32", "adapt", "rss"] as const) {
    assert.ok("value" in figures[key], `${row.side} ${key}: ${JSON.stringify(figures[key])}`);
  }
}

Deno.test("a toy run yields well-formed rows for tfjs, PyTorch and the soak, and a report", async () => {
  const torch = await hasTorch();
  const run = await runSpeedBenchmark({
    ...DEFAULT_CONFIG,
    backbones: ["tiny"],
    backends: ["auto"],
    peerThreads: [1],
    narrowPeerIsa: "SSE41",
    rounds: 2,
    trainBatches: [4, 8],
    inferBatch: 8,
    effort: TOY_EFFORT,
    job: { classes: 3, shots: 4, epochs: 1 },
    soak: { jobs: 2, classes: 3, shots: 3, epochs: 1, batchSize: 4 },
    budgetS: 90,
    headlineBudgetS: 90,
    quiet: null,
  }, { command: "test", log: () => {} });

  assert.deepEqual(run.rows.map((r) => [r.side, r.isa, r.task, r.round]), [
    ["ours", undefined, "row", 0],
    ["pytorch", undefined, "row", 0],
    ["pytorch", "SSE41", "row", 0],
    ["ours", undefined, "row", 1],
    ["pytorch", undefined, "row", 1],
    ["pytorch", "SSE41", "row", 1],
    ["ours", undefined, "soak", undefined],
  ]);
  const [ours, peer, narrow] = run.rows;
  const soak = run.rows[6];
  // Only the first round profiles a step.
  assert.equal(run.rows[3].records.some((r) => r.kind === "profile"), false);
  assert.equal(ours.stopped, undefined, ours.stopped ?? "");
  assertFigureRow(ours, [4, 8]);
  const profile = ours.records.find((r) => r.kind === "profile");
  assert.ok(profile?.kind === "profile" && profile.kernels.length > 0 && positive(profile.kernelMs));

  if (torch) {
    assert.equal(peer.stopped, undefined, peer.stopped ?? "");
    assertFigureRow(peer, [4, 8]);
    const [a, b] = [ours, peer].map((r) => r.records.find((x) => x.kind === "info"));
    assert.ok(a?.kind === "info" && b?.kind === "info");
    assert.equal(a.parameters, b.parameters, "the two tiny nets differ");
    // The narrow row ran with oneDNN held to SSE4.1, and says so.
    assert.equal(narrow.stopped, undefined, narrow.stopped ?? "");
    assertFigureRow(narrow, [4, 8]);
    const info = narrow.records.find((x) => x.kind === "info");
    assert.ok(
      info?.kind === "info" && info.detail.includes("ONEDNN_MAX_CPU_ISA=SSE41"),
      JSON.stringify(info),
    );
  } else {
    assert.ok(peer.stopped, "a missing PyTorch must be reported, not silently dropped");
  }

  assert.equal(soak.stopped, undefined, soak.stopped ?? "");
  const record = soak.records.find((r) => r.kind === "soak");
  assert.ok(record?.kind === "soak");
  assert.deepEqual(record.samples.map((s) => s.job), [0, 1, 2]);
  assert.equal(record.samples[2].numTensors, record.samples[0].numTensors, "adapt() leaked tensors");

  const report = renderSpeedReport(run, "kept");
  assert.match(report, /\| row \| train b16 \(samples\/s\) \|/);
  assert.match(report, /\| ours tfjs auto = (wasm|cpu|webgpu) \| [\d.]+ \|/);
  if (torch) assert.match(report, /\| \*\*ours auto \/ PyTorch CPU, 1 thread\*\* \| [\d.]+x \|/);
  assert.match(report, /Live tensors: \d+ at the start, \d+ at the end \(\*\*flat\*\*\)/);
  assert.match(report, /analysis:start[^\n]*\nkept\n/);
  // The rows of both rounds are in the run log; the tables show one row each.
  assert.match(report, /\| tiny: ours tfjs auto = \w+, round 2 \| row \|/);
  assert.equal(report.match(/^\| ours tfjs auto = \w+ \|/gm)?.length, 1);
});

Deno.test("PyTorch's MobileNetV2 features[:12] has the Keras block_10 cut's parameters and BN layers", async () => {
  if (!(await hasTorch())) return;
  await testBackend();
  const out = await new Deno.Command(DEFAULT_CONFIG.python, {
    args: [DEFAULT_CONFIG.peerScript, "--backbone", "mobilenetv2", "--describe"],
    stdout: "piped",
  }).output();
  const line = new TextDecoder().decode(out.stdout).split("\n").find((l) => l.includes('"info"'))!;
  const peer = JSON.parse(line.slice(line.indexOf("{")));
  const backbone = await mobilenetV2ImageNet();
  const { logits } = attachHead(backbone, 10, "zeros", 0);
  assert.equal(peer.parameters, trainableParameters(logits));
  assert.equal(peer.batchNormLayers, backbone.batchNormLayers.length);
  assert.equal(peer.featureDim, backbone.featureDim);
  logits.dispose();
});

function fakeRow(
  side: "ours" | "pytorch",
  threads: number | undefined,
  train: number,
  p50: number,
): RowResult {
  const records: RowRecord[] = [
    { kind: "train", batch: 16, stepMs: [1000 * 16 / train], samplesPerSec: train },
    { kind: "train", batch: 32, stepMs: [1000 * 32 / train], samplesPerSec: train },
    { kind: "latency", runs: 10, p50Ms: p50, p99Ms: p50 * 2 },
    { kind: "throughput", batch: 32, batchMs: [100], samplesPerSec: 320 },
  ];
  return {
    side,
    requested: side === "ours" ? "auto" : "cpu",
    threads,
    backbone: "mobilenetv2",
    task: "row",
    records: [{
      kind: "info",
      side,
      backend: side === "ours" ? "wasm" : "cpu",
      detail: "",
      backbone: "mobilenetv2",
      parameters: 1,
      batchNormLayers: 1,
      inputShape: [96, 96, 3],
      featureDim: 96,
      versions: {},
    }, ...records],
    seconds: 1,
    load: [0, 0],
  };
}

Deno.test("goals are judged against PyTorch's best CPU configuration for each figure", () => {
  const run = {
    info: { config: { ...DEFAULT_CONFIG } },
    rows: [fakeRow("ours", undefined, 20, 10), fakeRow("pytorch", 1, 40, 8), fakeRow("pytorch", 2, 30, 5)],
  } as unknown as SpeedRun;
  const [train16, train32, latency, infer, adapt, rss] = goals(run);
  assert.equal(train32.ratio, 0.5);
  assert.equal(train32.met, false); // batch 32 aims at 1x
  assert.equal(train16.peer, 40); // the one-thread row trains faster
  assert.equal(train16.ratio, 0.5);
  assert.equal(train16.met, true);
  assert.equal(latency.peer, 5); // the two-thread row answers sooner
  assert.equal(latency.ratio, 2);
  assert.equal(latency.met, false);
  assert.equal(infer.ratio, 1);
  assert.equal(infer.met, true);
  // Neither side of these fake rows ran an adapt job or sampled memory: no judgement.
  assert.equal(adapt.met, undefined);
  assert.equal(rss.met, undefined);
  assert.equal(train32.narrow, undefined); // no narrow row in this run
});

Deno.test("the row with narrow convolutions is shown beside each goal, never judged against", () => {
  const narrow = { ...fakeRow("pytorch", 2, 10, 1), isa: "SSE41" };
  const run = {
    info: { config: { ...DEFAULT_CONFIG } },
    rows: [fakeRow("ours", undefined, 20, 10), fakeRow("pytorch", 2, 40, 5), narrow],
  } as unknown as SpeedRun;
  const [train16, , latency] = goals(run);
  // Faster on both figures than the narrow row's 10 samples/s and 1 ms: judged against the native row only.
  assert.equal(train16.peer, 40);
  assert.equal(latency.peer, 5);
  assert.deepEqual(train16.narrow, {
    value: 10,
    row: "PyTorch CPU, 2 threads, convolutions held to SSE41",
    ratio: 2,
  });
  assert.equal(latency.narrow?.ratio, 10);
  const table = goalTable(run).join("\n");
  assert.match(
    table,
    /\| training b16: [^|]+\| 20\.0 \| 40\.0 \(CPU, 2 threads\) \| 0\.50x \| \*\*yes\*\* \| 10\.0 \| 2\.00x \|/,
  );
});

Deno.test("rows run in rounds merge into one whose figures are the rounds' medians", () => {
  const round = (
    side: "ours" | "pytorch",
    k: number,
    train: number,
    p50: number,
    adapt: number,
    rss: number,
  ) => {
    const row = fakeRow(side, side === "ours" ? undefined : 2, train, p50);
    row.records.push(
      {
        kind: "adapt",
        seconds: adapt,
        trainingSeconds: adapt / 2,
        classes: 10,
        shots: 10,
        epochs: 10,
        steps: 50,
        valAccuracy: 1,
      } as RowRecord,
    );
    row.records.push({ kind: "memory", rssMiB: rss, peakRssMiB: rss, hwmMiB: rss } as RowRecord);
    return { ...row, round: k };
  };
  const rows = [
    round("ours", 0, 30, 2, 6, 500),
    round("pytorch", 0, 40, 1, 4, 800),
    round("ours", 1, 10, 3, 5, 520),
    round("pytorch", 1, 50, 2, 3, 790),
    round("ours", 2, 20, 1, 7, 510),
    round("pytorch", 2, 60, 3, 5, 780),
  ];
  const merged = mergeRounds(rows);
  assert.equal(merged.length, 2);
  assert.deepEqual(merged[0].rounds?.map((r) => r.round), [0, 1, 2]);
  const ours = rowFigures(merged[0]);
  const value = (f: { value: number } | { missing: string }) => "value" in f ? f.value : NaN;
  assert.deepEqual(
    [value(ours.train16), value(ours.p50), value(ours.adapt), value(ours.rss)],
    [20, 2, 6, 510],
  );
  const run = { info: { config: { ...DEFAULT_CONFIG } }, rows } as unknown as SpeedRun;
  const [train16, , , , adapt] = goals(run);
  assert.equal(train16.ratio, 20 / 50); // medians: ours 20, PyTorch 50
  assert.equal(adapt.ratio, 6 / 4);
  const spread = roundSpread(run).join("\n");
  // Round by round: 30/40, 10/50, 20/60 samples/s.
  assert.match(spread, /\| training b16: [^|]+\| 0\.75x \| 0\.20x \| 0\.33x \| 0\.20x to 0\.75x \|/);
  assert.deepEqual(
    roundSpread({ ...run, rows: rows.slice(0, 2).map((r) => ({ ...r, round: undefined })) }),
    [],
  );
});
