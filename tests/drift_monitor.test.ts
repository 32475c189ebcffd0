import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { adapt } from "../src/adapt/adapt.ts";
import type { ImageStatistics } from "../src/adapt/adapted_model.ts";
import { refreshBatchNorm } from "../src/adapt/bn_refresh.ts";
import { driftReference } from "../src/adapt/drift_reference.ts";
import { reducedStatistics } from "../src/adapt/image_statistics.ts";
import { driftScore } from "../src/adapt/drift_score.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { takePerClass } from "../src/data/take_per_class.ts";
import { batchNormLayers } from "../src/model/batch_norm_layers.ts";
import { tinyBackbone } from "../src/model/tiny.ts";
import { type DriftEvent, DriftMonitor } from "../src/serve/drift_monitor.ts";
import { TrafficWindow } from "../src/serve/traffic_window.ts";
import { digitFixtures, testBackend } from "./_setup.ts";

await testBackend();

const reference = {
  samples: 100,
  confidence: 0.9,
  layers: [{ layer: "f", mean: [0, 10], variance: [1, 4] }],
};

// `n` images whose two channels are constant at `values` (so each image's mean square is the square).
function batch(n: number, values: [number, number], confidence = 0.8): ImageStatistics {
  const rows = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) rows.set([values[0], values[1], values[0] ** 2, values[1] ** 2], i * 4);
  return {
    layers: [{ layer: "f", channels: 2 }],
    rows,
    width: 4,
    confidence: new Float32Array(n).fill(confidence),
  };
}

// Images alternating between two values per channel, so the window has the reference's variance.
function spread(n: number, shift: number): ImageStatistics {
  const rows = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const s = i % 2 ? 1 : -1;
    const a = shift + s, b = 10 + 2 * shift + 2 * s;
    rows.set([a, b, a * a, b * b], i * 4);
  }
  return { layers: [{ layer: "f", channels: 2 }], rows, width: 4, confidence: new Float32Array(n).fill(0.9) };
}

Deno.test("the drift score is 0 for the reference's own statistics and grows with the shift", () => {
  const at = (shift: number) =>
    driftScore(reference, [{ layer: "f", mean: [shift, 10 + 2 * shift], variance: [1, 4] }]).score;
  assert.equal(at(0), 0);
  assert.ok(at(0.5) > 0 && at(1) > at(0.5) && at(2) > at(1));
  // Equal variances: J = d^2 / v per channel, here (1 std in each channel) ~1 up to the variance floor.
  assert.ok(Math.abs(at(1) - 1) < 0.02, `score ${at(1)}`);
});

Deno.test("the drift score refuses a window that watches other layers", () => {
  assert.throws(
    () => driftScore(reference, [{ layer: "g", mean: [0, 0], variance: [1, 1] }]),
    (e: Error) => /watches/.test(e.message),
  );
});

Deno.test("the monitor scores nothing until its window holds 16 images", () => {
  const monitor = new DriftMonitor("m", reference, { window: 64, threshold: 0.5 });
  monitor.observe(spread(15, 0));
  assert.equal(monitor.report().score, null);
  assert.deepEqual(monitor.report().layers, []);
  monitor.observe(spread(1, 0));
  const report = monitor.report();
  assert.equal(report.window.samples, 16);
  assert.ok(report.score !== null && report.score < 0.05, `score ${report.score}`);
  assert.equal(report.layers[0].layer, "f");
});

Deno.test("the window forgets its oldest images: a shift raises drift, its end raises recovered", () => {
  const events: DriftEvent[] = [];
  const monitor = new DriftMonitor("m", reference, {
    window: 32,
    threshold: 0.5,
    onEvent: (e) => events.push(e),
  });
  monitor.observe(spread(32, 0));
  assert.equal(monitor.report().alert, false);
  monitor.observe(spread(32, 3));
  const shifted = monitor.report();
  assert.ok(shifted.alert && shifted.score! > 5, `score ${shifted.score}`);
  monitor.observe(spread(32, 0));
  const back = monitor.report();
  assert.ok(!back.alert && back.score! < 0.05, `score ${back.score}`);
  assert.deepEqual(events.map((e) => e.type), ["drift", "recovered"]);
  assert.deepEqual(back.events.map((e) => e.type), ["drift", "recovered"]);
  assert.ok(back.history.length >= 3);
});

