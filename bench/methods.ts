/**
 * Real-data evidence for DAFT against FT, LP, LP-FT and DAFT's two ablations, in distribution and out of
 * it, at edge scale: for each ID -> OOD shift of `src/data/shifts.ts` and each few-shot regime, every method
 * adapts a fresh pretrained backbone to `shots` ID images per class, with hyperparameters chosen on ID
 * validation images only, and is scored on held-out ID and OOD test images; feature distortion is measured
 * between the pretrained and the adapted backbone on the OOD test images.
 *
 *   deno task bench:methods [--quick] [--shifts mnist-optdigits,...] [--regimes 5,10,50,200]
 *                           [--seeds 3 | --seeds 0,1,2] [--methods daft,ft,daft-v1,...] [--grid]
 *                           [--out docs/BENCHMARKS-methods.md] [--svg docs/methods-ood-vs-distortion.svg]
 *                           [--json results.json]
 *   deno task bench:methods --render results.json [--out ...] [--svg ...]
 *
 * The full default run (no flags) writes `docs/BENCHMARKS-methods.md` and the SVG; a run with any subset
 * flag prints its tables and writes files only where `--out`, `--svg` or `--json` say. `--render` rewrites
 * the report and the picture from a run saved with `--json`, without training.
 *
 * Protocol, per shift and regime: every method runs with its engine defaults, what a user gets (and, on
 * each plan's `ablationRegimes`, DAFT's ablation rows). With `--grid`, the grid of each method (`GRIDS`)
 * is run on the first seed instead; the point with the best ID-validation accuracy wins (ties: the earlier
 * point) and is run on the other seeds. Seeds draw the training images (`takePerClass(pool, shots, seed)`), the
 * engine's split, batch order and head initialisation; test and validation images are fixed per shift.
 */
import { analysisSection, extractAnalysis } from "./_report_analysis.ts";
import * as tf from "@tensorflow/tfjs";
import { commandLine } from "../cli/_args.ts";
import { adapt } from "../src/adapt/adapt.ts";
import type { AdaptedModel } from "../src/adapt/adapted_model.ts";
import { type FeatureDistortion, featureDistortion } from "../src/adapt/feature_distortion.ts";
import { type Method, METHOD_NAMES, type MethodRecipe, METHODS } from "../src/adapt/methods.ts";
import { backendInfo, initBackend } from "../src/backend/init_backend.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import type { LabeledImages } from "../src/data/labeled_images.ts";
import { type ShiftName, SHIFTS, type ShiftSplits } from "../src/data/shifts.ts";
import { takePerClass } from "../src/data/take_per_class.ts";
import { RuntimeError } from "../src/errors.ts";
import type { Backbone } from "../src/model/backbone.ts";
import { loadBackbone } from "../src/model/registry.ts";
import { scatterSvg } from "./_plot_svg.ts";

/** A training regime: images per class, and the training budget that goes with it. */
export interface Regime {
  shots: number;
  epochs: number;
  batchSize: number;
}

/**
 * The regimes by name. Epochs shrink as the set grows so that every run costs at most about a hundred
 * steps (the machine is two shared cores); the large regime uses batch 32.
 */
export const REGIMES: Record<string, Regime> = {
  "5": { shots: 5, epochs: 12, batchSize: 16 },
  "10": { shots: 10, epochs: 10, batchSize: 16 },
  "50": { shots: 50, epochs: 5, batchSize: 16 },
  "200": { shots: 200, epochs: 2, batchSize: 32 },
};

/** One shift on one backbone, with its regimes and test-set sizes. */
export interface ShiftPlan {
  shift: ShiftName;
  backbone: "tiny" | "mobilenetv2-imagenet";
  /** MobileNetV2's input side (a multiple of 16). */
  inputSize?: number;
  regimes: string[];
  /** ID and OOD test images per class, each. */
  testPerClass: number;
  /** ID validation images per class, for choosing hyperparameters. */
  validationPerClass: number;
  /** Regimes where DAFT's ablation rows run too (they cost as much as DAFT itself). */
  ablationRegimes?: string[];
}

/**
 * Every shift the benchmark knows, on its backbone. Fashion-MNIST goes on ImageNet MobileNetV2 (on `tiny`,
 * pretrained on Fashion-MNIST, it would be the pretraining domain). Digits go on MobileNetV2 too, except
 * `mnist-corrupted`, which runs on `tiny` (clothing -> digits is a new domain for it) and carries the
 * larger regimes, which only `tiny` is cheap enough for (in pilot runs on `tiny`, optdigits and MNIST-M stayed
 * at chance, 10%, for every method: its Fashion-MNIST features do not carry that far). MobileNetV2 runs at
 * its default input size, 96x96, the size users get.
 */
export const PLANS: ShiftPlan[] = [
  {
    shift: "fashion-corrupted",
    backbone: "mobilenetv2-imagenet",
    regimes: ["5", "10"],
    ablationRegimes: ["5"],
    testPerClass: 50,
    validationPerClass: 10,
  },
  {
    shift: "mnist-optdigits",
    backbone: "mobilenetv2-imagenet",
    regimes: ["10"],
    ablationRegimes: ["10"],
    testPerClass: 50,
    validationPerClass: 10,
  },
  {
    shift: "mnist-mnistm",
    backbone: "mobilenetv2-imagenet",
    regimes: ["10"],
    // Same ID side (pool, seeds, models) as mnist-optdigits, whose rows carry the ablations.
    ablationRegimes: [],
    testPerClass: 50,
    validationPerClass: 10,
  },
  {
    shift: "mnist-corrupted",
    backbone: "tiny",
    regimes: ["10", "50", "200"],
    ablationRegimes: ["10"],
    testPerClass: 100,
    validationPerClass: 20,
  },
];

/** The shifts a run without `--shifts` covers: all four, sized to finish well under an hour here. */
export const DEFAULT_SHIFTS: ShiftName[] = [
  "fashion-corrupted",
  "mnist-optdigits",
  "mnist-mnistm",
  "mnist-corrupted",
];

/** Learning rates of one run (SGD with momentum 0.9, cosine per epoch; see `adapt`). */
export interface Hyperparameters {
  lrHead: number;
  lrBackbone: number;
}

/**
 * DAFT with one of this engine's few-shot changes taken back, each an ablation row of the benchmark (and
 * `daft-v1`, all of them at once: the recipe before issue #10). The rows show what each change buys.
 */
