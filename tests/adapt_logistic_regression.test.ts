import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { fitLogisticRegression, fitLogisticRegressions, L2_GRID } from "../src/adapt/logistic_regression.ts";
import { seededRandom } from "../src/data/random.ts";
import { testBackend } from "./_setup.ts";

await testBackend();

const STEPS = 30;

// Features with some class signal, and labels: `n` rows of `d` values, 3 classes.
function problem(n: number, d: number, seed: number) {
  const random = seededRandom(seed);
  const labels = Array.from({ length: n }, (_, i) => i % 3);
  const values = labels.flatMap((y) => Array.from({ length: d }, (_, j) => (j % 3 === y ? 1 : 0) + random()));
  return { x: tf.tensor2d(values, [n, d]), labels };
}

// One strength fitted alone, as the baseline was fitted before the strengths ran together: the reference.
function fitAlone(x: tf.Tensor2D, labels: number[], classes: number, l2: number) {
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), classes).toFloat());
  const kernel = tf.variable(tf.zeros([x.shape[1], classes]));
  const bias = tf.variable(tf.zeros([classes]));
  const optimizer = tf.train.adam(0.05);
  for (let s = 0; s < STEPS; s++) {
    optimizer.minimize(() =>
      tf.add(
        tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(x, kernel), bias)),
        tf.mul(l2 / 2, tf.sum(tf.square(kernel))),
      ) as tf.Scalar
    );
  }
  optimizer.dispose();
  const out = [kernel.dataSync().slice(), bias.dataSync().slice()];
  tf.dispose([y, kernel, bias]);
  return out;
}

Deno.test("the strengths fitted together give each the weights it gets fitted alone, bit for bit", () => {
  const { x, labels } = problem(24, 16, 1);
  const fits = fitLogisticRegressions(x, labels, 3, L2_GRID, STEPS);
  try {
    for (const [i, l2] of L2_GRID.entries()) {
      const [kernel, bias] = fitAlone(x, labels, 3, l2);
      assert.deepEqual(fits[i].kernel.dataSync(), kernel, `kernel at l2 ${l2}`);
      assert.deepEqual(fits[i].bias.dataSync(), bias, `bias at l2 ${l2}`);
    }
  } finally {
    tf.dispose([x, ...fits.flatMap((f) => [f.kernel, f.bias])]);
  }
});

Deno.test("the chosen head is the best strength's on validation, ties going to the stronger penalty", async () => {
  const train = problem(24, 16, 2), validation = problem(12, 16, 3);
  const head = await fitLogisticRegression(train, validation, 3, STEPS);
  const fits = fitLogisticRegressions(train.x, train.labels, 3, L2_GRID, STEPS);
  try {
    const scores = fits.map(({ kernel, bias }) => {
      const predicted = tf.tidy(() => tf.argMax(tf.add(tf.matMul(validation.x, kernel), bias), 1).dataSync());
      return validation.labels.filter((y, i) => predicted[i] === y).length / validation.labels.length;
    });
    const best = Math.max(...scores);
    const chosen = L2_GRID.findLast((_, i) => scores[i] === best)!;
    assert.equal(head.l2, chosen);
    assert.equal(head.validationAccuracy, best);
    assert.deepEqual(head.kernel.dataSync(), fits[L2_GRID.indexOf(chosen)].kernel.dataSync());
  } finally {
    tf.dispose([train.x, validation.x, head.kernel, head.bias, ...fits.flatMap((f) => [f.kernel, f.bias])]);
  }
});

Deno.test("a fitted head goes into a Dense layer that then predicts", async () => {
  const { x, labels } = problem(12, 16, 4);
  const head = await fitLogisticRegression({ x, labels }, { x, labels }, 3, 5);
  const dense = tf.layers.dense({ units: 3, inputShape: [16] });
  const model = tf.sequential({ layers: [dense] });
  try {
    dense.setWeights([head.kernel, head.bias]);
    const logits = model.predict(x) as tf.Tensor;
    const expected = tf.add(tf.matMul(x, head.kernel), head.bias);
    assert.deepEqual(logits.shape, [12, 3]);
    assert.ok(tf.max(tf.abs(tf.sub(logits, expected))).dataSync()[0] < 1e-5);
    tf.dispose([logits, expected]);
  } finally {
    model.dispose();
    tf.dispose([x, head.kernel, head.bias]);
  }
});
