import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { startWasmBackend, stopWasmBackend } from "../src/backend/start_wasm_backend.ts";
import { FusedMomentumOptimizer } from "../src/adapt/momentum_optimizer.ts";
import {
  batchNormTraining,
  channelMoments,
  momentumUpdate,
  movingAverage,
  relu6,
} from "../src/backend/training_ops.ts";
import { registerWasmTrainingKernels } from "../src/backend/wasm_training.ts";
import { useFusedTrainingOps } from "../src/model/fused_training_layers.ts";
import { wasmTestThreads } from "./_wasm_threads.ts";
import type { WasmBackend } from "../src/backend/_wasm_scratch.ts";
import { setKernelThreading, simdKernels, startedHelperThread } from "../src/backend/_wasm_simd.ts";

registerWasmTrainingKernels();

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

/**
 * Makes wasm the backend, on the build these tests run on (see _wasm_threads.ts); on the threaded build,
 * once the SIMD kernels' helper thread is up, so that large enough calls are shared with it.
 */
async function useWasm() {
  const build = await startWasmBackend({ threads: wasmTestThreads() });
  assert.equal(build.threads, wasmTestThreads(), build.fallbackReason ?? "");
  if (build.threads > 1) assert.ok(await startedHelperThread(tf.backend() as unknown as WasmBackend));
}

/** Runs `f` on `backend` and returns what it returns as plain arrays. */
async function on(backend: "cpu" | "wasm", f: () => tf.Tensor[]): Promise<Float32Array[]> {
  if (backend === "wasm") await useWasm();
  else assert.ok(await tf.setBackend(backend));
  const outs = f();
  const values = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outs);
  return values;
}

type Padding = "same" | "valid" | [[number, number], [number, number], [number, number], [number, number]];

interface ConvCase {
  kind: "conv2d" | "depthwise";
  input: [number, number, number, number];
  kernel: number;
  stride: number | [number, number];
  pad: Padding;
  /** conv2d output channels (default 5). */
  outChannels?: number;
}

const EXPLICIT: Padding = [[0, 0], [1, 2], [0, 1], [0, 0]];

function convCases(kind: ConvCase["kind"]): ConvCase[] {
  const cases: ConvCase[] = [];
  for (const stride of [1, 2, [2, 1] as [number, number]]) {
    for (const pad of ["same", "valid", EXPLICIT] as Padding[]) {
      for (const kernel of [1, 3]) {
        for (const size of [7, 8]) cases.push({ kind, input: [2, size, size + 1, 3], kernel, stride, pad });
      }
    }
  }
  return cases;
}

/** The gradients of `sum(conv(x, w) * r)` with respect to `x` and `w`. */
function convGrads(c: ConvCase): () => tf.Tensor[] {
  return () => {
    const channels = c.input[3];
    const filterShape = c.kind === "conv2d"
      ? [c.kernel, c.kernel + 1, channels, c.outChannels ?? 5]
      : [c.kernel, c.kernel, channels, 1];
    const x = random(c.input, 1);
    const w = random(filterShape, 2);
    const conv = (a: tf.Tensor, b: tf.Tensor) =>
      c.kind === "conv2d"
        ? tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad)
        : tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad);
    const r = tf.tidy(() => random(conv(x, w).shape, 3));
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).mul(r).sum())([x, w]);
    tf.dispose([x, w, r]);
    return grads;
  };
}

async function assertGradsMatchCpu(cases: ConvCase[]) {
  for (const c of cases) {
    const [dxCpu, dwCpu] = await on("cpu", convGrads(c));
    const [dxWasm, dwWasm] = await on("wasm", convGrads(c));
    const label = JSON.stringify(c);
    assert.ok(relativeError(dxWasm, dxCpu) < 1e-4, `input gradient differs for ${label}`);
    assert.ok(relativeError(dwWasm, dwCpu) < 1e-4, `filter gradient differs for ${label}`);
  }
}