Deno.test("the monitor reports the window's mean confidence beside the reference's", () => {
  const monitor = new DriftMonitor("m", reference, { window: 16, threshold: 0.5 });
  monitor.observe(batch(16, [0, 10], 0.4));
  assert.deepEqual(monitor.report().confidence, { reference: 0.9, window: 0.4000000059604645 });
});

Deno.test("the monitor refuses a batch that watches other layers than its reference", () => {
  const monitor = new DriftMonitor("m", reference, { window: 16, threshold: 0.5 });
  const wrong = { ...batch(2, [0, 0]), layers: [{ layer: "g", channels: 2 }] };
  assert.throws(() => monitor.observe(wrong), (e: Error) => /watches/.test(e.message));
  assert.equal(monitor.report().window.samples, 0);
});

// A tiny model fitted as a linear probe (fast), for the tests that need a real network.
async function tinyModel() {
  const digits = takePerClass(await digitFixtures(), 4, 0);
  const backbone = await tinyBackbone();
  const images = imagesToTensor(digits.images, backbone.input);
  const model = await adapt(backbone, { images, labels: digits.labels, classNames: digits.classNames }, {
    method: "lp",
  });
  return { model, images };
}

Deno.test("an adapted model carries the drift reference of its adaptation images", async () => {
  const { model, images } = await tinyModel();
  const ref = model.metadata.driftReference!;
  assert.equal(ref.samples, images.shape[0]);
  assert.deepEqual(ref.layers.map((l) => [l.layer, l.mean.length]), [
    ["relu1", 16],
    ["relu2", 32],
    ["relu3", 64],
    ["features", 64],
  ]);
  // Measured again on the same images, the reference is its own: score 0 up to float error.
  const again = await driftReference(model, images, 7);
  assert.ok(driftScore(ref, again.layers).score < 1e-6);
  images.dispose();
  model.dispose();
});

Deno.test("watched outputs reduced on the backend give the statistics JavaScript computes from them", async () => {
  const { model, images } = await tinyModel();
  const x = images.slice(0, 6);
  const inJs = (await model.predictObserved(x, 1)).statistics;
  const onDevice = await reducedStatistics((await model.predictWatched(x, 1)).watched);
  assert.equal(onDevice.width, inJs.width);
  assert.deepEqual(onDevice.layers, inJs.layers);
  inJs.rows.forEach((v, j) =>
    assert.ok(
      Math.abs(onDevice.rows[j] - v) < 1e-5 * (1 + Math.abs(v)),
      `value ${j}: ${onDevice.rows[j]} vs ${v}`,
    )
  );
  x.dispose();
  images.dispose();
  model.dispose();
});

Deno.test("observed predictions equal plain ones, and their moments equal the layers' own", async () => {
  const { model, images } = await tinyModel();
  const x = images.slice(0, 5);
  const plain = await model.predict(x, 2);
  const { predictions, statistics } = await model.predictObserved(x, 2);
  assert.deepEqual(predictions.map((p) => p.label), plain.map((p) => p.label));
  predictions.forEach((p, i) => assert.ok(Math.abs(p.score - plain[i].score) < 1e-5));
  const relu2 = tf.model({
    inputs: model.classifier.inputs,
    outputs: model.classifier.getLayer("relu2").output,
  });
  const direct = tf.tidy(() => {
    const a = relu2.predict(x) as tf.Tensor4D;
    return tf.concat([tf.mean(a, [1, 2]), tf.mean(tf.square(a), [1, 2])], 1).arraySync() as number[][];
  });
  // relu2's columns start after relu1's 2 x 16.
  for (let i = 0; i < 5; i++) {
    const row = statistics.rows.subarray(i * statistics.width + 32, i * statistics.width + 32 + 64);
    direct[i].forEach((v, j) =>
      assert.ok(Math.abs(row[j] - v) < 1e-4 * (1 + Math.abs(v)), `image ${i} col ${j}`)
    );
  }
  x.dispose();
  images.dispose();
  model.dispose();
});

