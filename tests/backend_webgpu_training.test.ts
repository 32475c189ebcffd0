// The WebGPU training kernels against the cpu backend, on whatever adapter this machine has (Mesa's
// llvmpipe on CI: slow, so the shapes are small).
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { FusedMomentumOptimizer } from "../src/adapt/momentum_optimizer.ts";
import { batchNormTraining, movingAverage, relu6 } from "../src/backend/training_ops.ts";
import {
  registerWebgpuTrainingKernels,
  unregisterWebgpuTrainingKernels,
} from "../src/backend/webgpu_training.ts";
import { useFusedTrainingOps } from "../src/model/fused_training_layers.ts";
import { InferencePlan } from "../src/model/inference_plan.ts";
import { mobilenetV2ImageNet } from "../src/model/mobilenetv2_imagenet.ts";

registerWebgpuTrainingKernels();
const webgpu = await tf.setBackend("webgpu").catch(() => false);

/** Deterministic uniform values in [-1, 1) (mulberry32), so both backends see the same inputs. */
function uniform(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

function random(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(uniform(tf.util.sizeFromShape(shape), seed), shape);
}

/** Largest difference over largest reference magnitude. */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

/** Runs `f` on `backend` and returns what it returns as plain arrays. */
async function on(backend: "cpu" | "webgpu", f: () => tf.Tensor[]): Promise<Float32Array[]> {
  assert.ok(await tf.setBackend(backend));
  const outs = f();
  const values = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outs);
  return values;
}

/** Dispatches recorded while `f` runs on webgpu (every compute pass's dispatchWorkgroups). */
async function dispatchesOf(f: () => tf.Tensor[]): Promise<number> {
  const proto = (globalThis as unknown as { GPUComputePassEncoder: { prototype: GPUComputePassEncoder } })
    .GPUComputePassEncoder.prototype;
  const original = proto.dispatchWorkgroups;
  let count = 0;
  proto.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...args) {
    count++;
    return original.apply(this, args);
  };
  try {
    await on("webgpu", f);
  } finally {
    proto.dispatchWorkgroups = original;
  }
  return count;
}

/** BN in training mode (ReLU6 fused or not), with the gradients of a weighted sum, through the fused ops. */
function fusedOps(shape: number[], fusedRelu6: boolean): () => tf.Tensor[] {
  return () => {
    const c = shape[shape.length - 1];
    const x = tf.tidy(() => random(shape, 31).mul(3).add(random([c], 32)));
    const gamma = random([c], 33).add(1.5), beta = random([c], 34).mul(4);
    const r = random(shape, 35);
    let stats: tf.Tensor[] = [];
    const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const [y, mean, variance] = batchNormTraining(a, g, b, 1e-3, { relu6: fusedRelu6 });
      stats = [tf.keep(mean), tf.keep(variance)];
      return relu6(y.mul(1.5)).mul(r).sum();
    };
    const grads = tf.grads(f)([x, gamma, beta]);
    const forward = tf.tidy(() => batchNormTraining(x, gamma, beta, 1e-3, { relu6: fusedRelu6 })[0]);
    tf.dispose([x, gamma, beta, r]);
    return [forward, ...stats, ...grads];
  };
}

Deno.test({
  name: "fused batch norm (with and without ReLU6) and ReLU6 on webgpu equal tfjs's ops on cpu",
  ignore: !webgpu,
  fn: async () => {
    // 4096 rows and more, with channels divisible by 4: the vec4 kernels; the rest: the scalar ones.
    for (const shape of [[4, 5, 7, 3], [2, 9, 9, 20], [130, 12], [3, 33], [4, 32, 32, 8]]) {
      for (const fusedRelu6 of [false, true]) {
        const cpu = await on("cpu", fusedOps(shape, fusedRelu6));
        const gpu = await on("webgpu", fusedOps(shape, fusedRelu6));
        ["y", "mean", "variance", "dx", "dgamma", "dbeta"].forEach((name, i) => {
          const error = relativeError(gpu[i], cpu[i]);
          assert.ok(error < 1e-4, `${name} differs for [${shape}] (relu6: ${fusedRelu6}): ${error}`);
        });
      }
    }
    const edges = await on("webgpu", () => {
      const x = tf.tensor1d([-1, 0, 3, 6, 7, 6.0001, -0, 2.5, 5.99]);
      return [relu6(x), tf.grad((a: tf.Tensor) => relu6(a).sum())(x)];
    });
    assert.deepEqual([...edges[0]], [0, 0, 3, 6, 6, 6, 0, 2.5, Math.fround(5.99)]);
    // tfjs-layers' ReLU(maxValue 6) is relu then clip: no gradient at 0, a gradient at exactly 6.
    assert.deepEqual([...edges[1]], [0, 0, 1, 1, 0, 0, 0, 1, 1]);
  },
});