export const ABLATIONS = {
  "daft-v1": {
    description:
      "DAFT as first shipped: raw-feature head at 32 / 1e-2, best-validation epoch, no step floor, uneven batches",
    recipe: { headInput: "raw", checkpoint: "best", minSteps: 0, evenBatches: false },
    hyperparameters: { lrHead: 32, lrBackbone: 1e-2 },
  },
  "daft-raw-head": {
    description: "DAFT, but the zero head trains on the raw (uncentred) features, at v1's head rate",
    recipe: { headInput: "raw" },
    hyperparameters: { lrHead: 32, lrBackbone: 1e-2 },
  },
  "daft-best-val": {
    description: "DAFT, but the epoch with the best validation accuracy is kept, not the last",
    recipe: { checkpoint: "best" },
  },
  "daft-no-step-floor": {
    description: "DAFT, but with no minimum number of SGD steps (the epochs as given)",
    recipe: { minSteps: 0 },
  },
  "daft-source-bn": {
    description:
      "not a change of ours but a probe: DAFT's integrated zero-head run with BN left at the source statistics and " +
      "frozen in eval mode, as LP-FT keeps it (no conversion), with the backbone at 1e-4 (1e-2 and 1e-3 diverge " +
      "without batch statistics)",
    recipe: { convertBatchNorm: false, batchNorm: "eval" },
    hyperparameters: { lrHead: 4, lrBackbone: 1e-4 },
  },
} satisfies Record<
  string,
  { description: string; recipe: Partial<MethodRecipe>; hyperparameters?: Hyperparameters }
>;

/** A DAFT ablation's name. */
export type Ablation = keyof typeof ABLATIONS;

/** What the benchmark runs: a method, or an ablation of DAFT. */
export type BenchMethod = Method | Ablation;

/** The engine method a benchmark row runs. */
const methodOf = (m: BenchMethod): Method => m in ABLATIONS ? "daft" : m as Method;

/**
 * The ablation rows a full run adds: one per few-shot rule, and v1. `daft-source-bn` is a probe run on
 * request (`--methods daft-source-bn`), for the optdigits cell docs/BENCHMARKS-methods.md discusses.
 */
export const BENCH_ABLATIONS = (Object.keys(ABLATIONS) as Ablation[]).filter((a) => a !== "daft-source-bn");

/**
 * Each method's grid, two points each (LP has none: its L2 strength is chosen on the engine's validation
 * split). Single-rate methods (FT, conversion-only, LP-FT) use one rate for head and backbone, the engine's
 * default first. The integrated methods (DAFT, DAFT without conversion) give the head rate in the
 * engine's units (1 / mean |f|^2): the pilot runs' ID-validation winners on `tiny` and on MobileNetV2 (an early
 * engine default of 0.5 scored far below LP: the zero head barely moved in a hundred steps). The engine's
 * default is now this grid's usual winner, 32 / 1e-2.
 */
export const GRIDS: Record<BenchMethod, Hyperparameters[]> = {
  "daft": [{ lrHead: 4, lrBackbone: 1e-2 }, { lrHead: 16, lrBackbone: 1e-3 }],
  ...Object.fromEntries(
    Object.entries(ABLATIONS).map(([name, a]) => [
      name,
      ["hyperparameters" in a ? a.hyperparameters : { lrHead: 4, lrBackbone: 1e-2 }],
    ]),
  ) as Record<Ablation, Hyperparameters[]>,
  "daft-no-conversion": [{ lrHead: 4, lrBackbone: 1e-2 }, { lrHead: 16, lrBackbone: 1e-3 }],
  "conversion-only": [{ lrHead: 1e-2, lrBackbone: 1e-2 }, { lrHead: 3e-2, lrBackbone: 3e-2 }],
  "ft": [{ lrHead: 1e-2, lrBackbone: 1e-2 }, { lrHead: 3e-2, lrBackbone: 3e-2 }],
  "lp": [{ lrHead: 0, lrBackbone: 0 }],
  "lp-ft": [{ lrHead: 1e-3, lrBackbone: 1e-3 }, { lrHead: 1e-2, lrBackbone: 1e-2 }],
};

/** The order methods are run and listed in. */
export const BENCH_METHODS: Method[] = ["lp", "ft", "lp-ft", "daft", "daft-no-conversion", "conversion-only"];

/** Everything one adaptation measured. */
export interface RunRecord {
  shift: ShiftName;
  backbone: string;
  shots: number;
  method: BenchMethod;
  seed: number;
  hyperparameters: Hyperparameters;
  /** Whether this run used the hyperparameters chosen for its method and regime (false: a losing grid point). */
  selected: boolean;
  /** Accuracy on the ID validation images (what the grid is chosen on). */
  idValidationAccuracy: number;
  idAccuracy: number;
  /** How many distinct classes the model predicted on the ID test images (1: collapsed). */
  idPredictedClasses?: number;
  oodAccuracy: number;
  /** OOD accuracy per sub-domain, when the OOD set mixes several. */
  oodByGroup?: Record<string, number>;
  /** Pretrained vs adapted features on the OOD and the ID test images. */
  oodDistortion: FeatureDistortion;
  idDistortion: FeatureDistortion;
  /** The engine's own numbers, on its validation split of the training images. */
  engine: { valAccuracy: number; bestEpoch: number; distortion: FeatureDistortion; trainSamples: number };
  /** Wall seconds of `adapt`, and of scoring the three evaluation sets. */
  adaptSeconds: number;
  evalSeconds: number;
  /** Set when training diverged (the engine's `diverged` error); the scores are then NaN. */
  diverged?: string;
}

const NO_DISTORTION: FeatureDistortion = {
  cosineMean: NaN,
  cosineStd: NaN,
  l2Mean: NaN,
  l2Std: NaN,
  samples: 0,
};
const DIVERGED = {
  idValidationAccuracy: NaN,
  idAccuracy: NaN,
  oodAccuracy: NaN,
  oodDistortion: NO_DISTORTION,
  idDistortion: NO_DISTORTION,
  engine: { valAccuracy: NaN, bestEpoch: -1, distortion: NO_DISTORTION, trainSamples: 0 },
  evalSeconds: 0,
};

/** What {@linkcode runMethodsBenchmark} takes. */
export interface BenchOptions {
  plans: ShiftPlan[];
  /** Regime definitions by name (default {@linkcode REGIMES}). */
  regimes?: Record<string, Regime>;
  seeds: number[];
  methods: BenchMethod[];
  /** Search each method's grid (default true); false runs the first point only. */
  grid?: boolean;
  /** Called with every finished run, in order. */
  onRecord?: (record: RunRecord) => void | Promise<void>;
  log?: (line: string) => void;
}