Deno.test("registering is idempotent and names the kernels it provides", () => {
  const first = registerWasmTrainingKernels();
  const second = registerWasmTrainingKernels();
  assert.deepEqual(second, first);
  for (
    const name of [
      "Conv2DBackpropFilter",
      "Conv2DBackpropInput",
      "DepthwiseConv2dNativeBackpropFilter",
      "DepthwiseConv2dNativeBackpropInput",
    ]
  ) {
    assert.ok(first.includes(name), name);
    assert.ok(tf.getKernel(name, "wasm"), name);
  }
});

Deno.test("conv2d gradients on wasm equal cpu's across strides, paddings and kernel sizes", async () => {
  await assertGradsMatchCpu(convCases("conv2d"));
});

Deno.test("depthwiseConv2d gradients on wasm equal cpu's across strides, paddings and kernel sizes", async () => {
  await assertGradsMatchCpu(convCases("depthwise"));
});

Deno.test("conv2d gradients on wasm equal cpu's for MobileNet-like shapes", async () => {
  await assertGradsMatchCpu([
    { kind: "conv2d", input: [2, 17, 17, 3], kernel: 3, stride: 2, pad: "valid" },
    { kind: "conv2d", input: [2, 12, 12, 24], kernel: 1, stride: 1, pad: "same" },
    { kind: "conv2d", input: [2, 12, 12, 40], kernel: 1, stride: 1, pad: "valid" },
    { kind: "depthwise", input: [2, 13, 13, 24], kernel: 3, stride: 2, pad: "valid" },
    { kind: "depthwise", input: [2, 12, 12, 40], kernel: 3, stride: 1, pad: "same" },
  ]);
});

Deno.test("conv2d filter gradients on wasm equal cpu's with wide layers: full register blocks and their remainders", async () => {
  await assertGradsMatchCpu([
    { kind: "conv2d", input: [3, 9, 9, 16], kernel: 1, stride: 1, pad: "valid", outChannels: 24 },
    { kind: "conv2d", input: [2, 9, 10, 18], kernel: 1, stride: 1, pad: "same", outChannels: 21 },
    { kind: "conv2d", input: [2, 9, 9, 8], kernel: 3, stride: 2, pad: "same", outChannels: 16 },
    { kind: "conv2d", input: [2, 11, 11, 3], kernel: 3, stride: 2, pad: EXPLICIT, outChannels: 32 },
  ]);
});

Deno.test("depthwise 3-wide filter gradients on wasm equal cpu's with vector lanes and a remainder, on rows narrower than the filter", async () => {
  await assertGradsMatchCpu([
    { kind: "depthwise", input: [2, 9, 11, 7], kernel: 3, stride: 2, pad: "same" },
    { kind: "depthwise", input: [2, 9, 11, 7], kernel: 3, stride: 1, pad: EXPLICIT },
    { kind: "depthwise", input: [3, 5, 2, 12], kernel: 3, stride: 1, pad: "same" },
    {
      kind: "depthwise",
      input: [1, 6, 1, 9],
      kernel: 3,
      stride: [1, 2],
      pad: [[0, 0], [1, 1], [2, 3], [0, 0]],
    },
  ]);
});

Deno.test("conv gradients on wasm equal cpu's for odd geometries: wide padding, kernels smaller or larger than the stride", async () => {
  const geometries: Omit<ConvCase, "kind">[] = [
    { input: [2, 4, 5, 3], kernel: 1, stride: 2, pad: [[0, 0], [0, 5], [2, 3], [0, 0]] },
    { input: [2, 9, 9, 3], kernel: 5, stride: 3, pad: "same" },
    { input: [2, 8, 8, 3], kernel: 2, stride: 2, pad: "valid" },
    { input: [2, 6, 6, 3], kernel: 3, stride: 1, pad: [[0, 0], [3, 0], [0, 4], [0, 0]] },
    { input: [1, 11, 10, 3], kernel: 3, stride: [3, 2], pad: "same" },
  ];
  await assertGradsMatchCpu(
    geometries.flatMap((g) => [{ kind: "conv2d", ...g }, { kind: "depthwise", ...g }]),
  );
});

