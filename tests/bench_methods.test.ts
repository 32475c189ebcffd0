// The methods benchmark's pipeline at toy scale (a few real images, two epochs): that it runs end to end,
// that its metrics are in range, and that the protocol (grid on the first seed, ID validation only) holds.
// The full run is `deno task bench:methods`, a benchmark, not a test.
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import {
  ABLATIONS,
  BENCH_METHODS,
  checkClaim,
  GRIDS,
  meanStd,
  renderPlot,
  renderReport,
  type RunInfo,
  runMethodsBenchmark,
  type RunRecord,
  scoreAndFeatures,
  type ShiftPlan,
  summarise,
} from "../bench/methods.ts";
import { extractAnalysis } from "../bench/_report_analysis.ts";
import { adapt } from "../src/adapt/adapt.ts";
import { METHODS } from "../src/adapt/methods.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { SHIFTS } from "../src/data/shifts.ts";
import { tinyBackbone } from "../src/model/tiny.ts";
import { testBackend } from "./_setup.ts";

await testBackend();

const TOY_PLAN: ShiftPlan = {
  shift: "mnist-optdigits",
  backbone: "tiny",
  regimes: ["toy"],
  testPerClass: 5,
  validationPerClass: 2,
};
const TOY_REGIMES = { toy: { shots: 4, epochs: 2, batchSize: 8 } };

const inUnit = (v: number) => v >= 0 && v <= 1;

function info(records: RunRecord[]): RunInfo {
  return {
    command: "test",
    machine: "test",
    backend: tf.getBackend(),
    deno: Deno.version.deno,
    commit: "test",
    startedAt: new Date(0).toISOString(),
    wallSeconds: records.reduce((s, r) => s + r.adaptSeconds + r.evalSeconds, 0),
    loadAverage: { start: [0, 0, 0], end: [0, 0, 0] },
    seeds: [...new Set(records.map((r) => r.seed))],
    grid: false,
    plans: [TOY_PLAN],
    regimes: TOY_REGIMES,
  };
}

Deno.test("the benchmark runs every method on a real shift, with metrics in range and no leaked tensors", async () => {
  const before = tf.memory().numTensors;
  const records = await runMethodsBenchmark({
    plans: [TOY_PLAN],
    regimes: TOY_REGIMES,
    seeds: [0],
    methods: BENCH_METHODS,
    grid: false,
  });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(records.map((r) => r.method), BENCH_METHODS);
  for (const r of records) {
    assert.equal(r.diverged, undefined, r.diverged ?? "");
    assert.ok(r.selected);
    for (const acc of [r.idAccuracy, r.oodAccuracy, r.idValidationAccuracy, r.engine.valAccuracy]) {
      assert.ok(inUnit(acc), `${r.method}: accuracy ${acc}`);
    }
    for (const d of [r.oodDistortion, r.idDistortion, r.engine.distortion]) {
      assert.ok(d.cosineMean <= 1 + 1e-5 && d.cosineMean >= -1 - 1e-5, `${r.method}: ${JSON.stringify(d)}`);
      assert.ok(d.l2Mean >= 0 && d.l2Std >= 0);
    }
    assert.equal(r.oodDistortion.samples, 50);
    assert.equal(r.idDistortion.samples, 50);
    assert.equal(r.engine.trainSamples, 30); // 4 per class, less the engine's 20% (one per class)
    assert.ok(r.adaptSeconds > 0 && r.evalSeconds > 0);
  }
  // LP never touches the backbone: its features are the pretrained ones, exactly as far as float goes.
  const lp = records.find((r) => r.method === "lp")!;
  assert.ok(
    lp.oodDistortion.cosineMean > 0.9999 && lp.oodDistortion.l2Mean < 1e-3,
    JSON.stringify(lp.oodDistortion),
  );
  // Plain FT (Glorot head, one rate, train-mode BN) moves the features; on OOD images too.
  const ft = records.find((r) => r.method === "ft")!;
  assert.ok(ft.oodDistortion.l2Mean > lp.oodDistortion.l2Mean);

  const report = renderReport(records, info(records), "kept analysis", "plot.svg");
  for (const m of BENCH_METHODS) assert.match(report, new RegExp(`\\| 4 \\| ${m} \\|`));
  assert.match(report, /kept analysis/);
  assert.match(report, /!\[.*\]\(plot\.svg\)/);
  const svg = renderPlot(summarise(records));
  assert.match(svg, /^<svg[^>]+xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal((svg.match(/<circle/g) ?? []).length, 2 * BENCH_METHODS.length); // points + legend
});

Deno.test("the grid runs on the first seed, the best ID-validation point wins and the other seeds reuse it", async () => {
  const records = await runMethodsBenchmark({
    plans: [TOY_PLAN],
    regimes: TOY_REGIMES,
    seeds: [3, 4],
    methods: ["ft"],
    grid: true,
  });
  const first = records.filter((r) => r.seed === 3);
  assert.equal(first.length, GRIDS.ft.length);
  const chosen = first.filter((r) => r.selected);
  assert.equal(chosen.length, 1);
  assert.equal(chosen[0].idValidationAccuracy, Math.max(...first.map((r) => r.idValidationAccuracy)));
  const second = records.filter((r) => r.seed === 4);
  assert.equal(second.length, 1);
  assert.deepEqual(second[0].hyperparameters, chosen[0].hyperparameters);
  const [cell] = summarise(records);
  assert.deepEqual(cell.seeds, [3, 4]);
  assert.equal(cell.oodAccuracy.n, 2);
});

Deno.test("scoring in one pass agrees with AdaptedModel.predict and AdaptedModel.features", async () => {
  const shift = await SHIFTS["mnist-optdigits"].load({
    poolPerClass: 3,
    validationPerClass: 1,
    testPerClass: 2,
  });
  const backbone = await tinyBackbone();
  const x = imagesToTensor(shift.trainPool.images, backbone.input);
  const model = await adapt(backbone, { ...shift.trainPool, images: x }, { method: "ft", epochs: 1 });
  const ood = imagesToTensor(shift.oodTest.images, model.metadata.input);
  const { predicted, features } = scoreAndFeatures(model, ood);
  const expected = (await model.predict(ood, 1)).map((p) => model.metadata.classNames.indexOf(p.label));
  assert.deepEqual([...predicted], expected);
  const direct = model.features(ood);
  assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(direct, features)))).dataSync()[0] < 1e-5);
  tf.dispose([x, ood, features, direct]);
  model.dispose();
});