/** The scoring sets of one shift, as tensors for its backbone. */
interface EvalSets {
  idValidation: { x: tf.Tensor4D; labels: number[] };
  idTest: { x: tf.Tensor4D; labels: number[]; pretrained: tf.Tensor2D };
  oodTest: { x: tf.Tensor4D; labels: number[]; pretrained: tf.Tensor2D; groups?: string[] };
}

function backboneFor(plan: ShiftPlan): Promise<Backbone> {
  return loadBackbone({ name: plan.backbone, inputSize: plan.inputSize });
}

async function evalSets(plan: ShiftPlan, splits: ShiftSplits): Promise<EvalSets> {
  const backbone = await backboneFor(plan);
  const tensor = (ds: LabeledImages) => imagesToTensor(ds.images, backbone.input);
  // Pretrained features in eval mode, once per shift: every adapted model is compared with these.
  const features = (x: tf.Tensor4D) => backbone.model.predict(x, { batchSize: 64 }) as tf.Tensor2D;
  const idX = tensor(splits.idTest), oodX = tensor(splits.oodTest);
  const sets = {
    idValidation: { x: tensor(splits.idValidation), labels: splits.idValidation.labels },
    idTest: { x: idX, labels: splits.idTest.labels, pretrained: features(idX) },
    oodTest: { x: oodX, labels: splits.oodTest.labels, pretrained: features(oodX), groups: splits.oodGroups },
  };
  backbone.model.dispose();
  return sets;
}

function disposeEvalSets(sets: EvalSets) {
  tf.dispose([
    sets.idValidation.x,
    sets.idTest.x,
    sets.idTest.pretrained,
    sets.oodTest.x,
    sets.oodTest.pretrained,
  ]);
}

/**
 * Scores an adapted model on images `[N, H, W, C]`: the classifier's predictions (argmax of its
 * probabilities) and, in the same pass, its backbone features `[N, D]` (the caller disposes them).
 */
export function scoreAndFeatures(
  model: AdaptedModel,
  x: tf.Tensor4D,
): { predicted: Int32Array; features: tf.Tensor2D } {
  const { classifier, metadata } = model;
  // A second view of the classifier's own layers (no copied weights), so one forward pass gives both.
  const view = tf.model({
    inputs: classifier.inputs,
    outputs: [classifier.getLayer(metadata.featureLayer).output as tf.SymbolicTensor, classifier.outputs[0]],
  });
  const [features, probabilities] = view.predict(x, { batchSize: 64 }) as tf.Tensor[];
  const argMax = tf.argMax(probabilities, 1);
  const predicted = argMax.dataSync() as Int32Array;
  tf.dispose([argMax, probabilities]);
  return { predicted, features: features as tf.Tensor2D };
}

const accuracy = (
  predicted: ArrayLike<number>,
  labels: number[],
  keep: (i: number) => boolean = () => true,
) => {
  let hits = 0, n = 0;
  labels.forEach((y, i) => {
    if (!keep(i)) return;
    n++;
    if (predicted[i] === y) hits++;
  });
  return n ? hits / n : NaN;
};

async function evaluate(model: AdaptedModel, sets: EvalSets) {
  const started = performance.now();
  const val = scoreAndFeatures(model, sets.idValidation.x);
  val.features.dispose();
  const id = scoreAndFeatures(model, sets.idTest.x);
  const ood = scoreAndFeatures(model, sets.oodTest.x);
  const idDistortion = await featureDistortion(sets.idTest.pretrained, id.features);
  const oodDistortion = await featureDistortion(sets.oodTest.pretrained, ood.features);
  tf.dispose([id.features, ood.features]);
  const groups = sets.oodTest.groups;
  const oodByGroup = groups
    ? Object.fromEntries(
      [...new Set(groups)].map((g) => [
        g,
        accuracy(ood.predicted, sets.oodTest.labels, (i) => groups[i] === g),
      ]),
    )
    : undefined;
  return {
    idValidationAccuracy: accuracy(val.predicted, sets.idValidation.labels),
    idAccuracy: accuracy(id.predicted, sets.idTest.labels),
    idPredictedClasses: new Set(id.predicted).size,
    oodAccuracy: accuracy(ood.predicted, sets.oodTest.labels),
    oodByGroup,
    idDistortion,
    oodDistortion,
    evalSeconds: (performance.now() - started) / 1000,
  };
}

async function runOne(
  plan: ShiftPlan,
  splits: ShiftSplits,
  sets: EvalSets,
  regime: Regime,
  method: BenchMethod,
  seed: number,
  hyperparameters: Hyperparameters,
): Promise<Omit<RunRecord, "selected">> {
  const train = takePerClass(splits.trainPool, regime.shots, seed);
  const backbone = await backboneFor(plan);
  const images = imagesToTensor(train.images, backbone.input);
  const rates = method === "lp" ? {} : hyperparameters;
  const recipe = method in ABLATIONS
    ? ABLATIONS[method as Ablation].recipe as Partial<MethodRecipe>
    : undefined;
  const run = {
    shift: plan.shift,
    backbone: plan.backbone + (plan.inputSize ? `@${plan.inputSize}` : ""),
    shots: regime.shots,
    method,
    seed,
    hyperparameters,
  };
  const started = performance.now();
  let model: AdaptedModel;
  try {
    model = await adapt(backbone, { images, labels: train.labels, classNames: train.classNames }, {
      method: methodOf(method),
      recipe,
      epochs: regime.epochs,
      batchSize: regime.batchSize,
      seed,
      ...rates,
    });
  } catch (err) {
    // A diverged run is a result (the rate was too high), not a crash: it loses any grid comparison.
    if (!(err instanceof RuntimeError && err.code === "diverged")) throw err;
    try {
      backbone.model.dispose();
    } catch { /* adapt disposed it with the classifier it had built */ }
    return { ...run, ...DIVERGED, adaptSeconds: (performance.now() - started) / 1000, diverged: err.message };
  } finally {
    images.dispose();
  }
  try {
    const m = model.metadata.metrics;
    return {
      ...run,
      ...await evaluate(model, sets),
      engine: {
        valAccuracy: m.valAccuracy,
        bestEpoch: m.bestEpoch,
        distortion: m.distortion,
        trainSamples: m.trainSamples,
      },
      adaptSeconds: m.seconds,
    };
  } finally {
    model.dispose();
  }
}