Deno.test("the conv gradients reject what they do not support, naming the kernel", async () => {
  await useWasm();
  const x = tf.zeros([1, 4, 4, 2]);
  const dy = tf.zeros([1, 4, 4, 4]);
  assert.throws(
    () =>
      tf.engine().runKernel("DepthwiseConv2dNativeBackpropFilter", { x, dy }, {
        strides: 1,
        pad: "same",
        dilations: 1,
        filterShape: [3, 3, 2, 2],
      }),
    /DepthwiseConv2dNativeBackpropFilter.*channel multiplier 1/,
  );
  assert.throws(
    () =>
      tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
        strides: 1,
        pad: "same",
        dataFormat: "NCHW",
        filterShape: [3, 3, 2, 4],
      }),
    /Conv2DBackpropFilter.*NHWC/,
  );
  tf.dispose([x, dy]);
});

/** The replaced stock kernels against cpu, on the shapes batch-norm and ReLU6 gradients use, and others. */
Deno.test("Sum, Mean, Tile, Slice, Gather, Identity, Cast, comparisons, logicalAnd and where on wasm equal cpu's", async () => {
  const run = () => {
    const x = random([3, 5, 4, 6], 7);
    const y = random([3, 5, 4, 6], 12).mul(2);
    const ge = tf.greaterEqual(x, 0), le = tf.lessEqual(y, x);
    const outs = [
      tf.sum(x, [0, 1, 2]),
      tf.mean(x, [0, 1, 2], true),
      tf.sum(x, 0),
      tf.mean(x, [1, 2]),
      tf.sum(x),
      tf.tile(random([1, 1, 1, 6], 8), [3, 5, 4, 1]),
      tf.tile(random([2, 1, 3], 9), [2, 4, 3]),
      tf.slice(x, [1, 1, 0, 2], [2, 3, 4, 3]),
      tf.slice(x, [0, 1, 1, 0], [3, 4, 3, 6]),
      tf.clone(x),
      tf.cast(x, "float32"),
      tf.cast(x.mul(10), "int32").cast("float32"),
      ge.cast("float32"),
      le.cast("float32"),
      tf.lessEqual(x, tf.scalar(0.5)).cast("float32"),
      tf.greaterEqual(tf.scalar(0.5), x).cast("float32"),
      tf.lessEqual(x, tf.ones([6])).cast("float32"),
      tf.logicalAnd(ge, le).cast("float32"),
      tf.logicalAnd(
        tf.greaterEqual(x.reshape([-1]).slice(0, 7), 0),
        tf.lessEqual(y.reshape([-1]).slice(0, 7), 0),
      )
        .cast("float32"),
      tf.where(le, x, y),
      tf.gather(x, [2, 0, 2]),
      tf.gather(x, tf.tensor2d([[4, 1], [0, 0]], undefined, "int32"), 1),
      tf.gather(x, [5, 0], -1),
      tf.gather(x, [], 2),
      tf.gather(tf.cast(x.mul(10), "int32"), [1, 1], 0).cast("float32"),
    ];
    tf.dispose([x, y, ge, le]);
    return outs;
  };
  const cpu = await on("cpu", run);
  const wasm = await on("wasm", run);
  cpu.forEach((expected, i) => assert.ok(relativeError(wasm[i], expected) < 1e-6, `output ${i}`));
});

Deno.test("a gather index out of range is refused on wasm, as on cpu", async () => {
  await useWasm();
  const x = tf.zeros([3, 2]);
  assert.throws(() => tf.gather(x, [0, 3]), /GatherV2: the index value 3 is not in \[0, 2\]/);
  assert.throws(() => tf.gather(x, [-1]), /GatherV2: the index value -1 is not in \[0, 2\]/);
  x.dispose();
});

