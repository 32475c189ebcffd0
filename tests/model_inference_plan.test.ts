import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { adapt } from "../src/adapt/adapt.ts";
import { AdaptedModel } from "../src/adapt/adapted_model.ts";
import { attachHead } from "../src/adapt/classifier_head.ts";
import { convertBatchNorm } from "../src/adapt/bn_conversion.ts";
import { foldBatchNorm } from "../src/model/fold_batch_norm.ts";
import { InferencePlan } from "../src/model/inference_plan.ts";
import { loadBackbone } from "../src/model/registry.ts";
import { rejects, testBackend } from "./_setup.ts";

await testBackend();

// Largest |plan - model.predict| over every output, relative to the largest |model.predict|.
async function relativeError(model: tf.LayersModel, plan: InferencePlan, x: tf.Tensor, batchSize = 32) {
  const expected = model.predict(x, { batchSize }) as tf.Tensor | tf.Tensor[];
  const got = plan.run(x, batchSize);
  const wanted = Array.isArray(expected) ? expected : [expected];
  assert.equal(got.length, wanted.length);
  let worst = 0;
  for (const [i, e] of wanted.entries()) {
    assert.deepEqual(got[i].shape, e.shape);
    const [a, b] = [await e.data(), await got[i].data()];
    let scale = 0, diff = 0;
    for (let j = 0; j < a.length; j++) {
      scale = Math.max(scale, Math.abs(a[j]));
      diff = Math.max(diff, Math.abs(a[j] - b[j]));
    }
    assert.ok(scale > 0, `output ${i} is all zeros: the comparison would prove nothing`);
    worst = Math.max(worst, diff / scale);
  }
  tf.dispose([...wanted, ...got]);
  return worst;
}

// Gives every BatchNormalization layer statistics far from identity, so a wrong fold shows.
function randomizeBatchNorms(model: tf.LayersModel, seed: number) {
  for (const layer of model.layers.filter((l) => l.getClassName() === "BatchNormalization")) {
    const values = layer.weights.map((w, i) => {
      const role = w.originalName.split("/").pop();
      const [shape, s] = [w.shape as number[], seed + i];
      return role === "moving_variance"
        ? tf.randomUniform(shape, 0.2, 3, "float32", s)
        : role === "gamma"
        ? tf.randomUniform(shape, 0.5, 2, "float32", s)
        : tf.randomUniform(shape, -1, 1, "float32", s);
    });
    layer.setWeights(values);
    tf.dispose(values);
    seed += 10;
  }
}

// Largest |a - b|, read back asynchronously (WebGPU under Deno has no synchronous readback).
async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const [value] = await d.data();
  d.dispose();
  return value;
}

const folded = (plan: InferencePlan) => plan.steps.filter((s) => s.op !== "layer").flatMap((s) => s.layers);
const called = (plan: InferencePlan) => plan.steps.filter((s) => s.op === "layer").flatMap((s) => s.layers);

Deno.test("folding a batch norm into a convolution's weights gives the convolution-then-norm output", async () => {
  const x = tf.randomUniform([2, 5, 5, 3], -1, 1, "float32", 1) as tf.Tensor4D;
  const bn = {
    gamma: tf.randomUniform([4], 0.5, 2, "float32", 2) as tf.Tensor1D,
    beta: tf.randomUniform([4], -1, 1, "float32", 3) as tf.Tensor1D,
    movingMean: tf.randomUniform([4], -1, 1, "float32", 4) as tf.Tensor1D,
    movingVariance: tf.randomUniform([4], 0.2, 3, "float32", 5) as tf.Tensor1D,
    epsilon: 1e-3,
  };
  const norm = (y: tf.Tensor) =>
    tf.batchNorm(y, bn.movingMean, bn.movingVariance, bn.beta, bn.gamma, bn.epsilon);
  const kernel = tf.randomUniform([3, 3, 3, 4], -1, 1, "float32", 6) as tf.Tensor4D;
  const bias = tf.randomUniform([4], -1, 1, "float32", 7) as tf.Tensor1D;
  const f = foldBatchNorm(kernel, bias, bn);
  const [want, got] = tf.tidy(() => [
    norm(tf.add(tf.conv2d(x, kernel, 1, "same"), bias)),
    tf.add(tf.conv2d(x, f.kernel as tf.Tensor4D, 1, "same"), f.bias),
  ]);
  assert.ok((await maxAbsDiff(want, got)) < 1e-5);

  // Depthwise, multiplier 2: output channel c * 2 + m, so the kernel's last two axes index the norm.
  const dw = tf.randomUniform([3, 3, 2, 2], -1, 1, "float32", 8) as tf.Tensor4D;
  const g = foldBatchNorm(dw, null, bn);
  const [dwWant, dwGot] = tf.tidy(() => {
    const x2 = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, 2]) as tf.Tensor4D;
    return [
      norm(tf.depthwiseConv2d(x2, dw, 1, "valid")),
      tf.add(tf.depthwiseConv2d(x2, g.kernel as tf.Tensor4D, 1, "valid"), g.bias),
    ];
  });
  assert.ok((await maxAbsDiff(dwWant, dwGot)) < 1e-5);
  tf.dispose([x, kernel, bias, dw, want, got, dwWant, dwGot, f.kernel, f.bias, g.kernel, g.bias]);
  tf.dispose(Object.values(bn).filter((v) => v instanceof tf.Tensor));
});