/**
 * Runs the plans: per shift, regime and method, the grid on the first seed, then the winner on the other
 * seeds. Returns every run, losing grid points included (`selected: false`). Tensors are disposed.
 */
export async function runMethodsBenchmark(options: BenchOptions): Promise<RunRecord[]> {
  const regimes = options.regimes ?? REGIMES;
  const log = options.log ?? (() => {});
  const records: RunRecord[] = [];
  const emit = async (record: RunRecord) => {
    records.push(record);
    log(
      `${record.shift} ${record.shots}-shot ${record.method} seed ${record.seed} ` +
        `lr ${record.hyperparameters.lrHead}/${record.hyperparameters.lrBackbone}${
          record.selected ? "" : " (grid)"
        }: ` +
        `idVal ${pct(record.idValidationAccuracy)} id ${pct(record.idAccuracy)} ood ${
          pct(record.oodAccuracy)
        } ` +
        `cos ${record.oodDistortion.cosineMean.toFixed(3)} ${record.adaptSeconds.toFixed(1)}s+${
          record.evalSeconds.toFixed(1)
        }s`,
    );
    await options.onRecord?.(record);
  };
  for (const plan of options.plans) {
    const largest = Math.max(...plan.regimes.map((r) => regimes[r].shots));
    const splits = await SHIFTS[plan.shift].load({
      poolPerClass: largest,
      validationPerClass: plan.validationPerClass,
      testPerClass: plan.testPerClass,
    });
    const sets = await evalSets(plan, splits);
    try {
      for (const name of plan.regimes) {
        const regime = regimes[name];
        for (const method of options.methods) {
          if (method in ABLATIONS && plan.ablationRegimes && !plan.ablationRegimes.includes(name)) continue;
          const grid = options.grid === false ? GRIDS[method].slice(0, 1) : GRIDS[method];
          const [first, ...rest] = options.seeds;
          const tried: Omit<RunRecord, "selected">[] = [];
          for (const hp of grid) tried.push(await runOne(plan, splits, sets, regime, method, first, hp));
          // NaN (diverged) never wins: `>` is false both ways.
          const best = tried.reduce((a, b) =>
            !(a.idValidationAccuracy >= 0) || b.idValidationAccuracy > a.idValidationAccuracy ? b : a
          );
          for (const run of tried) await emit({ ...run, selected: run === best });
          for (const seed of rest) {
            await emit({
              ...await runOne(plan, splits, sets, regime, method, seed, best.hyperparameters),
              selected: true,
            });
          }
        }
      }
    } finally {
      disposeEvalSets(sets);
    }
  }
  return records;
}