Deno.test("a cast to the dtype a tensor has shares its data on wasm, and outlives the tensor", async () => {
  await useWasm();
  const x = random([4, 5, 6], 21);
  const expected = Array.from(await x.data());
  const y = tf.cast(x, "float32");
  assert.equal(y.dataId, x.dataId);
  x.dispose();
  assert.deepEqual(Array.from(await y.data()), expected);
  y.dispose();
});

Deno.test("Sum and Mean over leading axes on wasm count exactly", async () => {
  await useWasm();
  const ones = tf.ones([16, 48, 48, 3]);
  const mask = tf.greaterEqual(random([16, 49, 5], 13), 0).cast("float32");
  const expectedCount = Array.from(await mask.data()).reduce((a, b) => a + b, 0);
  assert.deepEqual(Array.from(await tf.sum(ones, [0, 1, 2]).data()), [36864, 36864, 36864]);
  assert.deepEqual(Array.from(await tf.mean(ones, [0, 1, 2]).data()), [1, 1, 1]);
  assert.equal((await tf.sum(mask.reshape([-1, 5]), 0).sum().data())[0], expectedCount);
  tf.dispose([ones, mask]);
});

/** A small MobileNetV2-like net: every layer kind whose gradient training needs. */
function smallBnCnn(): tf.LayersModel {
  const input = tf.input({ shape: [16, 16, 3] });
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) =>
    layer.apply(x) as tf.SymbolicTensor;
  const bnRelu6 = (x: tf.SymbolicTensor) =>
    apply(tf.layers.reLU({ maxValue: 6 }), apply(tf.layers.batchNormalization(), x));
  let x = apply(tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }), input);
  x = bnRelu6(apply(tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, useBias: false }), x));
  let y = bnRelu6(apply(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: "same", useBias: false }), x));
  y = apply(
    tf.layers.batchNormalization(),
    apply(tf.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false }), y),
  );
  x = apply(tf.layers.add(), [x, y]);
  x = bnRelu6(apply(tf.layers.conv2d({ filters: 16, kernelSize: 1, padding: "same", useBias: false }), x));
  x = apply(tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }), x);
  x = bnRelu6(apply(tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, useBias: false }), x));
  x = bnRelu6(apply(tf.layers.conv2d({ filters: 12, kernelSize: 3, strides: 1, padding: "valid" }), x));
  x = apply(tf.layers.globalAveragePooling2d({}), x);
  return tf.model({ inputs: input, outputs: apply(tf.layers.dense({ units: 5 }), x) });
}

/**
 * Builds the net with fixed weights, takes one SGD step, returns the loss and every weight after it (the BN
 * running statistics included). `fused`: with this project's fused BN and ReLU6 training ops.
 */
function trainOneStep(fused = false): tf.Tensor[] {
  const model = smallBnCnn();
  if (fused) assert.equal(useFusedTrainingOps(model), 18); // 6 BN, 5 ReLU6, 4 Conv2D, 2 padding, 1 depthwise
  model.setWeights(model.weights.map((w, i) => random(w.shape as number[], 100 + i)));
  const x = random([4, 16, 16, 3], 11);
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3], "int32"), 5);
  const optimizer = tf.train.sgd(0.1);
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

Deno.test("one training step of a BN CNN gives the same weights on wasm as on cpu", async () => {
  const cpu = await on("cpu", () => trainOneStep());
  for (const fused of [false, true]) {
    const wasm = await on("wasm", () => trainOneStep(fused));
    assert.equal(wasm.length, cpu.length);
    assert.ok(relativeError(wasm[0], cpu[0]) < 1e-5, `loss (fused: ${fused})`);
    cpu.forEach((expected, i) =>
      assert.ok(relativeError(wasm[i], expected) < 1e-4, `weight ${i - 1} (fused: ${fused})`)
    );
  }
  // Without the fused kernels (cpu) the fused layers fall back to tfjs ops: the same step again.
  const cpuFused = await on("cpu", () => trainOneStep(true));
  cpu.forEach((expected, i) => assert.ok(relativeError(cpuFused[i], expected) < 1e-5, `cpu fused ${i - 1}`));
});