Deno.test("folding refuses a batch norm whose channels are not the kernel's outputs", () => {
  const bn = { movingMean: tf.zeros([3]), movingVariance: tf.ones([3]), epsilon: 1e-3 } as const;
  assert.throws(
    () => foldBatchNorm(tf.zeros([3, 3, 3, 4]), null, bn as never),
    /cannot fold a batch norm of 3 channels into kernel \[3,3,3,4\]/,
  );
  tf.dispose(Object.values(bn).filter((v) => v instanceof tf.Tensor));
});

Deno.test("the tiny backbone's plan folds all four conv + BN + ReLU stages and matches predict", async () => {
  const backbone = await loadBackbone({ name: "tiny" });
  randomizeBatchNorms(backbone.model, 1);
  const plan = InferencePlan.build(backbone.model);
  assert.deepEqual(plan.steps.filter((s) => s.op !== "layer").map((s) => s.layers), [
    ["conv1", "bn1", "relu1"],
    ["conv2", "bn2", "relu2"],
    ["conv3", "bn3", "relu3"],
    ["conv4", "bn4", "relu4"],
  ]);
  assert.deepEqual(called(plan), ["features"]);
  const x = tf.randomUniform([5, 28, 28, 1], 0, 1, "float32", 2);
  assert.ok((await relativeError(backbone.model, plan, x)) < 1e-4);
  tf.dispose(x);
  plan.dispose();
  backbone.model.dispose();
});

Deno.test("MobileNetV2's plan folds all 33 BN layers and every padding, and matches predict", async () => {
  const backbone = await loadBackbone({ name: "mobilenetv2-imagenet" });
  const { probabilities } = attachHead(backbone, 4, "glorot", 0);
  const plan = InferencePlan.build(probabilities);
  const foldedLayers = folded(plan);
  assert.ok(backbone.batchNormLayers.every((name) => foldedLayers.includes(name)));
  assert.ok(foldedLayers.includes("Conv1_pad") && foldedLayers.includes("block_6_pad"));
  assert.deepEqual(called(plan).filter((name) => !name.endsWith("_add")), [
    "features",
    "head",
    "probabilities",
  ]);
  // Three images in batches of two: the plan batches like predict does.
  const x = tf.randomUniform([3, 96, 96, 3], 0, 1, "float32", 3);
  const backbonePlan = InferencePlan.build(backbone.model);
  assert.ok((await relativeError(backbone.model, backbonePlan, x, 2)) < 1e-4);
  assert.ok((await relativeError(probabilities, plan, x, 2)) < 1e-4);
  tf.dispose(x);
  plan.dispose();
  backbonePlan.dispose();
  probabilities.dispose();
});

Deno.test("a plan built after BN conversion matches the converted model", async () => {
  const backbone = await loadBackbone({ name: "tiny" });
  const target = tf.randomUniform([16, 28, 28, 1], 0.3, 1, "float32", 4) as tf.Tensor4D;
  const report = await convertBatchNorm(backbone.model, target, 8);
  assert.equal(report.layersConverted, 4);
  const plan = InferencePlan.build(backbone.model);
  assert.ok((await relativeError(backbone.model, plan, target)) < 1e-4);
  tf.dispose(target);
  plan.dispose();
  backbone.model.dispose();
});