Deno.test("bn-refresh sets each BN layer's running statistics to its training-mode input statistics", async () => {
  const { model } = await tinyBackbone();
  const digits = takePerClass(await digitFixtures(), 2, 0);
  // Darker, low-contrast digits: a new domain for the first layer.
  const images = tf.tidy(() =>
    tf.add(
      tf.mul(imagesToTensor(digits.images, { height: 28, width: 28, channels: 1, range: [0, 1] }), 0.3),
      0.2,
    )
  ) as tf.Tensor4D;
  const bn = batchNormLayers(model);
  const gammaBefore = bn[0].getWeights()[0].dataSync().slice();
  const report = await refreshBatchNorm(model, images, images.shape[0]);
  assert.equal(report.layersRefreshed, 4);
  assert.equal(report.images, 20);
  // The first BN's input is conv1(x), independent of any BN: its running mean is that batch mean now.
  const conv1 = tf.model({ inputs: model.inputs, outputs: model.getLayer("conv1").output });
  const expected = tf.tidy(() => tf.mean(conv1.predict(images) as tf.Tensor, [0, 1, 2]).dataSync());
  const roles = bn[0].weights.map((w) => w.originalName.split("/").pop());
  const mean = bn[0].getWeights()[roles.indexOf("moving_mean")].dataSync();
  expected.forEach((v, c) => assert.ok(Math.abs(mean[c] - v) < 1e-4, `channel ${c}: ${mean[c]} vs ${v}`));
  assert.deepEqual([...bn[0].getWeights()[roles.indexOf("gamma")].dataSync()], [...gammaBefore]);
  assert.ok(report.layers[0].meanShift > 0);
  images.dispose();
  model.dispose();
});

Deno.test("bn-refresh refuses images the model does not take", async () => {
  const { model } = await tinyBackbone();
  const wrong = tf.zeros([2, 32, 32, 1]) as tf.Tensor4D;
  await assert.rejects(
    () => refreshBatchNorm(model, wrong),
    (e: Error) => /BN refresh needs images/.test(e.message),
  );
  wrong.dispose();
  model.dispose();
});

Deno.test("the traffic window keeps the newest images per model and drops the oldest of any model past its bytes", () => {
  const traffic = new TrafficWindow({ images: 3, bytes: 100 });
  const image = (n: number, fill: number) => new Uint8Array(n).fill(fill);
  traffic.keep("a", [image(30, 1), image(30, 2)]);
  traffic.keep("b", [image(30, 3)]);
  traffic.keep("b", [image(30, 4)]); // 120 bytes: a's first image, the oldest, goes
  assert.deepEqual(traffic.images("a").map((x) => x[0]), [2]);
  assert.deepEqual(traffic.images("b").map((x) => x[0]), [3, 4]);
  traffic.keep("b", [image(10, 5), image(10, 6)]); // b holds at most 3: its 3 goes
  assert.deepEqual(traffic.images("b").map((x) => x[0]), [4, 5, 6]);
  assert.deepEqual(traffic.summary("b"), { images: 3, maxImages: 3, bytes: 50 });
  traffic.forget("b");
  assert.equal(traffic.summary("b").images, 0);
  traffic.keep("a", [image(101, 7)]); // larger than the whole budget: not kept
  assert.deepEqual(traffic.summary("a"), { images: 1, maxImages: 3, bytes: 30 });
});

Deno.test("the traffic window keeps its own copy of an image", () => {
  const traffic = new TrafficWindow({ images: 2, bytes: 100 });
  const bytes = new Uint8Array([1, 2, 3]);
  traffic.keep("a", [bytes]);
  bytes[0] = 9;
  assert.equal(traffic.images("a")[0][0], 1);
});