/** Mean and sample standard deviation (0 for one value). */
export function meanStd(values: number[]): { mean: number; std: number; n: number } {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(n, 1);
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

type Stat = ReturnType<typeof meanStd>;

/** One table cell group: a method in one regime of one shift, over its selected runs. */
export interface CellSummary {
  shift: ShiftName;
  backbone: string;
  shots: number;
  method: BenchMethod;
  hyperparameters: Hyperparameters;
  seeds: number[];
  /** Runs that diverged; the statistics are over the others. */
  diverged: number;
  idAccuracy: Stat;
  oodAccuracy: Stat;
  oodCosine: Stat;
  oodL2: Stat;
  idCosine: Stat;
  valCosine: Stat;
  valL2: Stat;
  engineValAccuracy: Stat;
  idValidationAccuracy: Stat;
  seconds: Stat;
  oodByGroup?: Record<string, Stat>;
  /** Per seed, for paired comparisons. */
  oodBySeed: Map<number, number>;
  idBySeed: Map<number, number>;
  /** Seeds whose model predicted a single class for every ID test image. */
  collapsedSeeds: number[];
}

/** Groups the selected runs by shift, regime and method, in the order they were run. */
export function summarise(records: RunRecord[]): CellSummary[] {
  const cells = new Map<string, RunRecord[]>();
  for (const r of records.filter((r) => r.selected)) {
    const key = `${r.shift}|${r.shots}|${r.method}`;
    cells.set(key, [...(cells.get(key) ?? []), r]);
  }
  return [...cells.values()].map((all) => {
    const finished = all.filter((r) => !r.diverged);
    const runs = finished.length ? finished : all;
    const stat = (f: (r: RunRecord) => number) => meanStd(runs.map(f));
    const groups = runs[0].oodByGroup ? Object.keys(runs[0].oodByGroup) : undefined;
    return {
      shift: runs[0].shift,
      backbone: runs[0].backbone,
      shots: runs[0].shots,
      method: runs[0].method,
      hyperparameters: runs[0].hyperparameters,
      seeds: runs.map((r) => r.seed),
      diverged: all.length - finished.length,
      idAccuracy: stat((r) => r.idAccuracy),
      oodAccuracy: stat((r) => r.oodAccuracy),
      oodCosine: stat((r) => r.oodDistortion.cosineMean),
      oodL2: stat((r) => r.oodDistortion.l2Mean),
      idCosine: stat((r) => r.idDistortion.cosineMean),
      valCosine: stat((r) => r.engine.distortion.cosineMean),
      valL2: stat((r) => r.engine.distortion.l2Mean),
      engineValAccuracy: stat((r) => r.engine.valAccuracy),
      idValidationAccuracy: stat((r) => r.idValidationAccuracy),
      seconds: stat((r) => r.adaptSeconds + r.evalSeconds),
      oodByGroup: groups && Object.fromEntries(groups.map((g) => [g, stat((r) => r.oodByGroup![g])])),
      oodBySeed: new Map(runs.map((r) => [r.seed, r.oodAccuracy])),
      idBySeed: new Map(runs.map((r) => [r.seed, r.idAccuracy])),
      collapsedSeeds: runs.filter((r) => r.idPredictedClasses === 1).map((r) => r.seed),
    };
  });
}

const pct = (v: number) => (100 * v).toFixed(1);
const pm = (s: Stat, f: (v: number) => string) => s.n > 1 ? `${f(s.mean)} ± ${f(s.std)}` : f(s.mean);
const fixed = (d: number) => (v: number) => v.toFixed(d);

/** Methods that train the backbone: the field the paper's claim is about. */
const TRAINS_BACKBONE = (m: BenchMethod) => METHODS[methodOf(m)].trainBackbone;

/** OOD difference of `a` over `b`, paired by seed (same training images): mean and std of the differences. */
function pairedDifference(
  a: CellSummary,
  b: CellSummary,
  by: "oodBySeed" | "idBySeed" = "oodBySeed",
): Stat | undefined {
  const diffs = [...a[by]].filter(([s]) => b[by].has(s)).map(([s, v]) => v - b[by].get(s)!);
  return diffs.length ? meanStd(diffs) : undefined;
}

/** A verdict per shift and regime on the paper's claim, from the summaries. */
export interface ClaimCheck {
  shift: ShiftName;
  shots: number;
  bestOod: BenchMethod;
  leastDistortion: BenchMethod;
  /** DAFT's place by mean OOD accuracy among the methods that train the backbone (1 = best), and of how many. */
  daftRank: number;
  trained: number;
  daftVsLpFt?: Stat;
  daftVsFt?: Stat;
  daftVsLp?: Stat;
  daftVsNoConversion?: Stat;
  daftVsConversionOnly?: Stat;
  /** ID accuracy of DAFT minus LP's and LP-FT's, paired by seed. */
  idDaftVsLp?: Stat;
  idDaftVsLpFt?: Stat;
  /** DAFT minus each ablation row, ID and OOD, paired by seed. */
  ablations: Partial<Record<Ablation, { id: Stat; ood: Stat }>>;
  /** Seeds on which DAFT predicted one class for every ID test image. */
  collapsedSeeds: number[];
}

/** For each shift and regime with a DAFT cell: which backbone-training method is best OOD, least distorted. */
export function checkClaim(cells: CellSummary[]): ClaimCheck[] {
  const groups = new Map<string, CellSummary[]>();
  for (const c of cells) {
    groups.set(`${c.shift}|${c.shots}`, [...(groups.get(`${c.shift}|${c.shots}`) ?? []), c]);
  }
  const checks: ClaimCheck[] = [];
  for (const group of groups.values()) {
    const daft = group.find((c) => c.method === "daft");
    const trained = group.filter((c) => !(c.method in ABLATIONS) && TRAINS_BACKBONE(c.method));
    if (!daft || trained.length < 2) continue;
    const by = (m: BenchMethod) => group.find((c) => c.method === m);
    const other = (m: BenchMethod) => by(m) && pairedDifference(daft, by(m)!);
    const otherId = (m: BenchMethod) => by(m) && pairedDifference(daft, by(m)!, "idBySeed");
    checks.push({
      shift: daft.shift,
      shots: daft.shots,
      bestOod: trained.reduce((a, b) => b.oodAccuracy.mean > a.oodAccuracy.mean ? b : a).method,
      leastDistortion: trained.reduce((a, b) => b.oodCosine.mean > a.oodCosine.mean ? b : a).method,
      daftVsLpFt: other("lp-ft"),
      daftVsFt: other("ft"),
      daftRank: 1 + trained.filter((c) => c.oodAccuracy.mean > daft.oodAccuracy.mean).length,
      trained: trained.length,
      daftVsLp: other("lp"),
      daftVsNoConversion: other("daft-no-conversion"),
      daftVsConversionOnly: other("conversion-only"),
      idDaftVsLp: otherId("lp"),
      idDaftVsLpFt: otherId("lp-ft"),
      ablations: Object.fromEntries(
        (Object.keys(ABLATIONS) as Ablation[]).filter((a) => by(a)).map((
          a,
        ) => [a, { id: otherId(a)!, ood: other(a)! }]),
      ),
      collapsedSeeds: daft.collapsedSeeds,
    });
  }
  return checks;
}

const METHOD_COLOURS: Record<Method, string> = {
  "lp": "#7f7f7f",
  "ft": "#d62728",
  "lp-ft": "#ff7f0e",
  "daft": "#1f77b4",
  "daft-no-conversion": "#17becf",
  "conversion-only": "#9467bd",
};

/** The picture: OOD accuracy against OOD feature distortion (1 - cosine), one panel per shift. */
export function renderPlot(cells: CellSummary[]): string {
  const methods = BENCH_METHODS.filter((m) => cells.some((c) => c.method === m));
  return scatterSvg({
    title: "OOD accuracy against feature distortion (mean ± std over seeds; labels: shots per class)",
    xLabel: "feature distortion on OOD test images, 1 − cosine",
    yLabel: "OOD test accuracy",
    points: cells.filter((c) => (BENCH_METHODS as string[]).includes(c.method)).map((c) => ({
      panel: c.shift,
      series: c.method,
      x: 1 - c.oodCosine.mean,
      xErr: c.oodCosine.std,
      y: c.oodAccuracy.mean,
      yErr: c.oodAccuracy.std,
      label: String(c.shots),
    })),
    series: methods.map((m) => ({ name: m, colour: METHOD_COLOURS[m] })),
    xFloor: 0,
    panelTitles: Object.fromEntries(
      cells.map((
        c,
      ) => [c.shift, `${c.shift} on ${c.backbone}\n${SHIFTS[c.shift].id} → ${SHIFTS[c.shift].ood}`]),
    ),
  });
}

/** Facts about the run for the report's header. */
export interface RunInfo {
  command: string;
  machine: string;
  backend: string;
  deno: string;
  commit: string;
  startedAt: string;
  wallSeconds: number;
  loadAverage: { start: number[]; end: number[] };
  seeds: number[];
  grid: boolean;
  plans: ShiftPlan[];
  regimes: Record<string, Regime>;
}

const fmtRate = (v: number) => v === 0 ? "–" : v.toExponential(0).replace("e-", "e-");
const hpText = (m: BenchMethod, hp: Hyperparameters) =>
  m === "lp"
    ? "L2 on val"
    : hp.lrHead === hp.lrBackbone
    ? fmtRate(hp.lrHead)
    : `${hp.lrHead} / ${fmtRate(hp.lrBackbone)}`;
const signed = (s: Stat | undefined) =>
  s ? `${s.mean >= 0 ? "+" : "−"}${pct(Math.abs(s.mean))}${s.n > 1 ? ` ± ${pct(s.std)}` : ""}` : "n/a";

/** The markdown report: header, protocol, per-shift tables, the claim check, the analysis, raw grid. */
export function renderReport(
  records: RunRecord[],
  info: RunInfo,
  analysis?: string,
  svgPath?: string,
): string {
  const cells = summarise(records);
  const lines: string[] = [];
  const push = (...l: string[]) => lines.push(...l);
  const minutes = (info.wallSeconds / 60).toFixed(1);
  push(
    "# Benchmark: DAFT against FT, LP and LP-FT, in distribution and out of it",
    "",
    "Generated by `bench/methods.ts`; do not edit by hand except between the analysis markers.",
    "",
    `- Command: \`${info.command}\``,
    `- Machine: ${info.machine}; tfjs backend \`${info.backend}\`; Deno ${info.deno}; commit \`${info.commit}\``,
    `- Started ${info.startedAt}; **wall time ${minutes} min** (${info.wallSeconds.toFixed(0)} s); ` +
      (Number.isFinite(info.loadAverage.start[0])
        ? `load average ${info.loadAverage.start.map((v) => v.toFixed(1)).join("/")} at the start, ` +
          `${
            info.loadAverage.end.map((v) => v.toFixed(1)).join("/")
          } at the end (other jobs shared the cores)`
        : "load average not recorded"),
    `- Seeds ${info.seeds.join(", ")}; hyperparameter grid ${
      info.grid ? "searched on the first seed" : "off (defaults)"
    }`,
    "",
    "## Protocol",
    "",
    "- Shifts (`src/data/shifts.ts`), all real data from installed packages, nothing fetched at run time:",
    ...info.plans.map((p) => {
      const s = SHIFTS[p.shift];
      return `  - \`${p.shift}\` on \`${p.backbone}${
        p.inputSize ? ` @ ${p.inputSize}x${p.inputSize}` : ""
      }\`: ${s.id} → ${s.ood}; ${s.description}. ` +
        `Regimes: ${p.regimes.map((r) => `${info.regimes[r].shots}`).join(", ")} images per class; ` +
        `${p.testPerClass * 10} ID and ${p.testPerClass * 10} OOD test images, ${
          p.validationPerClass * 10
        } ID validation images.`;
    }),
    "- Regimes (images per class: epochs, batch): " +
      Object.entries(info.regimes).map(([n, r]) => `${n}: ${r.epochs} epochs, batch ${r.batchSize}`).join(
        "; ",
      ) +
      ". The engine holds out 20% of each training set for its own best-epoch choice and reports its numbers on it.",
    "- Every run adapts a fresh pretrained backbone with `adapt()`; seeds draw the training images " +
      "(`takePerClass`), the engine's split, batch order and head initialisation. Test and validation images are fixed per shift.",
    (info.grid
      ? "- Hyperparameters: each method's grid runs on the first seed of every shift and regime; the best **ID validation** " +
        "accuracy wins (ties: the earlier point) and runs on the other seeds. OOD test data never chooses anything. " +
        "Grids (`GRIDS`; lr head / lr backbone, one number for single-rate methods): " +
        BENCH_METHODS.filter((m) => m !== "lp").map((m) =>
          `${m} {${GRIDS[m].map((hp) => hpText(m, hp)).join(", ")}}`
        ).join("; ") + "."
      : "- Hyperparameters: every method runs with the engine's defaults, what a user who names only the method gets " +
        "(`--grid` searches `GRIDS` on ID validation instead). OOD test data chooses nothing.") +
      " DAFT's head rate is in the engine's units, 1 / mean |f|² of the standardised features.",
    "- Accuracy: argmax of the adapted classifier's probabilities. Distortion: per-image cosine similarity and L2 " +
      "distance between the pretrained backbone's features and the adapted one's (both in eval mode) on the OOD test " +
      "images (`OOD cos`, `OOD L2`), and the engine's own `metrics.distortion` on its validation split (`val cos`, `val L2`).",
    "- Numbers are mean ± sample standard deviation over seeds; accuracies in %. `s/run` is adapt + scoring wall time.",
    "",
  );
  if (svgPath) push(`![OOD accuracy against feature distortion](${svgPath})`, "");
  push(
    "## Does DAFT have the best OOD accuracy and the least distortion among methods that train the backbone?",
    "",
  );
  push(
    "Differences are paired by seed (same training images): mean ± std of the per-seed differences, in points of accuracy.",
    "",
    "| shift | shots | ID: DAFT − LP | ID: DAFT − LP-FT | collapsed seeds | best OOD (backbone trained) | DAFT's OOD rank | " +
      "least OOD distortion | DAFT − LP-FT | DAFT − FT | DAFT − no conversion | DAFT − conversion only | DAFT − LP |",
    "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
  );
  const checks = checkClaim(cells);
  for (const c of checks) {
    const mark = (m: BenchMethod) => m === "daft" ? `**${m}**` : m;
    push(
      `| ${c.shift} | ${c.shots} | ${signed(c.idDaftVsLp)} | ${signed(c.idDaftVsLpFt)} | ${
        c.collapsedSeeds.length ? c.collapsedSeeds.join(", ") : "none"
      } | ${mark(c.bestOod)} | ${c.daftRank} of ${c.trained} | ${mark(c.leastDistortion)} | ${
        signed(c.daftVsLpFt)
      } | ${signed(c.daftVsFt)} | ${signed(c.daftVsNoConversion)} | ${signed(c.daftVsConversionOnly)} | ${
        signed(c.daftVsLp)
      } |`,
    );
  }
  const withAblations = checks.filter((c) => Object.keys(c.ablations).length);
  if (withAblations.length) {
    const names = (Object.keys(ABLATIONS) as Ablation[]).filter((a) =>
      withAblations.some((c) => c.ablations[a])
    );
    push(
      "",
      "## Ablations: what each of the few-shot changes to DAFT buys",
      "",
      ...names.map((a) => `- \`${a}\`: ${ABLATIONS[a].description}.`),
      "",
      "DAFT minus each ablation row, paired by seed, in points of accuracy (ID / OOD); positive means the change helps.",
      "",
      `| shift | shots | ${names.join(" | ")} |`,
      `| --- | ---: | ${names.map(() => "---:").join(" | ")} |`,
      ...withAblations.map((c) =>
        `| ${c.shift} | ${c.shots} | ${
          names.map((a) =>
            c.ablations[a] ? `${signed(c.ablations[a]!.id)} / ${signed(c.ablations[a]!.ood)}` : "n/a"
          )
            .join(" | ")
        } |`
      ),
    );
  }
  push("", ...analysisSection(analysis));
  for (const plan of info.plans) {
    const shiftCells = cells.filter((c) => c.shift === plan.shift);
    if (!shiftCells.length) continue;
    const s = SHIFTS[plan.shift];
    push(`## ${plan.shift}: ${s.id} → ${s.ood}, on ${shiftCells[0].backbone}`, "");
    push(
      "| shots | method | lr head / backbone | ID acc | OOD acc | OOD cos | OOD L2 | ID cos | val cos | val L2 | engine val acc | s/run |",
      "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const shots of [...new Set(shiftCells.map((c) => c.shots))]) {
      const row = shiftCells.filter((c) => c.shots === shots);
      const bestOod = Math.max(...row.map((c) => c.oodAccuracy.mean));
      const bestId = Math.max(...row.map((c) => c.idAccuracy.mean));
      for (const c of row) {
        const bold = (v: number, best: number, text: string) => v === best ? `**${text}**` : text;
        push(
          `| ${shots} | ${c.method}${c.diverged ? ` (${c.diverged} diverged)` : ""} | ${
            hpText(c.method, c.hyperparameters)
          } | ${bold(c.idAccuracy.mean, bestId, pm(c.idAccuracy, pct))} | ${
            bold(c.oodAccuracy.mean, bestOod, pm(c.oodAccuracy, pct))
          } | ${pm(c.oodCosine, fixed(3))} | ${pm(c.oodL2, fixed(2))} | ${pm(c.idCosine, fixed(3))} | ${
            pm(c.valCosine, fixed(3))
          } | ${pm(c.valL2, fixed(2))} | ${pm(c.engineValAccuracy, pct)} | ${c.seconds.mean.toFixed(1)} |`,
        );
      }
    }
    push("");
    const grouped = shiftCells.filter((c) => c.oodByGroup);
    if (grouped.length) {
      const groups = Object.keys(grouped[0].oodByGroup!);
      push(
        "OOD accuracy by corruption (mean over seeds, %):",
        "",
        `| shots | method | ${groups.join(" | ")} |`,
        `| ---: | --- | ${groups.map(() => "---:").join(" | ")} |`,
        ...grouped.map((c) =>
          `| ${c.shots} | ${c.method} | ${groups.map((g) => pct(c.oodByGroup![g].mean)).join(" | ")} |`
        ),
        "",
      );
    }
  }
  push(
    "## Hyperparameter selection (first seed)",
    "",
    "ID validation accuracy of every grid point; the chosen one is marked. OOD accuracy is not shown here on purpose: it played no part.",
    "",
    "| shift | shots | method | grid point: ID val acc |",
    "| --- | ---: | --- | --- |",
  );
  const firstSeed = info.seeds[0];
  const gridRuns = records.filter((r) => r.seed === firstSeed);
  const keys = [...new Set(gridRuns.map((r) => `${r.shift}|${r.shots}|${r.method}`))];
  for (const key of keys) {
    const runs = gridRuns.filter((r) => `${r.shift}|${r.shots}|${r.method}` === key);
    push(
      `| ${runs[0].shift} | ${runs[0].shots} | ${runs[0].method} | ${
        runs.map((r) =>
          `${r.selected ? "**" : ""}${hpText(r.method, r.hyperparameters)}: ${pct(r.idValidationAccuracy)}${
            r.selected ? "**" : ""
          }`
        ).join("; ")
      } |`,
    );
  }
  push("");
  return lines.join("\n");
}

async function gitCommit(): Promise<string> {
  try {
    const out = await new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"], stderr: "null" })
      .output();
    return new TextDecoder().decode(out.stdout).trim() || "unknown";
  } catch {
    return "unknown";
  }
}

async function machine(): Promise<string> {
  let cpu = "unknown CPU";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpu = info.match(/model name\s*:\s*(.+)/)?.[1]?.trim() ?? cpu;
  } catch { /* not Linux */ }
  return `${cpu}, ${navigator.hardwareConcurrency} cores, ${Deno.build.os}/${Deno.build.arch}`;
}