Deno.test("an adapted classifier, saved and loaded, predicts through its plan what predict gives", async () => {
  const images = tf.randomUniform([12, 28, 28, 1], 0, 1, "float32", 5) as tf.Tensor4D;
  const labels = Array.from({ length: 12 }, (_, i) => i % 3);
  const trained = await adapt(await loadBackbone({ name: "tiny" }), {
    images,
    labels,
    classNames: ["a", "b", "c"],
  }, { epochs: 1 });
  const dir = await Deno.makeTempDir();
  await trained.save(dir);
  trained.dispose();
  const baseline = tf.memory().numTensors;
  const model = await AdaptedModel.load(dir);
  const plan = InferencePlan.build(model.classifier);
  assert.equal(folded(plan).filter((name) => name.startsWith("bn")).length, 4);
  assert.ok((await relativeError(model.classifier, plan, images, 5)) < 1e-4);
  plan.dispose();

  const predictions = await model.predict(images, 3, 5);
  const probabilities = model.classifier.predict(images) as tf.Tensor2D;
  const expected = await probabilities.array();
  probabilities.dispose();
  for (const [n, p] of predictions.entries()) {
    const ranked = expected[n].map((score, c) => ({ score, c })).sort((a, b) =>
      b.score - a.score || a.c - b.c
    );
    assert.deepEqual(p.topK.map((t) => t.label), ranked.map((r) => model.metadata.classNames[r.c]));
    p.topK.forEach((t, j) => assert.ok(Math.abs(t.score - ranked[j].score) < 1e-5));
  }
  const features = model.features(images, 5);
  const reference = tf.model({
    inputs: model.classifier.inputs,
    outputs: model.classifier.getLayer(model.metadata.featureLayer).output as tf.SymbolicTensor,
  }).predict(images) as tf.Tensor;
  const scale = tf.max(reference);
  assert.ok((await maxAbsDiff(features, reference)) < 1e-4 * (await scale.data())[0]);
  tf.dispose([features, reference, scale]);
  model.dispose();
  assert.equal(tf.memory().numTensors, baseline, "disposing the model frees its weights and plans");
  images.dispose();
  await Deno.remove(dir, { recursive: true });
});

// A layer no plan knows: doubles its input.
class Doubling extends tf.layers.Layer {
  static className = "Doubling";
  override call(inputs: tf.Tensor | tf.Tensor[]) {
    return tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, 2);
  }
}

Deno.test("layers the plan does not know, or cannot fuse, are called as predict calls them", async () => {
  const input = tf.input({ shape: [12, 12, 3] });
  let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", name: "conv_a" }).apply(input);
  x = new Doubling({ name: "doubling" }).apply(x); // conv_a's output is not read by a BN: no fold
  x = tf.layers.batchNormalization({ name: "bn_a" }).apply(x);
  x = tf.layers.leakyReLU({ name: "leaky" }).apply(x);
  x = tf.layers.conv2d({ filters: 4, kernelSize: 1, activation: "sigmoid", name: "conv_sigmoid" }).apply(x);
  x = tf.layers.batchNormalization({ name: "bn_b" }).apply(x); // after a sigmoid: no fold
  x = tf.layers.conv2d({ filters: 4, kernelSize: 3, name: "conv_c" }).apply(x);
  x = tf.layers.batchNormalization({ name: "bn_c" }).apply(x);
  x = tf.layers.leakyReLU({ name: "leaky_c" }).apply(x); // BN folds, the activation stays a layer
  x = tf.layers.dropout({ rate: 0.5, name: "dropout" }).apply(x);
  const model = tf.model({ inputs: input, outputs: x as tf.SymbolicTensor });
  randomizeBatchNorms(model, 6);
  const plan = InferencePlan.build(model);
  assert.deepEqual(called(plan), ["doubling", "bn_a", "leaky", "conv_sigmoid", "bn_b", "leaky_c", "dropout"]);
  assert.deepEqual(folded(plan), ["conv_a", "conv_c", "bn_c"]);
  const images = tf.randomUniform([3, 12, 12, 3], -1, 1, "float32", 7);
  assert.ok((await relativeError(model, plan, images)) < 1e-4);
  tf.dispose(images);
  plan.dispose();
  model.dispose();
});