Deno.test({
  name: "fused batch norm on webgpu is one dispatch forward and one backward",
  ignore: !webgpu,
  fn: async () => {
    const run = () =>
      tf.tidy(() => {
        const x = random([2, 4, 4, 8], 1), gamma = tf.ones([8]), beta = tf.zeros([8]);
        const grads = tf.grads((a: tf.Tensor) => batchNormTraining(a, gamma, beta, 1e-3, { relu6: true })[0])(
          [
            x,
          ],
        );
        return [...grads];
      });
    // Inputs are uploaded by copies, not dispatches; ones() is a fill, the seed of the gradient another.
    const ours = await dispatchesOf(run);
    unregisterWebgpuTrainingKernels();
    const stock = await dispatchesOf(run).finally(() => registerWebgpuTrainingKernels());
    assert.ok(ours <= 4, `${ours} dispatches`);
    assert.ok(stock >= 5 * ours, `stock ${stock} vs ours ${ours}`);
  },
});

/** Batch-norm statistics far from zero (mean 1000): the one-pass variance must not cancel. */
Deno.test({
  name: "fused batch-norm statistics on webgpu stay accurate far from zero (mean 1000)",
  ignore: !webgpu,
  fn: async () => {
    const x = tf.tidy(() => random([16, 16, 16, 8], 41).mul(3.4).add(1000)); // vec4 lanes
    const values = await x.data();
    const [mean, variance] = await on("webgpu", () => {
      const [y, m, v] = batchNormTraining(x, tf.ones([8]), tf.zeros([8]), 1e-3);
      y.dispose();
      return [m, v];
    });
    for (let k = 0; k < 8; k++) {
      let sum = 0, squares = 0;
      const rows = values.length / 8;
      for (let r = 0; r < rows; r++) sum += values[r * 8 + k];
      for (let r = 0; r < rows; r++) squares += (values[r * 8 + k] - sum / rows) ** 2;
      assert.ok(Math.abs(mean[k] - sum / rows) < 1e-3, `mean ${k}: ${mean[k]} vs ${sum / rows}`);
      const expected = squares / rows;
      assert.ok(Math.abs(variance[k] - expected) / expected < 1e-4, `variance ${k}: ${variance[k]}`);
    }
    x.dispose();
  },
});

/** Three momentum-SGD steps on two variables, with tfjs' optimizer or ours; the variables after them. */
function momentumSteps(fused: boolean): tf.Tensor[] {
  const vars = [tf.variable(random([3, 5], 61)), tf.variable(random([700], 62))];
  const optimizer = fused ? new FusedMomentumOptimizer(0.037, 0.9) : tf.train.momentum(0.037, 0.9);
  for (let step = 0; step < 3; step++) {
    const grads = vars.map((v, i) => random(v.shape, 70 + 10 * step + i));
    optimizer.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: grads[i] })));
    tf.dispose(grads);
  }
  optimizer.dispose();
  const out = vars.map((v) => v.clone());
  tf.dispose(vars);
  return out;
}

Deno.test({
  name: "fused momentum and moving-average updates on webgpu equal tfjs's on cpu",
  ignore: !webgpu,
  fn: async () => {
    const cpu = await on("cpu", () => momentumSteps(false));
    const gpu = await on("webgpu", () => momentumSteps(true));
    cpu.forEach((expected, i) => assert.ok(relativeError(gpu[i], expected) < 1e-6, `variable ${i}`));
    const average = () => {
      const value = random([37], 81), batch = random([37], 82);
      const out = [movingAverage(value, batch, 0.9)];
      tf.dispose([value, batch]);
      return out;
    };
    const [expected] = await on("cpu", average);
    const [actual] = await on("webgpu", average);
    assert.ok(relativeError(actual, expected) < 1e-6);
  },
});