/** The quick smoke run: each shift's first regime, one seed, no grid, small test sets. */
const QUICK = { seeds: [0], testPerClass: 20, validationPerClass: 5 };

const USAGE = `usage: deno task bench:methods [options]

DAFT against FT, LP, LP-FT and DAFT's ablations on real ID -> OOD shifts, few-shot regimes and seeds, each
method at its engine defaults. The full run (no options, under an hour on 2 cores) writes
docs/BENCHMARKS-methods.md and its SVG; a run with any subset option prints its tables and writes only where
--out, --svg or --json say.

  --quick                 each shift's first regime, one seed, no grid, small test sets
  --shifts LIST           comma list of ${Object.keys(SHIFTS).join(", ")}
  --regimes LIST          shots per class, e.g. 5,10,50,200
  --seeds N | LIST        how many seeds (3), or which (0,1,2)
  --methods LIST          comma list of ${[...METHOD_NAMES, ...Object.keys(ABLATIONS)].join(", ")}
  --grid                  search each method's rate grid on ID validation (first seed), not the defaults
  --out FILE --svg FILE   where to write the report and the picture
  --json FILE             save the raw results
  --render FILES          rewrite the report and picture from --json files (a comma list is merged), without training`;

async function main() {
  const { values: flags } = commandLine(USAGE, {
    quick: { type: "boolean", default: false },
    shifts: { type: "string" },
    regimes: { type: "string" },
    seeds: { type: "string" },
    methods: { type: "string" },
    grid: { type: "boolean", default: false },
    out: { type: "string" },
    svg: { type: "string" },
    json: { type: "string" },
    render: { type: "string" },
  });
  if (flags.render) {
    // Re-renders the report and picture from runs saved with --json, without training anything.
    const { records, info } = await mergeRuns(flags.render.split(","));
    await writeOutputs(
      records,
      info,
      flags.out ?? "docs/BENCHMARKS-methods.md",
      flags.svg ?? "docs/methods-ood-vs-distortion.svg",
    );
    return;
  }
  const subset = flags.quick || flags.shifts || flags.regimes || flags.seeds || flags.methods || flags.grid;
  const list = (s: string | undefined) => s?.split(",").map((v) => v.trim()).filter(Boolean);
  const shifts = list(flags.shifts);
  const regimes = list(flags.regimes);
  for (const r of regimes ?? []) {
    if (!REGIMES[r]) throw new Error(`unknown regime '${r}'; have ${Object.keys(REGIMES)}`);
  }
  for (const s of shifts ?? []) {
    if (!PLANS.some((p) => p.shift === s)) throw new Error(`unknown shift '${s}'`);
  }
  const plans = PLANS.filter((p) => (shifts ?? DEFAULT_SHIFTS).includes(p.shift)).map((p) => ({
    ...p,
    // A regime asked for runs on every chosen shift, even one whose default plan leaves it out.
    regimes: regimes ?? (flags.quick ? p.regimes.slice(0, 1) : p.regimes),
    ...(flags.quick
      ? { testPerClass: QUICK.testPerClass, validationPerClass: QUICK.validationPerClass }
      : {}),
  })).filter((p) => p.regimes.length);
  const seedList = list(flags.seeds);
  const seeds = seedList
    ? (seedList.length === 1
      ? Array.from({ length: Number(seedList[0]) }, (_, i) => i)
      : seedList.map(Number))
    : flags.quick
    ? QUICK.seeds
    : [0, 1, 2];
  const methods = (list(flags.methods) ?? [...BENCH_METHODS, ...BENCH_ABLATIONS]) as BenchMethod[];
  for (const m of methods) {
    if (!METHOD_NAMES.includes(m as Method) && !(m in ABLATIONS)) throw new Error(`unknown method '${m}'`);
  }
  const grid = flags.grid && !flags.quick;
  const out = flags.out ?? (subset ? undefined : "docs/BENCHMARKS-methods.md");
  const svg = flags.svg ?? (subset ? undefined : "docs/methods-ood-vs-distortion.svg");

  await initBackend("auto");
  const startedAt = new Date().toISOString();
  const loadStart = Deno.loadavg();
  const started = performance.now();
  const partial: RunRecord[] = [];
  const records = await runMethodsBenchmark({
    plans,
    seeds,
    methods,
    grid,
    log: (line) => console.error(`[${((performance.now() - started) / 1000).toFixed(0)}s] ${line}`),
    // Saved after every run, so a long run that dies leaves its results behind.
    onRecord: (record) => {
      partial.push(record);
      if (flags.json) return Deno.writeTextFile(flags.json, JSON.stringify({ records: partial }, null, 1));
    },
  });
  const info: RunInfo = {
    command: ["deno task bench:methods", ...Deno.args].join(" "),
    machine: await machine(),
    backend: backendInfo()?.name ?? "unknown",
    deno: Deno.version.deno,
    commit: await gitCommit(),
    startedAt,
    wallSeconds: (performance.now() - started) / 1000,
    loadAverage: { start: loadStart, end: Deno.loadavg() },
    seeds,
    grid,
    plans,
    regimes: Object.fromEntries(
      [...new Set(plans.flatMap((p) => p.regimes))].map((r) => [r, REGIMES[r]]),
    ),
  };
  if (flags.json) await Deno.writeTextFile(flags.json, JSON.stringify({ info, records }, null, 1));
  await writeOutputs(records, info, out, svg);
}