Deno.test("paddings, strides, dilations, depth multipliers and biases all fold exactly", async () => {
  const input = tf.input({ shape: [17, 15, 3] });
  const convBn = (x: tf.SymbolicTensor, layer: tf.layers.Layer, act?: tf.layers.Layer) => {
    let y = tf.layers.batchNormalization().apply(layer.apply(x)) as tf.SymbolicTensor;
    if (act) y = act.apply(y) as tf.SymbolicTensor;
    return y;
  };
  let x = tf.layers.zeroPadding2d({ padding: [[1, 2], [0, 1]] }).apply(input) as tf.SymbolicTensor;
  x = convBn(x, tf.layers.conv2d({ filters: 6, kernelSize: [3, 2], strides: 2 }), tf.layers.reLU());
  x = convBn(
    x,
    tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: "same", useBias: true }),
    tf.layers.reLU({ maxValue: 6 }),
  );
  x = convBn(
    x,
    tf.layers.conv2d({ filters: 5, kernelSize: 3, dilationRate: 2, padding: "same", useBias: false }),
    tf.layers.activation({ activation: "relu6" }),
  );
  x = convBn(x, tf.layers.depthwiseConv2d({ kernelSize: 2, strides: 2, padding: "valid", useBias: false }));
  // A positive bias keeps the last ReLU's output from being all zeros (nothing to compare).
  x = tf.layers.conv2d({
    filters: 3,
    kernelSize: 1,
    activation: "relu",
    biasInitializer: tf.initializers.constant({ value: 1 }),
  }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: x });
  // Fixed kernels: glorot's defaults are unseeded, and a test must not depend on the draw.
  for (const [i, layer] of model.layers.entries()) {
    const kernels = layer.weights.filter((w) => /kernel$/.test(w.originalName));
    if (kernels.length === 0) continue;
    const values = layer.weights.map((w, j) =>
      /kernel$/.test(w.originalName)
        ? tf.randomUniform(w.shape as number[], -0.5, 0.5, "float32", 100 + 10 * i + j)
        : w.read().clone()
    );
    layer.setWeights(values);
    tf.dispose(values);
  }
  randomizeBatchNorms(model, 8);
  const plan = InferencePlan.build(model);
  assert.deepEqual(called(plan), []);
  assert.deepEqual(plan.steps.map((s) => [s.op, s.activation]), [
    ["conv2d", "relu"],
    ["depthwiseConv2d", "relu6"],
    ["conv2d", "relu6"],
    ["depthwiseConv2d", "linear"],
    ["conv2d", "relu"],
  ]);
  const images = tf.randomUniform([2, 17, 15, 3], -1, 1, "float32", 9);
  assert.ok((await relativeError(model, plan, images)) < 1e-4);
  tf.dispose(images);
  plan.dispose();
  model.dispose();
});

