import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { accuracyOf, predictedClasses } from "../src/adapt/_predicted_classes.ts";
import { adapt } from "../src/adapt/adapt.ts";
import { ADAPT_DEFAULTS } from "../src/adapt/adapt_options.ts";
import { classificationMetrics } from "../src/adapt/classification_metrics.ts";
import { stratifiedSplit } from "../src/adapt/stratified_split.ts";
import type { TrainingSet } from "../src/adapt/training_set.ts";
import { AdaptedModel } from "../src/adapt/adapted_model.ts";
import { attachHead } from "../src/adapt/classifier_head.ts";
import { METHOD_NAMES } from "../src/adapt/methods.ts";
import { trainingStep } from "../src/adapt/training_step.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { tinyBackbone } from "../src/model/tiny.ts";
import { digitFixtures, testBackend } from "./_setup.ts";
import { rejects } from "./_setup.ts";

await testBackend();

// Five digits x 24 MNIST test images: a real task, and a new domain for a backbone pretrained on clothing.
const CLASSES = ["0", "1", "2", "3", "4"];
async function digits(): Promise<TrainingSet & { dispose(): void }> {
  const all = await digitFixtures();
  const keep = all.labels.map((y, i) => [y, i]).filter(([y]) => CLASSES.includes(all.classNames[y]));
  const backbone = { height: 28, width: 28, channels: 1 as const, range: [0, 1] as [number, number] };
  const images = imagesToTensor(keep.map(([, i]) => all.images[i]), backbone);
  return {
    images,
    labels: keep.map(([y]) => CLASSES.indexOf(all.classNames[y])),
    classNames: CLASSES,
    dispose: () => images.dispose(),
  };
}

Deno.test("with a zero head the backbone's gradient is zero at the first step and grows after", async () => {
  const backbone = await tinyBackbone();
  const data = await digits();
  const { logits, head } = attachHead(backbone, 5, "zeros", 0);
  const state = {
    logits,
    training: true,
    headVars: head.trainableWeights.map((w) => w.read() as tf.Variable),
    backboneVars: backbone.model.trainableWeights.map((w) => w.read() as tf.Variable),
    headOptimizer: tf.train.momentum(0.5, 0.9),
    backboneOptimizer: tf.train.momentum(1e-4, 0.9),
    measureGradNorm: true,
  };
  const x = data.images.slice(0, 16) as tf.Tensor4D;
  const y = tf.oneHot(tf.tensor1d(data.labels.slice(0, 16), "int32"), 5);
  const norms: number[] = [];
  for (let step = 0; step < 3; step++) {
    const out = trainingStep(state, x, y);
    norms.push((await out.backboneGradNorm!.data())[0]);
    tf.dispose(Object.values(out));
  }
  assert.equal(norms[0], 0);
  assert.ok(norms[1] > 0 && norms[2] > 0, JSON.stringify(norms));
  tf.dispose([x, y]);
  state.headOptimizer.dispose();
  state.backboneOptimizer.dispose();
  logits.dispose();
  data.dispose();
});

for (const method of METHOD_NAMES) {
  Deno.test(`method ${method} learns five real digits well above chance`, async () => {
    const data = await digits();
    const model = await adapt(await tinyBackbone(), data, { method, epochs: 6, seed: 1 });
    const m = model.metadata.metrics;
    assert.ok(m.valAccuracy >= 0.6, `${method}: val accuracy ${m.valAccuracy} (chance 0.2)`);
    assert.equal(model.metadata.method, method);
    assert.equal(m.validation.confusion.length, 5);
    assert.ok(
      m.distortion.cosineMean <= 1 + 1e-6 && m.distortion.cosineMean > 0,
      JSON.stringify(m.distortion),
    );
    if (method === "lp") {
      assert.ok(m.distortion.l2Mean < 1e-5, "LP leaves the backbone untouched");
    } else {
      assert.ok(m.parameterChange.some((p) => p.norm > 0), "the backbone moved");
    }
    assert.equal(model.metadata.bnConversion !== null, method === "daft" || method === "conversion-only");
    if (model.metadata.bnConversion) assert.ok(model.metadata.bnConversion.maxAbsOutputDiff < 1e-4);
    model.dispose();
    data.dispose();
  });
}