Deno.test("with the fused training ops, a zero padding before a valid convolution runs no pad and no slice", async () => {
  await useWasm();
  const kernels = async (fused: boolean) => {
    const profile = await tf.profile(() => tf.dispose(trainOneStep(fused)));
    return new Set(profile.kernels.map((k) => k.name));
  };
  const stock = await kernels(false), fused = await kernels(true);
  assert.ok(stock.has("PadV2") && stock.has("Slice"));
  assert.ok(!fused.has("PadV2") && !fused.has("Slice"), [...fused].join(", "));
});

/** BN in training mode and ReLU6 after it, with the gradients of a weighted sum, through the fused ops. */
function fusedOps(shape: number[]): () => tf.Tensor[] {
  return () => {
    const c = shape[shape.length - 1];
    const x = tf.tidy(() => random(shape, 31).mul(3).add(random([c], 32)));
    const gamma = random([c], 33).add(1.5), beta = random([c], 34);
    const r = random(shape, 35);
    let stats: tf.Tensor[] = [];
    const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const [y, mean, variance] = batchNormTraining(a, g, b, 1e-3);
      stats = [tf.keep(mean), tf.keep(variance)];
      return relu6(y.mul(4)).mul(r).sum();
    };
    const grads = tf.grads(f)([x, gamma, beta]);
    const forward = tf.tidy(() => relu6(batchNormTraining(x, gamma, beta, 1e-3)[0].mul(4)));
    tf.dispose([x, gamma, beta, r]);
    return [forward, ...stats, ...grads];
  };
}

Deno.test("fused batch norm and ReLU6 on wasm equal tfjs's ops on cpu: odd channel and row counts, values at 0 and 6", async () => {
  for (const shape of [[4, 5, 7, 3], [2, 9, 9, 16], [130, 12], [1, 1, 1, 6], [3, 33]]) {
    const cpu = await on("cpu", fusedOps(shape));
    const wasm = await on("wasm", fusedOps(shape));
    const names = ["relu6(bn(x))", "mean", "variance", "dx", "dgamma", "dbeta"];
    cpu.forEach((expected, i) => {
      // With one row, dx is zero but for rounding on both sides: compare it absolutely.
      const error = shape[0] * (shape[1] ?? 1) * (shape[2] ?? 1) === 1
        ? Math.max(...wasm[i].map((v, k) => Math.abs(v - expected[k])))
        : relativeError(wasm[i], expected);
      assert.ok(error < 1e-4, `${names[i]} differs for [${shape}]: ${error}`);
    });
  }
  const edges = await on("wasm", () => {
    const x = tf.tensor1d([-1, 0, 3, 6, 7, 6.0001, -0, 2.5, 5.99]);
    return [relu6(x), tf.grad((a: tf.Tensor) => relu6(a).sum())(x)];
  });
  assert.deepEqual([...edges[0]], [0, 0, 3, 6, 6, 6, 0, 2.5, Math.fround(5.99)]);
  // tfjs-layers' ReLU(maxValue 6) is relu then clip: no gradient at 0, a gradient at exactly 6.
  assert.deepEqual([...edges[1]], [0, 0, 1, 1, 0, 0, 0, 1, 1]);
});