/**
 * The records of one or more `--json` files (runs of different shifts made side by side, or a run stopped
 * early, whose file then holds its records only), as one run: the first complete file's info, with the plans,
 * regimes and seeds the records cover, and the runs' wall time summed.
 */
export async function mergeRuns(files: string[]): Promise<{ records: RunRecord[]; info: RunInfo }> {
  const saved = await Promise.all(
    files.map(async (f) =>
      JSON.parse(await Deno.readTextFile(f)) as { info?: RunInfo; records: RunRecord[] }
    ),
  );
  // A later file's run replaces an earlier one of the same shift, shots, method and seed (a rerun of a row).
  const key = (r: RunRecord) => `${r.shift}|${r.shots}|${r.method}|${r.seed}|${r.selected}`;
  const byKey = new Map<string, RunRecord>();
  for (const r of saved.flatMap((s) => s.records)) byKey.set(key(r), r);
  const records = [...byKey.values()];
  const shifts = [...new Set(records.map((r) => r.shift))];
  const base = saved.find((s) => s.info)?.info;
  const plans = shifts.map((shift) => {
    const plan = base?.plans.find((p) => p.shift === shift) ?? PLANS.find((p) => p.shift === shift)!;
    const shots = new Set(records.filter((r) => r.shift === shift).map((r) => r.shots));
    return { ...plan, regimes: plan.regimes.filter((r) => shots.has(REGIMES[r]?.shots)) };
  });
  const wallSeconds = saved.reduce(
    (sum, s) =>
      sum + (s.info?.wallSeconds ?? s.records.reduce((a, r) => a + r.adaptSeconds + r.evalSeconds, 0)),
    0,
  );
  const info: RunInfo = {
    command: files.length > 1 || !base
      ? `deno task bench:methods --render ${files.join(",")} (runs merged; see the analysis)`
      : base.command,
    machine: base?.machine ?? await machine(),
    backend: base?.backend ?? "wasm",
    deno: base?.deno ?? Deno.version.deno,
    commit: base?.commit ?? await gitCommit(),
    startedAt: base?.startedAt ?? new Date().toISOString(),
    wallSeconds,
    loadAverage: base?.loadAverage ?? { start: [NaN, NaN, NaN], end: [NaN, NaN, NaN] },
    seeds: [...new Set(records.map((r) => r.seed))].sort((a, b) => a - b),
    grid: base?.grid ?? false,
    plans,
    regimes: Object.fromEntries(
      [...new Set(plans.flatMap((p) => p.regimes))].map((r) => [r, REGIMES[r]]),
    ),
  };
  return { records, info };
}

async function writeOutputs(records: RunRecord[], info: RunInfo, out?: string, svg?: string) {
  let existing: string | undefined;
  try {
    existing = out ? await Deno.readTextFile(out) : undefined;
  } catch { /* first run */ }
  const svgRef = svg && out ? relativeTo(out, svg) : undefined;
  const report = renderReport(records, info, extractAnalysis(existing), svgRef);
  if (out) {
    await Deno.writeTextFile(out, report);
    // The repository's formatter owns markdown layout (line width, table padding): let it have the last word.
    await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", out] }).output().catch(() => {});
  } else console.log(report);
  if (svg) await Deno.writeTextFile(svg, renderPlot(summarise(records)));
  console.error(
    `run of ${(info.wallSeconds / 60).toFixed(1)} min; wrote ${out ?? "the report to stdout"}${
      svg ? ` and ${svg}` : ""
    }`,
  );
}

function relativeTo(from: string, to: string): string {
  const dir = from.includes("/") ? from.slice(0, from.lastIndexOf("/") + 1) : "";
  return to.startsWith(dir) ? to.slice(dir.length) : to;
}

if (import.meta.main) await main();