Deno.test("a saved model loads back and predicts identically", async () => {
  const data = await digits();
  const model = await adapt(await tinyBackbone(), data, { epochs: 2, seed: 3 });
  const dir = await Deno.makeTempDir();
  await model.save(dir);
  const loaded = await AdaptedModel.load(dir);
  const x = data.images.slice(0, 10) as tf.Tensor4D;
  const [a, b] = [await model.predict(x, 3), await loaded.predict(x, 3)];
  assert.deepEqual(b.map((p) => p.label), a.map((p) => p.label));
  a.forEach((p, i) => assert.ok(Math.abs(p.score - b[i].score) < 1e-6));
  assert.equal(loaded.metadata.metrics.valAccuracy, model.metadata.metrics.valAccuracy);
  assert.ok(typeof loaded.metadata.metrics.distortion.cosineMean === "number");
  assert.ok(typeof loaded.metadata.bnConversion?.maxAbsOutputDiff === "number");
  tf.dispose(x);
  model.dispose();
  loaded.dispose();
  data.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a whole adaptation job leaves no tensor behind", async () => {
  const data = await digits();
  await (await adapt(await tinyBackbone(), data, { epochs: 1 })).dispose(); // warm caches
  const baseline = tf.memory().numTensors;
  for (const method of ["daft", "lp-ft"] as const) {
    const model = await adapt(await tinyBackbone(), data, { method, epochs: 2 });
    model.dispose();
    assert.equal(tf.memory().numTensors, baseline, method);
  }
  data.dispose();
});

Deno.test("cancelling stops the job within one step", async () => {
  const data = await digits();
  const controller = new AbortController();
  let steps = 0, stepsAtAbort = 0;
  await rejects(
    adapt(await tinyBackbone(), data, {
      epochs: 5,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step === undefined) return;
        steps++;
        if (steps === 2) {
          controller.abort();
          stepsAtAbort = steps;
        }
      },
    }),
    "cancelled",
  );
  assert.ok(steps - stepsAtAbort <= 1, `${steps - stepsAtAbort} steps after the abort`);
  data.dispose();
});

Deno.test("the same seed on the same backend repeats a run", async () => {
  const data = await digits();
  const runs = [];
  for (let i = 0; i < 2; i++) {
    const model = await adapt(await tinyBackbone(), data, { epochs: 2, seed: 5, augment: { crop: true } });
    runs.push(model.metadata.metrics.history.map((h) => h.trainLoss));
    model.dispose();
  }
  assert.deepEqual(runs[0], runs[1]);
  data.dispose();
});

Deno.test("the reported validation scores are the returned classifier's, under either checkpoint rule", async () => {
  const data = await digits();
  for (const checkpoint of ["best", "last"] as const) {
    const model = await adapt(await tinyBackbone(), data, { epochs: 2, minSteps: 0, recipe: { checkpoint } });
    const { validation } = stratifiedSplit(data.labels, ADAPT_DEFAULTS.valFraction, ADAPT_DEFAULTS.seed);
    const valX = tf.gather(data.images, validation) as tf.Tensor4D;
    const predicted = await predictedClasses(model.classifier, valX, 16);
    const labels = validation.map((i) => data.labels[i]);
    const { metrics } = model.metadata;
    assert.deepEqual(metrics.validation, classificationMetrics(labels, predicted, CLASSES), checkpoint);
    assert.equal(
      metrics.valAccuracy,
      accuracyOf(predicted, labels),
      `${checkpoint}, epoch ${metrics.bestEpoch}`,
    );
    valX.dispose();
    model.dispose();
  }
  data.dispose();
});

Deno.test("datasets the method cannot use are rejected before any work", async () => {
  const backbone = await tinyBackbone();
  const zeros = (n: number, size = 28) => tf.zeros([n, size, size, 1]) as tf.Tensor4D;
  await rejects(
    adapt(backbone, { images: zeros(4), labels: [0, 0, 0, 0], classNames: ["a"] }),
    "too_few_classes",
  );
  await rejects(
    adapt(backbone, { images: zeros(4), labels: [0, 0, 0, 1], classNames: ["a", "b"] }),
    "too_few_samples",
  );
  await rejects(
    adapt(backbone, { images: zeros(4), labels: [0, 0, 1, 1], classNames: ["a", "b", "c"] }),
    "too_few_samples",
  );
  await rejects(
    adapt(backbone, { images: zeros(4, 32), labels: [0, 0, 1, 1], classNames: ["a", "b"] }),
    "shape_mismatch",
  );
  await rejects(
    adapt(backbone, { images: zeros(4), labels: [0, 0, 1, 1], classNames: ["a", "b"] }, { epochs: 0 }),
    "invalid_hyperparameter",
  );
  backbone.model.dispose();
});