Deno.test("channel moments on wasm are the batch-norm kernel's statistics to the bit, and tfjs's moments on cpu", async () => {
  // Odd channel and row counts, a remainder past the vector lanes, and a call large enough to be shared.
  for (const shape of [[4, 5, 7, 3], [3, 33], [2, 9, 9, 21], [16, 24, 24, 40]]) {
    const c = shape[shape.length - 1];
    const input = () => tf.tidy(() => random(shape, 41).mul(3).add(random([c], 42).mul(10)));
    const moments = () => {
      const x = input();
      const { mean, variance } = channelMoments(x);
      x.dispose();
      return [mean, variance];
    };
    const fused = () => {
      const x = input();
      const [gamma, beta] = [tf.ones([c]), tf.zeros([c])];
      const [y, mean, variance] = batchNormTraining(x, gamma, beta, 1e-3);
      tf.dispose([x, y, gamma, beta]);
      return [mean, variance];
    };
    const wasm = await on("wasm", moments);
    assert.deepEqual(wasm, await on("wasm", fused), `[${shape}]`);
    const cpu = await on("cpu", moments);
    cpu.forEach((expected, i) => {
      const error = relativeError(wasm[i], expected);
      assert.ok(error < 1e-5, `${["mean", "variance"][i]} differs for [${shape}]: ${error}`);
    });
  }
});

Deno.test("calls large enough to share are shared with the kernel helper thread on the threaded build, and equal cpu's", async () => {
  await useWasm();
  const helper = await startedHelperThread(tf.backend() as unknown as WasmBackend);
  assert.equal(helper === undefined, wasmTestThreads() === 1);
  const before = helper?.calls ?? 0;
  for (const shape of [[4, 24, 24, 96], [3, 47, 41, 13]]) {
    const cpu = await on("cpu", fusedOps(shape));
    const wasm = await on("wasm", fusedOps(shape));
    cpu.forEach((expected, i) =>
      assert.ok(relativeError(wasm[i], expected) < 1e-4, `output ${i} for [${shape}]`)
    );
  }
  await assertGradsMatchCpu([
    { kind: "conv2d", input: [4, 24, 24, 32], kernel: 1, stride: 1, pad: "same", outChannels: 40 },
    { kind: "conv2d", input: [8, 25, 25, 3], kernel: 3, stride: 2, pad: "valid", outChannels: 36 },
    { kind: "depthwise", input: [8, 24, 24, 44], kernel: 3, stride: 2, pad: "same" },
    { kind: "depthwise", input: [5, 24, 24, 44], kernel: 3, stride: 1, pad: "same" },
  ]);
  // Per BN shape: two passes forward (twice) and two backward; one filter gradient per conv, and the strided
  // depthwise input gradient.
  if (helper) assert.ok(helper.calls - before === 2 * 6 + 5, `the helper ran ${helper.calls - before} calls`);
});

Deno.test("results do not depend on which thread runs which chunk: shared and unshared calls agree bit for bit", async () => {
  const values = async (outs: tf.Tensor[]) => {
    const read = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
    tf.dispose(outs);
    return read;
  };
  const convGrads = () => {
    const x = random([8, 24, 24, 48], 61), w = random([1, 1, 48, 64], 62), dw = random([3, 3, 48, 1], 63);
    const pointwise = tf.grads((a, b) =>
      tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same").square().sum()
    );
    const depthwise = tf.grads((a, b) =>
      tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same").square().sum()
    );
    const grads = [...pointwise([x, w]), ...depthwise([x, dw])];
    tf.dispose([x, w, dw]);
    return grads;
  };
  // Each thread takes chunks as it comes free, so every run divides them differently; batch-norm totals are
  // per chunk and added in chunk order, and every other output element is one chunk's alone.
  const runs: Float32Array[][] = [];
  for (const threading of [false, true, true, true]) {
    await useWasm();
    setKernelThreading(threading);
    try {
      const bn = await values(fusedOps([8, 24, 24, 96])());
      const conv = await values(convGrads());
      runs.push([...bn, ...conv]);
    } finally {
      setKernelThreading(true);
    }
  }
  for (const run of runs.slice(1)) {
    run.forEach((values, i) => assert.deepEqual(values, runs[0][i], `output ${i}`));
  }
});

