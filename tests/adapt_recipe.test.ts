// The few-shot rules of the adaptation recipe (src/adapt/methods.ts RECIPE_DEFAULTS), each pinned here.
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { activationGuard } from "../src/adapt/activation_guard.ts";
import { adapt } from "../src/adapt/adapt.ts";
import { balancedBatches, batchesPerEpoch } from "../src/adapt/balanced_batches.ts";
import { StandardizedHeadOptimizer } from "../src/adapt/standardized_head_optimizer.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { seededRandom } from "../src/data/random.ts";
import { tinyBackbone } from "../src/model/tiny.ts";
import { digitFixtures, testBackend } from "./_setup.ts";

await testBackend();

Deno.test("the standardised head optimiser is plain momentum SGD on standardised features, folded back", () => {
  const random = seededRandom(3);
  const [n, d, k] = [12, 5, 3];
  const f = tf.tensor2d(Array.from({ length: n * d }, () => 4 + 3 * random()), [n, d]); // uncentred, like ReLU means
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % k), "int32"), k);
  const { mean, variance } = tf.moments(f, 0);
  const mu = mean.dataSync() as Float32Array, scale = variance.dataSync().map((v) => Math.sqrt(v + 0.01));
  const kernel = tf.variable(tf.zeros([d, k])), bias = tf.variable(tf.zeros([k]));
  const ours = new StandardizedHeadOptimizer(kernel, bias, mu, Float32Array.from(scale), 0.3, 0.9);
  // The reference: a head on explicitly standardised features, trained by tfjs' own momentum SGD.
  const fs = tf.div(tf.sub(f, mean), tf.tensor1d(Array.from(scale)));
  const refKernel = tf.variable(tf.zeros([d, k])), refBias = tf.variable(tf.zeros([k]));
  const reference = tf.train.momentum(0.3, 0.9);
  const loss = (x: tf.Tensor, w: tf.Variable, b: tf.Variable) =>
    tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(x, w), b)) as tf.Scalar;
  for (let step = 0; step < 5; step++) {
    const { grads } = tf.variableGrads(() => loss(f, kernel, bias), [kernel, bias]);
    ours.applyGradients([{ name: kernel.name, tensor: grads[kernel.name] }, {
      name: bias.name,
      tensor: grads[bias.name],
    }]);
    reference.minimize(() => loss(fs, refKernel, refBias), false, [refKernel, refBias]);
    tf.dispose(Object.values(grads));
  }
  const logits = tf.add(tf.matMul(f, kernel), bias), expected = tf.add(tf.matMul(fs, refKernel), refBias);
  assert.ok(tf.max(tf.abs(tf.sub(logits, expected))).dataSync()[0] < 1e-4, "same logits on every sample");
  assert.ok(tf.max(tf.abs(logits)).dataSync()[0] > 0.1, "and the head did learn");
  ours.dispose();
  reference.dispose();
  tf.dispose([f, y, mean, variance, kernel, bias, fs, refKernel, refBias, logits, expected]);
});

Deno.test("even batches cut an epoch into batches whose sizes differ by at most one", () => {
  const labels = [...Array(20).keys()].map((i) => i % 5);
  const indices = labels.map((_, i) => i);
  const even = balancedBatches(labels, indices, 16, seededRandom(1), true);
  assert.deepEqual(even.map((b) => b.length), [10, 10]);
  assert.deepEqual(even.flat().sort((a, b) => a - b), indices);
  const forty = balancedBatches(
    [...Array(40).keys()].map((i) => i % 5),
    [...Array(40).keys()],
    16,
    seededRandom(1),
    true,
  );
  assert.deepEqual(forty.map((b) => b.length), [14, 13, 13]);
  assert.deepEqual(balancedBatches(labels, indices, 16, seededRandom(1)).map((b) => b.length), [16, 4]);
  for (const [n, classes, size] of [[20, 5, 16], [40, 5, 16], [17, 1, 16], [33, 3, 8], [9, 3, 16]]) {
    const ys = [...Array(n).keys()].map((i) => i % classes);
    for (const even of [false, true]) {
      const drawn = balancedBatches(ys, ys.map((_, i) => i), size, seededRandom(2), even).length;
      assert.equal(batchesPerEpoch(ys, size, even), drawn, `${n} images, ${classes} classes, batch ${size}`);
    }
  }
});

async function threeDigits(perClass: number) {
  const all = await digitFixtures();
  const keep = all.labels.map((y, i) => [y, i]).filter(([y], i, list) =>
    y < 3 && list.slice(0, i).filter(([z]) => z === y).length < perClass
  );
  const backbone = await tinyBackbone();
  const images = imagesToTensor(keep.map(([, i]) => all.images[i]), backbone.input);
  return { backbone, data: { images, labels: keep.map(([y]) => y), classNames: ["0", "1", "2"] } };
}

Deno.test("a few-shot set trains at least minSteps steps; minSteps 0 trains exactly the epochs asked", async () => {
  for (const [minSteps, epochs, expected] of [[undefined, 2, 30], [0, 2, 2], [4, 3, 3]] as const) {
    const { backbone, data } = await threeDigits(8); // 6 train images per class: 18 images, 2 even batches of 9
    const model = await adapt(backbone, data, { epochs, minSteps, batchSize: 16, seed: 1 });
    const h = model.metadata.hyperparameters;
    assert.equal(model.metadata.metrics.history.length, expected, `minSteps ${minSteps}`);
    assert.equal(h.trainedEpochs, expected);
    assert.equal(h.steps, expected * 2);
    assert.equal(h.selection, "last epoch");
    assert.equal(model.metadata.metrics.bestEpoch, expected - 1, "the last epoch is the one kept");
    model.dispose();
    data.images.dispose();
  }
});

Deno.test("every adaptation reports the linear-probe baseline on its own split and the guard's verdict", async () => {
  const { backbone, data } = await threeDigits(8);
  const model = await adapt(backbone, data, { seed: 2 });
  const { baseline, guard, validation, valSamples } = model.metadata.metrics;
  assert.equal(baseline.method, "lp");
  assert.equal(baseline.validation.confusion.flat().reduce((a, b) => a + b, 0), valSamples);
  assert.deepEqual(
    guard,
    activationGuard({
      accuracy: validation.accuracy,
      baseline: baseline.valAccuracy,
      samples: valSamples,
      classes: 3,
    }),
  );
  model.dispose();
  data.images.dispose();
});

Deno.test("the guard calls chance and a deficit against the baseline by counts, not by a single image", () => {
  const g = (accuracy: number, baseline: number, samples: number, classes: number) =>
    activationGuard({ accuracy, baseline, samples, classes }).verdict;
  assert.equal(g(1 / 3, 5 / 6, 6, 3), "at_chance"); // one class for everything
  assert.equal(g(0.5, 1, 6, 3), "at_chance"); // 3 of 6 is within noise of chance's 2
  assert.equal(g(0.8, 0.9, 10, 5), "ok"); // one image behind the baseline is noise
  assert.equal(g(0.7, 0.9, 10, 5), "below_baseline"); // two are not
  assert.equal(g(0.85, 0.9, 100, 5), "below_baseline"); // 5 of 100 exceeds sqrt(100 * 0.9 * 0.1) = 3
  assert.equal(g(0.88, 0.9, 100, 5), "ok");
});