/** A small MobileNetV2-like net: conv, depthwise conv, BN + ReLU6, a residual add, padding, GAP, dense. */
function smallBnCnn(): tf.LayersModel {
  const input = tf.input({ shape: [12, 12, 3] });
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) =>
    layer.apply(x) as tf.SymbolicTensor;
  const bnRelu6 = (x: tf.SymbolicTensor) =>
    apply(tf.layers.reLU({ maxValue: 6 }), apply(tf.layers.batchNormalization(), x));
  let x = apply(tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }), input);
  x = bnRelu6(apply(tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, useBias: false }), x));
  const y = bnRelu6(apply(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: "same", useBias: false }), x));
  x = apply(tf.layers.add(), [
    x,
    apply(tf.layers.batchNormalization(), apply(tf.layers.conv2d({ filters: 8, kernelSize: 1 }), y)),
  ]);
  x = bnRelu6(apply(tf.layers.conv2d({ filters: 12, kernelSize: 1, useBias: false }), x));
  x = apply(tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }), x);
  x = bnRelu6(apply(tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, useBias: false }), x));
  x = apply(tf.layers.globalAveragePooling2d({}), x);
  return tf.model({ inputs: input, outputs: apply(tf.layers.dense({ units: 5 }), x) });
}

/** One momentum-SGD step of the small net with fixed weights: the loss and every weight after it. */
function trainOneStep(fused: boolean): tf.Tensor[] {
  const model = smallBnCnn();
  if (fused) assert.equal(useFusedTrainingOps(model), 15); // 5 BN, 4 ReLU6, 3 Conv2D, 2 padding, 1 depthwise
  const initial = model.weights.map((w, i) => random(w.shape as number[], 100 + i));
  model.setWeights(initial);
  tf.dispose(initial);
  const x = random([4, 12, 12, 3], 11);
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3], "int32"), 5);
  const optimizer = fused ? new FusedMomentumOptimizer(0.1, 0.9) : tf.train.momentum(0.1, 0.9);
  const loss = optimizer.minimize(
    () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
    true,
  )!;
  const weights = model.weights.map((w) => w.read().clone());
  tf.dispose([x, labels]);
  model.dispose();
  optimizer.dispose();
  return [loss, ...weights];
}

Deno.test({
  name: "one training step of a small BN CNN on webgpu's fused kernels gives cpu's weights and statistics",
  ignore: !webgpu,
  fn: async () => {
    const cpu = await on("cpu", () => trainOneStep(false));
    // The same step through the fallbacks on cpu leaves what the webgpu kernels may leave (tfjs' own).
    const start = tf.memory().numTensors;
    await on("cpu", () => trainOneStep(true));
    const cpuLeft = tf.memory().numTensors - start;
    const gpu = await on("webgpu", () => trainOneStep(true));
    assert.equal(tf.memory().numTensors - start - cpuLeft, cpuLeft, "tensors left behind");
    assert.equal(gpu.length, cpu.length);
    assert.ok(relativeError(gpu[0], cpu[0]) < 1e-5, "loss");
    cpu.forEach((expected, i) => assert.ok(relativeError(gpu[i], expected) < 1e-4, `weight ${i - 1}`));
  },
});