Deno.test("the kernel helper thread refuses a call whose arguments are not affine in the chunk", async () => {
  await useWasm();
  const backend = tf.backend() as unknown as WasmBackend;
  const helper = await startedHelperThread(backend);
  if (!helper) return; // the single-threaded build has no helper
  const run = simdKernels(backend).bn_apply as unknown as (...args: number[]) => void;
  const rows = (first: number, end: number) => [0, 0, (end - first) * (end - first), 4, 0, 0, 0, 0];
  assert.throws(() => helper.share("bn_apply", run, rows, 8, 2), /not affine/);
  assert.throws(
    () => helper.share("bn_apply", run, () => [0, 0, 0, 4, 0, 0, 0, 0], 4096 * 4, 1),
    /cannot share/,
  );
  assert.throws(() => helper.share("relu6", run, () => [0, 0, 0], 8, 2), /cannot share/);
});

Deno.test("stopping the wasm backend ends its kernel helper thread", async () => {
  await useWasm();
  const helper = await startedHelperThread(tf.backend() as unknown as WasmBackend);
  stopWasmBackend();
  assert.equal(helper?.ready ?? false, false);
  await useWasm();
});

Deno.test("fused batch-norm statistics on wasm stay exact far from zero (mean 1000, std 2)", async () => {
  const shape = [8, 8, 8, 8];
  const x = tf.tidy(() => random(shape, 41).mul(3.4).add(1000));
  const values = await x.data();
  const [mean, variance] = await on("wasm", () => {
    const [y, m, v] = batchNormTraining(x, tf.ones([8]), tf.zeros([8]), 1e-3);
    y.dispose();
    return [m, v];
  });
  // The float64 reference from the very float32 inputs the kernel saw.
  for (let k = 0; k < 8; k++) {
    let sum = 0, squares = 0;
    const rows = values.length / 8;
    for (let r = 0; r < rows; r++) sum += values[r * 8 + k];
    for (let r = 0; r < rows; r++) squares += (values[r * 8 + k] - sum / rows) ** 2;
    assert.ok(Math.abs(mean[k] - sum / rows) < 1e-4, `mean ${k}: ${mean[k]} vs ${sum / rows}`);
    const expected = squares / rows;
    assert.ok(
      Math.abs(variance[k] - expected) / expected < 1e-5,
      `variance ${k}: ${variance[k]} vs ${expected}`,
    );
  }
  x.dispose();
});

Deno.test("batch norm with given statistics (eval mode) on wasm equals cpu's, with and without scale and offset", async () => {
  for (
    const [shape, offset] of [[[2, 5, 5, 6], 0], [[3, 4, 16], 0], [[40, 7], 500], [[2, 3, 3, 1], 0]] as const
  ) {
    const run = () => {
      const c = shape[shape.length - 1];
      const x = tf.tidy(() => random([...shape], 51).mul(2).add(offset));
      const mean = tf.tidy(() => random([c], 52).add(offset)),
        variance = tf.tidy(() => random([c], 53).abs());
      const scale = random([c], 54), shift = random([c], 55);
      const out = [
        tf.batchNorm(x, mean, variance, shift, scale, 1e-3),
        tf.batchNorm(x, mean, variance, undefined, undefined, 1e-3),
        tf.batchNorm(x, mean, variance, shift, undefined, 1e-5),
      ];
      tf.dispose([x, mean, variance, scale, shift]);
      return out;
    };
    const cpu = await on("cpu", run);
    const wasm = await on("wasm", run);
    cpu.forEach((expected, i) =>
      assert.ok(relativeError(wasm[i], expected) < 1e-5, `[${shape}] + ${offset}: ${i}`)
    );
  }
});

