import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { convertBatchNorm, convertBatchNormParams } from "../src/adapt/bn_conversion.ts";
import { featureMomentsOf } from "../src/adapt/feature_moments.ts";
import { batchNormInputStatistics, outputAndBatchNormStatistics } from "../src/adapt/target_statistics.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { batchNormLayers } from "../src/model/batch_norm_layers.ts";
import { mobilenetV2ImageNet } from "../src/model/mobilenetv2_imagenet.ts";
import { tinyBackbone } from "../src/model/tiny.ts";
import { digitFixtures, photoFixtures, testBackend } from "./_setup.ts";

await testBackend();

Deno.test("the parameter conversion leaves gamma*(x-mean)/std+beta unchanged for any x", () => {
  const f = (...v: number[]) => Float32Array.from(v);
  const source = { gamma: f(1.5, -0.3), beta: f(0.2, 1), movingMean: f(0.1, -2), movingVariance: f(0.5, 3) };
  const target = { mean: f(1, 4), variance: f(2, 0.01) };
  const eps = 1e-3;
  const out = convertBatchNormParams(source, target, eps);
  for (const x of [-3, 0, 0.7, 10]) {
    for (let c = 0; c < 2; c++) {
      const before =
        source.gamma[c] * (x - source.movingMean[c]) / Math.sqrt(source.movingVariance[c] + eps) +
        source.beta[c];
      const after = out.gamma[c] * (x - out.movingMean[c]) / Math.sqrt(out.movingVariance[c] + eps) +
        out.beta[c];
      assert.ok(Math.abs(before - after) < 1e-5, `channel ${c}, x=${x}: ${before} vs ${after}`);
    }
  }
  assert.deepEqual([...out.movingMean], [1, 4]);
});

Deno.test("BN conversion keeps the default backbone's eval-mode output within 1e-4 on real photos", async () => {
  const backbone = await mobilenetV2ImageNet();
  const photos = await photoFixtures();
  const images = imagesToTensor(photos, backbone.input);
  const before = backbone.model.predict(images) as tf.Tensor;
  const report = await convertBatchNorm(backbone.model, images, 3);
  const after = backbone.model.predict(images) as tf.Tensor;
  const diff = tf.max(tf.abs(tf.sub(before, after))).dataSync()[0];
  assert.equal(report.layersConverted, backbone.batchNormLayers.length);
  assert.ok(diff < 1e-4, `max |diff| ${diff}`);
  assert.ok(report.maxAbsOutputDiff < 1e-4, `reported ${report.maxAbsOutputDiff}`);
  // The reported check ran on the first batch; the full before/after comparison is the one above.
  assert.equal(report.checkedSamples, Math.min(3, images.shape[0]));
  assert.equal(report.calibrationSamples, images.shape[0]);
  // The photos are not ImageNet's average: the statistics really moved.
  assert.ok(report.layers.some((l) => l.meanShift > 1e-2), JSON.stringify(report.layers.slice(0, 3)));
  // adapt() sets the zero head's rate and standardisation from the features measured before the
  // conversion: they must be what the converted backbone gives, to float error.
  const [m0, m1] = [
    await featureMomentsOf(before as tf.Tensor2D),
    await featureMomentsOf(after as tf.Tensor2D),
  ];
  const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-6);
  assert.ok(relative(m0.standardizedSquaredNorm, m1.standardizedSquaredNorm) < 1e-4);
  assert.ok(relative(m0.meanSquaredNorm, m1.meanSquaredNorm) < 1e-5);
  for (let d = 0; d < m0.mean.length; d++) {
    assert.ok(
      Math.abs(m0.mean[d] - m1.mean[d]) < 1e-4 && relative(m0.scale[d], m1.scale[d]) < 1e-3,
      `feature ${d}`,
    );
  }
  tf.dispose([images, before, after]);
  backbone.model.dispose();
});