Deno.test("the claim check compares DAFT with the others paired by seed", () => {
  const cell = (method: string, ood: number[], cos: number) => ({ method, ood, cos });
  const runs: RunRecord[] = [
    cell("daft", [0.6, 0.7], 0.99),
    cell("lp-ft", [0.5, 0.7], 0.95),
    cell("ft", [0.4, 0.4], 0.5),
    cell("lp", [0.55, 0.55], 1),
  ].flatMap(({ method, ood, cos }) =>
    ood.map((oodAccuracy, seed) =>
      ({
        shift: "mnist-optdigits",
        backbone: "tiny",
        shots: 5,
        method,
        seed,
        hyperparameters: { lrHead: 0, lrBackbone: 0 },
        selected: true,
        idValidationAccuracy: 0.5,
        idAccuracy: 0.5,
        idPredictedClasses: 2,
        oodAccuracy,
        oodDistortion: { cosineMean: cos, cosineStd: 0, l2Mean: 1 - cos, l2Std: 0, samples: 1 },
        idDistortion: { cosineMean: cos, cosineStd: 0, l2Mean: 1 - cos, l2Std: 0, samples: 1 },
        engine: {
          valAccuracy: 0.5,
          bestEpoch: 0,
          distortion: { cosineMean: cos, cosineStd: 0, l2Mean: 0, l2Std: 0, samples: 1 },
          trainSamples: 4,
        },
        adaptSeconds: 1,
        evalSeconds: 1,
      }) as RunRecord
    )
  );
  const [check] = checkClaim(summarise(runs));
  assert.equal(check.bestOod, "daft"); // LP is not in the field: it does not train the backbone
  assert.equal(check.leastDistortion, "daft");
  assert.ok(
    Math.abs(check.daftVsLpFt!.mean - 0.05) < 1e-9 &&
      Math.abs(check.daftVsLpFt!.std - Math.SQRT1_2 * 0.1) < 1e-9,
  );
  assert.ok(Math.abs(check.daftVsFt!.mean - 0.25) < 1e-9);
});

Deno.test("an ablation row runs DAFT with its recipe change and the report pairs it with DAFT by seed", async () => {
  const records = await runMethodsBenchmark({
    plans: [TOY_PLAN],
    regimes: TOY_REGIMES,
    seeds: [0],
    methods: ["lp", "lp-ft", "daft", "daft-v1"],
    grid: false,
  });
  const v1 = records.find((r) => r.method === "daft-v1")!;
  assert.deepEqual(v1.hyperparameters, ABLATIONS["daft-v1"].hyperparameters);
  const [check] = checkClaim(summarise(records));
  const diff = check.ablations["daft-v1"]!;
  const daft = records.find((r) => r.method === "daft")!;
  assert.ok(Math.abs(diff.id.mean - (daft.idAccuracy - v1.idAccuracy)) < 1e-12);
  assert.ok(Math.abs(check.idDaftVsLp!.mean - (daft.idAccuracy - records[0].idAccuracy)) < 1e-12);
  const report = renderReport(records, info(records));
  assert.match(report, /## Ablations/);
  assert.match(report, /\| mnist-optdigits \| 4 \| [+−]\d+\.\d \/ [+−]\d+\.\d \|/);
});

Deno.test("each method's first grid point is the engine's default, so a run without --grid is what users get", () => {
  for (const m of BENCH_METHODS.filter((m) => m !== "lp")) {
    assert.deepEqual(GRIDS[m][0], { lrHead: METHODS[m].lrHead, lrBackbone: METHODS[m].lrBackbone }, m);
  }
});

Deno.test("a rewrite keeps the hand-written analysis and statistics use the sample deviation", () => {
  const report = renderReport([], { ...info([]), plans: [] }, "DAFT wins here because ...");
  assert.equal(extractAnalysis(report), "DAFT wins here because ...");
  assert.equal(extractAnalysis("no markers"), undefined);
  const s = meanStd([1, 2, 3]);
  assert.deepEqual([s.mean, s.std, s.n], [2, 1, 3]);
  assert.equal(meanStd([5]).std, 0);
});