/** Three momentum-SGD steps on two variables, with tfjs' optimizer or ours; the variables after them. */
function momentumSteps(fused: boolean): tf.Tensor[] {
  const vars = [tf.variable(random([3, 5], 61)), tf.variable(random([7], 62))];
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

Deno.test("fused momentum and moving-average updates on wasm equal tfjs's ops bit for bit", async () => {
  const reference = await on("wasm", () => momentumSteps(false));
  const fused = await on("wasm", () => momentumSteps(true));
  reference.forEach((expected, i) => assert.deepEqual([...fused[i]], [...expected], `variable ${i}`));
  const averages = await on("wasm", () => {
    const value = random([37], 81), batch = random([37], 82);
    const out = [movingAverage(value, batch, 0.9), tf.sub(value, tf.mul(tf.sub(value, batch), 1 - 0.9))];
    tf.dispose([value, batch]);
    return out;
  });
  assert.deepEqual([...averages[0]], [...averages[1]]);
  // Without the kernels (cpu), the same through tfjs ops.
  const cpu = await on(
    "cpu",
    () => momentumUpdate(tf.ones([2]), tf.zeros([2]), tf.tensor1d([1, -1]), 0.5, 0.9),
  );
  assert.deepEqual(cpu.map((t) => [...t]), [[0.5, 1.5], [1, -1]]);
});

// The real backbone, when its module loads (it belongs to the model registry, not to this file).
const mobilenet = await import("../src/model/mobilenetv2_imagenet.ts").catch(() => undefined);

/** Gradients of every MobileNetV2 weight for one small training batch. */
async function mobilenetGrads(fused = false): Promise<Float32Array[]> {
  const { model } = await mobilenet!.mobilenetV2ImageNet({ inputSize: 32 });
  if (fused) useFusedTrainingOps(model);
  const x = random([2, 32, 32, 3], 21);
  const target = random([2, model.outputs[0].shape[1] as number], 22);
  const { value, grads } = tf.variableGrads(() =>
    tf.losses.meanSquaredError(target, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar
  );
  const names = model.trainableWeights.map((w) => (w.read() as tf.Variable).name);
  const values = await Promise.all(
    [value, ...names.map((n) => grads[n])].map((t) => t.data() as Promise<Float32Array>),
  );
  tf.dispose([x, target, value, Object.values(grads)]);
  model.dispose();
  return values;
}

Deno.test({
  name: "MobileNetV2 gradients on wasm equal cpu's",
  ignore: mobilenet === undefined,
  fn: async () => {
    assert.ok(await tf.setBackend("cpu"));
    const cpu = await mobilenetGrads();
    await useWasm();
    for (const fused of [false, true]) {
      const wasm = await mobilenetGrads(fused);
      assert.equal(wasm.length, cpu.length);
      cpu.forEach((expected, i) => {
        // A project BN's beta feeds the next block's training-mode BN, which subtracts it right back out: its
        // gradient is zero but for rounding (~1e-9) on both backends, where a relative error means nothing.
        const zero = expected.every((v) => Math.abs(v) < 1e-6);
        const label = `gradient ${i - 1} (fused: ${fused})`;
        if (zero) assert.ok(wasm[i].every((v) => Math.abs(v) < 1e-6), `${label} should be ~0`);
        else assert.ok(relativeError(wasm[i], expected) < 1e-4, label);
      });
    }
  },
});

Deno.test("gradients on wasm leak no tensors and no wasm buffers, with and without the fused ops", async () => {
  await useWasm();
  for (const fused of [false, true]) await assertNoLeak(fused);
});

async function assertNoLeak(fused: boolean) {
  const model = smallBnCnn();
  if (fused) useFusedTrainingOps(model);
  const x = random([2, 16, 16, 3], 5);
  const labels = tf.oneHot(tf.tensor1d([0, 4], "int32"), 5);
  const step = () => {
    const { value, grads } = tf.variableGrads(() =>
      tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar
    );
    tf.dispose([value, Object.values(grads)]);
  };
  step(); // settles what the model keeps between steps (BN moving statistics)
  // The kernels' intermediates never reach the engine: only the backend's own count sees them.
  const before = { tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() };
  step();
  step();
  assert.equal(tf.memory().numTensors, before.tensors);
  assert.equal(tf.backend().numDataIds(), before.buffers);
  tf.dispose([x, labels]);
  model.dispose();
  await Promise.resolve();
}