Deno.test("after conversion each BN layer's running statistics equal the target statistics", async () => {
  const backbone = await tinyBackbone();
  const digits = await digitFixtures();
  const images = imagesToTensor(digits.images.slice(0, 40), backbone.input);
  const layers = batchNormLayers(backbone.model);
  const target = await batchNormInputStatistics(backbone.model, layers, images, 16);
  await convertBatchNorm(backbone.model, images, 16);
  layers.forEach((layer, i) => {
    const weights = Object.fromEntries(
      layer.weights.map((w) => [w.originalName.split("/").pop(), w.read().dataSync()]),
    );
    for (let c = 0; c < target[i].mean.length; c++) {
      assert.ok(Math.abs(weights.moving_mean[c] - target[i].mean[c]) < 1e-6);
      assert.ok(Math.abs(weights.moving_variance[c] - target[i].variance[c]) < 1e-6);
    }
  });
  images.dispose();
  backbone.model.dispose();
});

Deno.test("target statistics are per-batch means and unbiased variances, averaged over batches", async () => {
  const input = tf.input({ shape: [2, 1, 1] });
  const bn = tf.layers.batchNormalization();
  const model = tf.model({ inputs: input, outputs: bn.apply(input) as tf.SymbolicTensor });
  // Batch 1: pixels {0, 2, 4, 6} -> mean 3, unbiased variance 20/3. Batch 2: {1, 1} -> mean 1, variance 0.
  const images = tf.tensor4d([0, 2, 4, 6, 1, 1], [3, 2, 1, 1]);
  const [stats] = await batchNormInputStatistics(model, [bn], images, 2);
  assert.ok(Math.abs(stats.mean[0] - 2) < 1e-6, `${stats.mean[0]}`);
  assert.ok(Math.abs(stats.variance[0] - 10 / 3) < 1e-5, `${stats.variance[0]}`);
  images.dispose();
  model.dispose();
});

Deno.test("one pass gives model.predict's output and the BN input statistics, both to the bit", async () => {
  const backbone = await tinyBackbone();
  const digits = await digitFixtures();
  const images = imagesToTensor(digits.images.slice(0, 10), backbone.input); // batches of 4, 4 and 2
  const layers = batchNormLayers(backbone.model);
  const predicted = backbone.model.predict(images, { batchSize: 4 }) as tf.Tensor;
  const statistics = await batchNormInputStatistics(backbone.model, layers, images, 4);
  const both = await outputAndBatchNormStatistics(backbone.model, layers, images, 4);
  assert.deepEqual(both.output.shape, predicted.shape);
  assert.deepEqual(both.output.dataSync(), predicted.dataSync());
  assert.deepEqual(both.statistics, statistics);
  const alone = await outputAndBatchNormStatistics(backbone.model, [], images, 4);
  assert.deepEqual(alone.statistics, []);
  assert.deepEqual(alone.output.dataSync(), predicted.dataSync());
  tf.dispose([images, predicted, both.output, alone.output]);
  backbone.model.dispose();
});

Deno.test("a conversion from a pass measured already converts and reports exactly as one that measures", async () => {
  const digits = await digitFixtures();
  const converted = [];
  for (const shared of [false, true]) {
    const backbone = await tinyBackbone();
    const images = imagesToTensor(digits.images.slice(0, 10), backbone.input);
    const measured = shared
      ? await outputAndBatchNormStatistics(backbone.model, batchNormLayers(backbone.model), images, 4)
      : undefined;
    const report = await convertBatchNorm(backbone.model, images, 4, measured);
    converted.push({ report, weights: backbone.model.getWeights().map((w) => w.dataSync()) });
    tf.dispose([images, measured?.output ?? []]);
    backbone.model.dispose();
  }
  assert.equal(converted[0].report.checkedSamples, 4);
  assert.deepEqual(converted[1].report, converted[0].report);
  assert.deepEqual(converted[1].weights, converted[0].weights);
});
