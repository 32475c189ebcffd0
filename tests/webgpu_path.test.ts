// The real WebGPU path, end to end: on CI machines the adapter is Mesa's llvmpipe, so this is slow but real.
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { adapt } from "../src/adapt/adapt.ts";
import { convertBatchNorm } from "../src/adapt/bn_conversion.ts";
import { initBackend } from "../src/backend/init_backend.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { mobilenetV2ImageNet } from "../src/model/mobilenetv2_imagenet.ts";
import { tinyBackbone } from "../src/model/tiny.ts";
import { digitFixtures, photoFixtures } from "./_setup.ts";

await initBackend("webgpu");

Deno.test("on WebGPU, BN conversion keeps the default backbone's eval output within 1e-4", async () => {
  assert.equal(tf.getBackend(), "webgpu");
  const backbone = await mobilenetV2ImageNet();
  const images = imagesToTensor(await photoFixtures(), backbone.input);
  const report = await convertBatchNorm(backbone.model, images, 8);
  assert.equal(report.layersConverted, 33);
  assert.ok(report.maxAbsOutputDiff < 1e-4, `${report.maxAbsOutputDiff}`);
  images.dispose();
  backbone.model.dispose();
});

Deno.test("on WebGPU, a DAFT job trains, keeps its best checkpoint and frees its tensors", async () => {
  const digits = await digitFixtures();
  const keep = digits.labels.map((y, i) => [y, i]).filter(([y], i, all) =>
    y < 3 && all.slice(0, i).filter(([z]) => z === y).length < 8
  );
  const backbone = await tinyBackbone();
  const images = imagesToTensor(keep.map(([, i]) => digits.images[i]), backbone.input);
  const baseline = tf.memory().numTensors;
  const model = await adapt(backbone, { images, labels: keep.map(([y]) => y), classNames: ["0", "1", "2"] }, {
    epochs: 2,
    minSteps: 0,
    batchSize: 8,
  });
  assert.equal(model.metadata.backend, "webgpu");
  assert.equal(model.metadata.metrics.history.length, 2);
  assert.ok(model.metadata.bnConversion!.maxAbsOutputDiff < 1e-4);
  assert.ok(Number.isFinite(model.metadata.metrics.history[1].trainLoss));
  model.dispose();
  assert.ok(tf.memory().numTensors <= baseline, `${tf.memory().numTensors} > ${baseline}`);
  images.dispose();
});
