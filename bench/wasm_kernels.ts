/**
 * Training throughput of one forward + backward + SGD step on each tfjs backend, for MobileNetV2 (ImageNet
 * weights, cut at block_10, a 10-class dense head) at batch 16 and 96x96, or for a MobileNetV2-like stand-in
 * when the real one cannot be loaded. Backends that fail to start or to train are reported and skipped.
 *
 *   deno run -A bench/wasm_kernels.ts [--backends wasm,cpu,webgpu] [--iters 5] [--batch 16] [--size 96]
 *                                     [--model mobilenetv2|standin] [--verbose]
 *
 * Each backend gets one warm-up step, then `iters` timed steps; a step ends when its loss is read back.
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
import { registerWasmTrainingKernels } from "../src/backend/wasm_training.ts";

const { values: flags } = parseArgs({
  options: {
    backends: { type: "string", default: "wasm,cpu,webgpu" },
    iters: { type: "string", default: "5" },
    batch: { type: "string", default: "16" },
    size: { type: "string", default: "96" },
    model: { type: "string", default: "mobilenetv2" },
    verbose: { type: "boolean", default: false },
  },
});
const iters = Number(flags.iters), batch = Number(flags.batch), size = Number(flags.size);
const CLASSES = 10;

registerWasmTrainingKernels();

/** A MobileNetV2-shaped net (inverted residuals, depthwise stride 2, ReLU6, BN) for when the real one is missing. */
function standIn(inputSize: number): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3] });
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) =>
    layer.apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor) => apply(tf.layers.batchNormalization(), x);
  const relu6 = (x: tf.SymbolicTensor) => apply(tf.layers.reLU({ maxValue: 6 }), x);
  const block = (x: tf.SymbolicTensor, inC: number, outC: number, stride: number) => {
    let y = relu6(bn(apply(tf.layers.conv2d({ filters: inC * 6, kernelSize: 1, useBias: false }), x)));
    if (stride === 2) y = apply(tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }), y);
    y = apply(
      tf.layers.depthwiseConv2d({
        kernelSize: 3,
        strides: stride,
        padding: stride === 2 ? "valid" : "same",
        useBias: false,
      }),
      y,
    );
    y = bn(apply(tf.layers.conv2d({ filters: outC, kernelSize: 1, useBias: false }), relu6(bn(y))));
    return stride === 1 && inC === outC ? apply(tf.layers.add(), [x, y]) : y;
  };
  let x = apply(tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }), input);
  x = relu6(bn(apply(tf.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, useBias: false }), x)));
  x = relu6(bn(apply(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: "same", useBias: false }), x)));
  x = bn(apply(tf.layers.conv2d({ filters: 16, kernelSize: 1, useBias: false }), x));
  const plan: [number, number, number][] = [
    [16, 24, 2],
    [24, 24, 1],
    [24, 32, 2],
    [32, 32, 1],
    [32, 32, 1],
    [
      32,
      64,
      2,
    ],
    [64, 64, 1],
    [64, 64, 1],
    [64, 64, 1],
    [64, 96, 1],
  ];
  for (const [inC, outC, stride] of plan) x = block(x, inC, outC, stride);
  return tf.model({ inputs: input, outputs: apply(tf.layers.globalAveragePooling2d({}), x) });
}

async function backbone(): Promise<{ name: string; model: tf.LayersModel }> {
  if (flags.model !== "standin") {
    try {
      const { mobilenetV2ImageNet } = await import("../src/model/mobilenetv2_imagenet.ts");
      return {
        name: "MobileNetV2 (to block_10)",
        model: (await mobilenetV2ImageNet({ inputSize: size })).model,
      };
    } catch (err) {
      console.error(`MobileNetV2 unavailable (${(err as Error).message}); using the stand-in`);
    }
  }
  return { name: "MobileNetV2-like stand-in", model: standIn(size) };
}

async function setBackend(name: string): Promise<string | undefined> {
  try {
    if (name === "webgpu") await import("@tensorflow/tfjs-backend-webgpu");
    if (!(await tf.setBackend(name))) return "did not initialise";
    await tf.ready();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

interface Result {
  backend: string;
  model?: string;
  msPerStep?: number[];
  skipped?: string;
}

async function benchmark(backendName: string): Promise<Result> {
  const failed = await setBackend(backendName);
  if (failed) return { backend: backendName, skipped: failed };
  const { name, model } = await backbone();
  const head = tf.layers.dense({ units: CLASSES });
  const x = tf.randomUniform([batch, size, size, 3], -1, 1);
  const labels = tf.oneHot(
    tf.tensor1d(Array.from({ length: batch }, (_, i) => i % CLASSES), "int32"),
    CLASSES,
  );
  const optimizer = tf.train.sgd(0.01);
  const step = async () => {
    const loss = optimizer.minimize(() => {
      const logits = head.apply(model.apply(x, { training: true })) as tf.Tensor;
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    }, true)!;
    await loss.data();
    loss.dispose();
  };
  try {
    await step();
    const msPerStep: number[] = [];
    for (let i = 0; i < iters; i++) {
      const start = performance.now();
      await step();
      msPerStep.push(performance.now() - start);
      if (flags.verbose) console.error(`  ${backendName} step ${i + 1}: ${msPerStep[i].toFixed(0)} ms`);
    }
    return { backend: backendName, model: name, msPerStep };
  } catch (err) {
    return { backend: backendName, model: name, skipped: `training failed: ${(err as Error).message}` };
  } finally {
    tf.dispose([x, labels]);
    optimizer.dispose();
    head.dispose();
    model.dispose();
  }
}

console.log(
  `training step: batch ${batch}, ${size}x${size}, forward + backward + SGD, ${iters} timed after 1 warm-up`,
);
for (const backendName of flags.backends!.split(",")) {
  const r = await benchmark(backendName.trim());
  if (r.skipped) {
    console.log(`${r.backend.padEnd(7)} skipped: ${r.skipped}`);
    continue;
  }
  const ms = [...r.msPerStep!].sort((a, b) => a - b);
  const median = ms[Math.floor(ms.length / 2)];
  console.log(
    `${r.backend.padEnd(7)} ${r.model}: median ${median.toFixed(0)} ms/step (min ${ms[0].toFixed(0)}, max ${
      ms[ms.length - 1].toFixed(0)
    }) = ${(batch / median * 1000).toFixed(1)} samples/s`,
  );
}