Deno.test({
  name:
    "conv2d and its input and filter gradients on webgpu equal cpu's: 1x1, windows, and what the stock kernels take",
  ignore: !webgpu,
  fn: async () => {
    const cases: [number[], number[], number, "same" | "valid"][] = [
      [[2, 6, 5, 8], [1, 1, 8, 12], 1, "same"],
      [[3, 4, 4, 16], [1, 1, 16, 4], 1, "valid"],
      // 1599 rows: chunks of the filter gradient and the last block of four rows both run short.
      [[1, 41, 39, 4], [1, 1, 4, 8], 1, "same"],
      [[4, 20, 20, 8], [1, 1, 8, 8], 1, "valid"],
      [[2, 6, 5, 7], [1, 1, 7, 9], 1, "same"], // channels not divisible by 4
      [[2, 7, 7, 4], [1, 1, 4, 4], 2, "same"], // strided
      [[2, 9, 9, 3], [3, 3, 3, 8], 2, "valid"],
      [[2, 17, 16, 3], [3, 3, 3, 8], 2, "same"], // MobileNetV2's first layer, several chunks
      [[2, 6, 6, 5], [3, 3, 5, 4], 1, "same"],
      [[2, 6, 6, 5], [2, 2, 5, 6], 1, "same"], // 6 output channels: the stock kernel
    ];
    for (const [xShape, filterShape, stride, pad] of cases) {
      const run = () => {
        const x = random(xShape, 91) as tf.Tensor4D, w = random(filterShape, 92) as tf.Tensor4D;
        const y = tf.conv2d(x, w, stride, pad);
        const r = tf.tidy(() => random(y.shape, 93));
        const [dx, dw] = tf.grads((a: tf.Tensor, f: tf.Tensor) =>
          tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, stride, pad).mul(r).sum()
        )([x, w]);
        tf.dispose([x, w, r]);
        return [y, dx, dw];
      };
      const expected = await on("cpu", run);
      const actual = await on("webgpu", run);
      ["y", "dx", "dw"].forEach((name, i) => {
        const error = relativeError(actual[i], expected[i]);
        assert.ok(error < 1e-5, `${name} of [${xShape}] * [${filterShape}] s${stride} ${pad}: ${error}`);
      });
    }
  },
});

Deno.test({
  name:
    "MobileNetV2's folded-BN inference plan on webgpu equals the model on cpu, in a third of the dispatches",
  ignore: !webgpu,
  fn: async () => {
    // Built on cpu: moving tensors off webgpu needs a synchronous read, which WebGPU under Deno lacks.
    assert.ok(await tf.setBackend("cpu"));
    const { model } = await mobilenetV2ImageNet({ inputSize: 32 });
    const x = tf.tidy(() => random([2, 32, 32, 3], 7).add(1).div(2));
    const expected = model.predict(x) as tf.Tensor;
    const wanted = await expected.data();
    expected.dispose();
    assert.ok(await tf.setBackend("webgpu"));
    const plan = InferencePlan.build(model);
    const planDispatches = await dispatchesOf(() => plan.run(x));
    const modelDispatches = await dispatchesOf(() => [model.predict(x) as tf.Tensor]);
    const [out] = plan.run(x);
    const planned = await out.data();
    out.dispose();
    assert.ok(relativeError(planned, wanted) < 1e-4, `${relativeError(planned, wanted)}`);
    assert.ok(planDispatches * 3 <= modelDispatches, `plan ${planDispatches} vs model ${modelDispatches}`);
    plan.dispose();
    tf.dispose(x);
    model.dispose();
  },
});

Deno.test({
  name:
    "depthwise conv input and filter gradients on webgpu equal cpu's across strides, paddings and channel counts",
  ignore: !webgpu,
  fn: async () => {
    const cases: [number[], number, number | [number, number], "same" | "valid"][] = [
      [[2, 7, 8, 8], 3, 1, "same"], // stride 1: the forward kernel on the turned filter
      [[2, 9, 7, 8], 3, 1, "valid"],
      [[2, 8, 7, 4], 3, 2, "same"],
      [[1, 9, 9, 12], 3, 2, "valid"],
      [[2, 6, 6, 4], 1, [2, 1], "valid"],
      [[3, 20, 21, 8], 3, 2, "same"], // enough output rows for several chunks of the filter gradient
      [[2, 5, 5, 6], 3, 1, "same"], // 6 channels: the stock kernels
    ];
    for (const [xShape, k, stride, pad] of cases) {
      const run = () => {
        const x = random(xShape, 93) as tf.Tensor4D, w = random([k, k, xShape[3], 1], 94) as tf.Tensor4D;
        const r = tf.tidy(() => random(tf.depthwiseConv2d(x, w, stride, pad).shape, 95));
        const grads = tf.grads((a: tf.Tensor, f: tf.Tensor) =>
          tf.depthwiseConv2d(a as tf.Tensor4D, f as tf.Tensor4D, stride, pad).mul(r).sum()
        )([x, w]);
        tf.dispose([x, w, r]);
        return grads;
      };
      const expected = await on("cpu", run);
      const actual = await on("webgpu", run);
      ["dx", "dw"].forEach((name, i) => {
        const error = relativeError(actual[i], expected[i]);
        assert.ok(error < 1e-5, `${name} of [${xShape}] k${k} s${stride} ${pad}: ${error}`);
      });
    }
  },
});
