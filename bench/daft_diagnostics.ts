/**
 * Why DAFT's first recipe lost to a linear probe at a few shots, measured: the evidence behind each of the
 * few-shot rules in `RECIPE_DEFAULTS` (src/adapt/methods.ts). On MNIST digits 0-4 at the default backbone and
 * input size, for 5 and 10 shots per class and seeds 1-3, it runs DAFT's first recipe (`daft-v1`) and the
 * current one and records, per SGD step, the loss and the batch size, and per epoch, the validation accuracy
 * the engine sees, the accuracy on held-out test digits, the head's kernel norm, the largest |logit| on those
 * digits, and how far each BN layer's running statistics have moved from the ones BN conversion installed.
 *
 *   deno task bench:diagnostics [--shots 5,10] [--seeds 1,2,3] [--test-per-class 50] [--json out.json]
 *
 * It prints one line per run and a summary table in markdown; docs/BENCHMARKS-methods.md quotes it.
 */
import * as tf from "@tensorflow/tfjs";
import { commandLine } from "../cli/_args.ts";
import { adapt } from "../src/adapt/adapt.ts";
import type { MethodRecipe } from "../src/adapt/methods.ts";
import { batchNormInputStatistics } from "../src/adapt/target_statistics.ts";
import { initBackend } from "../src/backend/init_backend.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import type { LabeledImages } from "../src/data/labeled_images.ts";
import { readMnist } from "../src/data/mnist.ts";
import { takePerClass } from "../src/data/take_per_class.ts";
import { batchNormLayers } from "../src/model/batch_norm_layers.ts";
import { loadBackbone } from "../src/model/registry.ts";
import { ABLATIONS } from "./methods.ts";

/** The two recipes compared: DAFT as first shipped, and as it is now. */
const RECIPES: Record<string, { recipe: Partial<MethodRecipe>; lrHead?: number; lrBackbone?: number }> = {
  "daft-v1": {
    recipe: ABLATIONS["daft-v1"].recipe as Partial<MethodRecipe>,
    ...ABLATIONS["daft-v1"].hyperparameters,
  },
  "daft": { recipe: {} },
};

/** What one run measured. */
export interface DiagnosticRun {
  recipe: string;
  shots: number;
  seed: number;
  /** Per SGD step. */
  losses: number[];
  batchSizes: number[];
  /** Per epoch. */
  valAccuracy: number[];
  testAccuracy: number[];
  headNorm: number[];
  maxAbsLogit: number[];
  /** Mean over BN layers of mean |running mean - mu_t| / sqrt(var_t), and of running var / var_t. */
  runningMeanShift: number[];
  runningVarRatio: number[];
  keptEpoch: number;
  keptTestAccuracy: number;
  lastTestAccuracy: number;
  lpTestAccuracy: number;
}

function keepClasses(ds: LabeledImages, classes: number): LabeledImages {
  const idx = ds.labels.map((y, i) => [y, i]).filter(([y]) => y < classes).map(([, i]) => i);
  return {
    images: idx.map((i) => ds.images[i]),
    labels: idx.map((i) => ds.labels[i]),
    classNames: ds.classNames.slice(0, classes),
  };
}

async function accuracyOn(model: tf.LayersModel, x: tf.Tensor4D, labels: number[]) {
  const out = tf.tidy(() => {
    const logits = model.predict(x, { batchSize: 64 }) as tf.Tensor;
    return [tf.argMax(logits, 1), tf.max(tf.abs(logits))];
  });
  const [predicted, max] = await Promise.all(out.map((t) => t.data()));
  tf.dispose(out);
  return { accuracy: labels.filter((y, i) => predicted[i] === y).length / labels.length, maxAbs: max[0] };
}

async function runOne(
  name: string,
  train: LabeledImages,
  test: { x: tf.Tensor4D; labels: number[] },
  shots: number,
  seed: number,
): Promise<DiagnosticRun> {
  const backbone = await loadBackbone({ name: "mobilenetv2-imagenet" });
  const images = imagesToTensor(train.images, backbone.input);
  const layers = batchNormLayers(backbone.model);
  // mu_t, var_t as conversion computes them (eval mode, every training image): where the running statistics start.
  const target = await batchNormInputStatistics(backbone.model, layers, images, 16);
  const run: DiagnosticRun = {
    recipe: name,
    shots,
    seed,
    losses: [],
    batchSizes: [],
    valAccuracy: [],
    testAccuracy: [],
    headNorm: [],
    maxAbsLogit: [],
    runningMeanShift: [],
    runningVarRatio: [],
    keptEpoch: -1,
    keptTestAccuracy: NaN,
    lastTestAccuracy: NaN,
    lpTestAccuracy: NaN,
  };
  const { recipe, ...rates } = RECIPES[name];
  const model = await adapt(backbone, { images, labels: train.labels, classNames: train.classNames }, {
    method: "daft",
    seed,
    recipe,
    ...rates,
    onProgress: (p) => {
      if (p.phase === "training" && p.loss !== undefined) {
        run.losses.push(p.loss);
        run.batchSizes.push(p.batchSize!);
      }
      if (p.record) run.valAccuracy.push(p.record.valAccuracy);
    },
    inspectEpoch: async (classifier) => {
      // The classifier ends in a softmax; its logits are the head's output.
      const logits = tf.model({
        inputs: classifier.inputs,
        outputs: classifier.getLayer("head").output as tf.SymbolicTensor,
      });
      const { accuracy, maxAbs } = await accuracyOn(logits, test.x, test.labels);
      run.testAccuracy.push(accuracy);
      run.maxAbsLogit.push(maxAbs);
      const head = classifier.getLayer("head").getWeights()[0];
      run.headNorm.push((await tf.norm(head).data())[0]);
      let shift = 0, ratio = 0;
      for (const [l, layer] of layers.entries()) {
        const w = layer.getWeights();
        const [mean, variance] = [await w[2].data() as Float32Array, await w[3].data() as Float32Array];
        const t = target[l];
        shift += mean.reduce((a, m, c) => a + Math.abs(m - t.mean[c]) / Math.sqrt(t.variance[c] + 1e-3), 0) /
          mean.length;
        ratio += variance.reduce((a, v, c) => a + v / (t.variance[c] + 1e-3), 0) / variance.length;
      }
      run.runningMeanShift.push(shift / layers.length);
      run.runningVarRatio.push(ratio / layers.length);
    },
  });
  run.keptEpoch = model.metadata.metrics.bestEpoch;
  run.keptTestAccuracy = run.testAccuracy[run.keptEpoch];
  run.lastTestAccuracy = run.testAccuracy.at(-1)!;
  images.dispose();
  model.dispose();
  return run;
}