Deno.test("outputs read twice or returned by the model are never fused through", async () => {
  const input = tf.input({ shape: [8, 8, 4] });
  const conv = (name: string) => tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", name });
  const bn = (name: string) => tf.layers.batchNormalization({ name });
  // Residual: bn_a's output is read by relu_a and by the add, so relu_a is its own step.
  const a = bn("bn_a").apply(conv("conv_a").apply(input)) as tf.SymbolicTensor;
  const reluA = tf.layers.reLU({ name: "relu_a" }).apply(a) as tf.SymbolicTensor;
  const b = bn("bn_b").apply(conv("conv_b").apply(reluA)) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: "add" }).apply([a, b]) as tf.SymbolicTensor;
  // conv_c's output feeds bn_c and a pooling: bn_c cannot fold.
  const c = conv("conv_c").apply(sum) as tf.SymbolicTensor;
  const bnC = bn("bn_c").apply(c) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({ name: "pool_c" }).apply(c) as tf.SymbolicTensor;
  // bn_d's output is a model output: relu_d cannot fuse into it. A padding read twice stays a layer.
  const d = bn("bn_d").apply(conv("conv_d").apply(bnC)) as tf.SymbolicTensor;
  const reluD = tf.layers.reLU({ name: "relu_d" }).apply(d) as tf.SymbolicTensor;
  const padded = tf.layers.zeroPadding2d({ padding: 1, name: "pad" }).apply(reluD) as tf.SymbolicTensor;
  const e = conv("conv_e").apply(padded) as tf.SymbolicTensor;
  const f = tf.layers.conv2d({ filters: 2, kernelSize: 3, name: "conv_f" }).apply(
    padded,
  ) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [d, pooled, e, f] });
  randomizeBatchNorms(model, 10);
  const plan = InferencePlan.build(model);
  assert.deepEqual(plan.steps.filter((s) => s.op !== "layer").map((s) => s.layers), [
    ["conv_a", "bn_a"],
    ["conv_b", "bn_b"],
    ["conv_c"],
    ["conv_d", "bn_d"],
    ["conv_e"],
    ["conv_f"],
  ]);
  assert.deepEqual(called(plan).sort(), ["add", "bn_c", "pad", "pool_c", "relu_a", "relu_d"]);
  const images = tf.randomUniform([3, 8, 8, 4], -1, 1, "float32", 11);
  assert.ok((await relativeError(model, plan, images, 2)) < 1e-4);
  tf.dispose(images);
  plan.dispose();
  model.dispose();
});

Deno.test("channels-first layers, and norms over other axes, are called, not fused, and still match", async () => {
  const input = tf.input({ shape: [3, 10, 10] });
  let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, dataFormat: "channelsFirst", name: "conv" }).apply(
    input,
  );
  x = tf.layers.batchNormalization({ axis: 1, name: "bn" }).apply(x);
  // Channels last again, and a norm over the rows (6 of them) after a 4-filter convolution.
  x = tf.layers.permute({ dims: [2, 3, 1], name: "to_last" }).apply(x);
  x = tf.layers.conv2d({ filters: 4, kernelSize: 3, name: "conv_last" }).apply(x);
  x = tf.layers.batchNormalization({ axis: 1, name: "bn_rows" }).apply(x);
  const model = tf.model({ inputs: input, outputs: x as tf.SymbolicTensor });
  randomizeBatchNorms(model, 12);
  const plan = InferencePlan.build(model);
  assert.deepEqual(called(plan), ["conv", "bn", "to_last", "bn_rows"]);
  assert.deepEqual(folded(plan), ["conv_last"]);
  const images = tf.randomUniform([2, 3, 10, 10], -1, 1, "float32", 13);
  assert.ok((await relativeError(model, plan, images)) < 1e-4);
  tf.dispose(images);
  plan.dispose();
  model.dispose();
});

Deno.test("a plan frees what it computes and what it owns, and checks its input", async () => {
  const backbone = await loadBackbone({ name: "tiny" });
  const [x, gray] = [tf.randomUniform([7, 28, 28, 1]), tf.zeros([1, 28, 28, 3])];
  const baseline = tf.memory().numTensors;
  const plan = InferencePlan.build(backbone.model);
  for (let i = 0; i < 2; i++) tf.dispose(plan.run(x, 3));
  assert.throws(() => plan.run(gray), /takes \[N,28,28,1\], got \[1,28,28,3\]/);
  plan.dispose();
  assert.equal(tf.memory().numTensors, baseline);
  await rejects(Promise.resolve().then(() => plan.run(x)), "plan_disposed");
  tf.dispose([x, gray]);
  backbone.model.dispose();
});

Deno.test("a plan keeps the weights it was built with: later writes to the model do not reach it", async () => {
  const backbone = await loadBackbone({ name: "tiny" });
  const x = tf.randomUniform([2, 28, 28, 1], 0, 1, "float32", 14);
  const plan = InferencePlan.build(backbone.model);
  const [before] = plan.run(x);
  const conv1 = backbone.model.getLayer("conv1");
  const zeros = conv1.getWeights().map((w) => tf.zerosLike(w));
  conv1.setWeights(zeros);
  tf.dispose(zeros);
  const [after] = plan.run(x);
  assert.equal(await maxAbsDiff(before, after), 0);
  tf.dispose([x, before, after]);
  plan.dispose();
  backbone.model.dispose();
});
