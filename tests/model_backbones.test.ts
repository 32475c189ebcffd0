import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { batchNormInputStatistics } from "../src/adapt/target_statistics.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { listBackbones, loadBackbone } from "../src/model/registry.ts";
import { mobilenetV2ImageNet } from "../src/model/mobilenetv2_imagenet.ts";
import { FIXTURES, photoFixtures, testBackend } from "./_setup.ts";
import { rejects } from "./_setup.ts";

await testBackend();

Deno.test("the registry lists the default MobileNetV2 and the tiny backbone", () => {
  const names = listBackbones().map((b) => b.name);
  assert.ok(names.includes("mobilenetv2-imagenet") && names.includes("tiny"), names.join());
});

Deno.test("MobileNetV2-ImageNet gives 96 features from 96x96 RGB, with 33 BN layers up to block_10", async () => {
  const backbone = await loadBackbone({ name: "mobilenetv2-imagenet" });
  assert.deepEqual(backbone.input, { height: 96, width: 96, channels: 3, range: [0, 1] });
  assert.equal(backbone.featureDim, 96);
  assert.equal(backbone.batchNormLayers.length, 33);
  assert.equal(backbone.batchNormLayers.at(-1), "block_10_project_BN");
  assert.equal(backbone.provenance.package, "nsfwjs");
  assert.equal(backbone.provenance.version, "4.4.0");
  const out = backbone.model.predict(tf.zeros([2, 96, 96, 3])) as tf.Tensor;
  assert.deepEqual(out.shape, [2, 96]);
  tf.dispose(out);
  backbone.model.dispose();
});

Deno.test("MobileNetV2's input size and cut layer are configurable, and checked", async () => {
  const backbone = await mobilenetV2ImageNet({ inputSize: 64, cutLayer: "block_6_project_BN" });
  assert.equal(backbone.input.height, 64);
  assert.equal(backbone.featureDim, 64);
  assert.equal(backbone.batchNormLayers.at(-1), "block_6_project_BN");
  backbone.model.dispose();
  await rejects(mobilenetV2ImageNet({ inputSize: 100 }), "invalid_input_size");
  await rejects(mobilenetV2ImageNet({ cutLayer: "block_99" }), "unknown_layer");
});

Deno.test("each build of a backbone has its own weights", async () => {
  const a = await loadBackbone({ name: "tiny" });
  const b = await loadBackbone({ name: "tiny" });
  a.model.weights[0].write(tf.zerosLike(a.model.weights[0].read()));
  assert.notEqual(tf.sum(tf.abs(b.model.weights[0].read())).dataSync()[0], 0);
  a.model.dispose();
  b.model.dispose();
});

Deno.test("[0, 1] input scaling matches the statistics the pretrained layers were calibrated on", async () => {
  // Real photos scaled the way the weights expect land near each BN layer's running statistics. Keras'
  // MobileNetV2 convention is [-1, 1], but this checkpoint's statistics sit much closer to [0, 1] (nsfwjs
  // feeds x / 255), at the first BN layer and all later ones.
  const photos = await photoFixtures();
  const backbone = await mobilenetV2ImageNet();
  const bn = backbone.model.getLayer("bn_Conv1");
  const [mean, variance] = [bn.getWeights()[2].dataSync(), bn.getWeights()[3].dataSync()];
  const gap = async (range: [number, number]) => {
    const images = imagesToTensor(photos, { ...backbone.input, range });
    const [stats] = await batchNormInputStatistics(backbone.model, [bn], images, photos.length);
    images.dispose();
    let sum = 0;
    for (let c = 0; c < mean.length; c++) {
      sum += Math.abs(stats.mean[c] - mean[c]) / Math.sqrt(variance[c] + 1e-3);
    }
    return sum / mean.length;
  };
  const [right, wrong] = [await gap([0, 1]), await gap([-1, 1])];
  assert.ok(right * 2 < wrong, `[0,1]: ${right}, [-1,1]: ${wrong}`);
  backbone.model.dispose();
});

Deno.test("the tiny backbone gives 64 features from 28x28 gray and has 4 BN layers", async () => {
  const backbone = await loadBackbone({ name: "tiny" });
  assert.deepEqual(backbone.input, { height: 28, width: 28, channels: 1, range: [0, 1] });
  assert.equal(backbone.featureDim, 64);
  assert.deepEqual(backbone.batchNormLayers, ["bn1", "bn2", "bn3", "bn4"]);
  assert.match(backbone.provenance.notes ?? "", /Fashion-MNIST/);
  backbone.model.dispose();
});

Deno.test("any LayersModel directory becomes a backbone cut at a named layer", async () => {
  const backbone = await loadBackbone({ name: "path", path: `${FIXTURES}tiny`, featureLayer: "relu3" });
  assert.equal(backbone.featureDim, 64);
  assert.deepEqual(backbone.batchNormLayers, ["bn1", "bn2", "bn3"]);
  assert.equal(backbone.provenance.source, "path");
  backbone.model.dispose();
});

Deno.test("an unknown backbone, a broken path or a missing layer gives a clear error", async () => {
  const err = await rejects(loadBackbone({ name: "resnet9000" }), "unknown_backbone");
  assert.ok((err.details.available as string[]).includes("tiny"));
  await rejects(loadBackbone({ name: "path", path: "/nonexistent", featureLayer: "x" }), "model_not_found");
  await rejects(loadBackbone({ name: "path", path: `${FIXTURES}tiny` }), "invalid_backbone");
  await rejects(
    loadBackbone({ name: "path", path: `${FIXTURES}tiny`, featureLayer: "nope" }),
    "unknown_layer",
  );
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/model.json`, "{not json");
  await rejects(loadBackbone({ name: "path", path: dir, featureLayer: "x" }), "invalid_model");
  await Deno.writeTextFile(
    `${dir}/model.json`,
    JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ["w.bin"], weights: [] }] }),
  );
  await rejects(loadBackbone({ name: "path", path: dir, featureLayer: "x" }), "invalid_model");
  await Deno.remove(dir, { recursive: true });
});
