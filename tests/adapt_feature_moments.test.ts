import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { featureMoments, featureMomentsOf } from "../src/adapt/feature_moments.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { tinyBackbone } from "../src/model/tiny.ts";
import { digitFixtures, testBackend } from "./_setup.ts";

await testBackend();

Deno.test("the moments of features predicted already are featureMoments' own, to the bit", async () => {
  const backbone = await tinyBackbone();
  const digits = await digitFixtures();
  const images = imagesToTensor(digits.images.slice(0, 10), backbone.input);
  const features = backbone.model.predict(images, { batchSize: 4 }) as tf.Tensor2D;
  const measured = await featureMoments(backbone.model, images, 4);
  assert.deepEqual(await featureMomentsOf(features), measured);
  assert.ok(measured.meanSquaredNorm > 0 && measured.standardizedSquaredNorm > 0);
  tf.dispose([images, features]);
  backbone.model.dispose();
});