async function lpTest(train: LabeledImages, test: { x: tf.Tensor4D; labels: number[] }, seed: number) {
  const backbone = await loadBackbone({ name: "mobilenetv2-imagenet" });
  const images = imagesToTensor(train.images, backbone.input);
  const model = await adapt(backbone, { images, labels: train.labels, classNames: train.classNames }, {
    method: "lp",
    seed,
  });
  const { accuracy } = await accuracyOn(model.classifier, test.x, test.labels);
  images.dispose();
  model.dispose();
  return accuracy;
}

const USAGE = `usage: deno task bench:diagnostics [options]

DAFT's first recipe against the current one on MNIST digits 0-4 (default backbone, 96 px): per-step loss,
per-epoch validation and test accuracy, head norm, largest logit, running-statistics drift; a markdown summary.

  --shots LIST            shots per class (5,10)
  --seeds LIST            seeds (1,2,3)
  --test-per-class N      held-out MNIST test digits per class (50)
  --json FILE             save every run`;

async function main() {
  const { values } = commandLine(USAGE, {
    shots: { type: "string", default: "5,10" },
    seeds: { type: "string", default: "1,2,3" },
    "test-per-class": { type: "string", default: "50" },
    json: { type: "string" },
  });
  const list = (s: string) => s.split(",").map(Number);
  await initBackend("auto");
  const pool = keepClasses(await readMnist({ split: "train", perClass: 60, seed: 7 }), 5);
  const testSet = keepClasses(
    await readMnist({ split: "test", perClass: Number(values["test-per-class"]), seed: 7 }),
    5,
  );
  const spec = (await loadBackbone({ name: "mobilenetv2-imagenet" })).input;
  const test = { x: imagesToTensor(testSet.images, spec), labels: testSet.labels };
  const runs: DiagnosticRun[] = [];
  const pct = (v: number) => (100 * v).toFixed(1);
  for (const shots of list(values.shots)) {
    for (const seed of list(values.seeds)) {
      const train = takePerClass(pool, shots, seed);
      const lp = await lpTest(train, test, seed);
      for (const name of Object.keys(RECIPES)) {
        const run = await runOne(name, train, test, shots, seed);
        run.lpTestAccuracy = lp;
        runs.push(run);
        console.error(
          `${name} ${shots}-shot seed ${seed}: steps ${run.losses.length} (batches ${
            [...new Set(run.batchSizes)].join("/")
          }), ` +
            `loss max ${Math.max(...run.losses).toFixed(2)}, kept epoch ${
              run.keptEpoch + 1
            }/${run.testAccuracy.length} ` +
            `test ${pct(run.keptTestAccuracy)} (last ${pct(run.lastTestAccuracy)}, LP ${pct(lp)}), ` +
            `val ${run.valAccuracy.map(pct).join(",")}; test/epoch ${run.testAccuracy.map(pct).join(",")}`,
        );
        if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(runs, null, 1));
      }
    }
  }
  test.x.dispose();
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  console.log(
    "| recipe | shots | steps | loss: first / max / last | head norm, last | max \\|logit\\|, last | " +
      "running mean shift / var ratio, last | kept epoch (of) | test: kept / last / LP |",
  );
  console.log("| --- | ---: | ---: | --- | ---: | ---: | --- | --- | --- |");
  for (const shots of list(values.shots)) {
    for (const name of Object.keys(RECIPES)) {
      const rs = runs.filter((r) => r.shots === shots && r.recipe === name);
      console.log(
        `| ${name} | ${shots} | ${mean(rs.map((r) => r.losses.length)).toFixed(0)} | ${
          mean(rs.map((r) => r.losses[0])).toFixed(2)
        } / ${mean(rs.map((r) => Math.max(...r.losses))).toFixed(2)} / ${
          mean(rs.map((r) => r.losses.at(-1)!)).toFixed(3)
        } | ${mean(rs.map((r) => r.headNorm.at(-1)!)).toFixed(2)} | ${
          mean(rs.map((r) => r.maxAbsLogit.at(-1)!)).toFixed(1)
        } | ${mean(rs.map((r) => r.runningMeanShift.at(-1)!)).toFixed(3)} / ${
          mean(rs.map((r) => r.runningVarRatio.at(-1)!)).toFixed(3)
        } | ${rs.map((r) => `${r.keptEpoch + 1} (${r.testAccuracy.length})`).join(", ")} | ${
          pct(mean(rs.map((r) => r.keptTestAccuracy)))
        } / ${pct(mean(rs.map((r) => r.lastTestAccuracy)))} / ${
          pct(mean(rs.map((r) => r.lpTestAccuracy)))
        } |`,
      );
    }
  }
}

if (import.meta.main) await main();
