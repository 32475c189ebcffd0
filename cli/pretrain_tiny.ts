/**
 * `deno task pretrain`: pretrains the tiny backbone on Fashion-MNIST (Debian `dataset-fashion-mnist`) and
 * writes it to `fixtures/tiny`. The source domain is clothing, so adapting it to digits in tests and
 * benchmarks is a real domain shift. Deterministic for a given backend: fixed subset, seeds and order.
 *
 * Flags: --train N (examples per class, default 2000), --epochs E (default 4), --backend, --out.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend/init_backend.ts";
import { readFashionMnist } from "../src/data/fashion_mnist.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { directorySaver } from "../src/model/artifacts_io.ts";
import { buildTinyNet, TINY_INPUT_SIZE, TINY_WEIGHTS_DIR } from "../src/model/tiny.ts";
import { commandLine, numberOption } from "./_args.ts";

const USAGE = `usage: deno task pretrain [options]

Pretrains the tiny backbone on Fashion-MNIST (Debian package dataset-fashion-mnist) and writes its weights
and provenance.json, deterministically for a given backend.

  --train N       training images per class (default 2000)
  --epochs N      epochs (default 4)
  --backend NAME  auto | webgpu | wasm | cpu (default auto)
  --out DIR       where to write (default fixtures/tiny, the weights the tiny backbone loads)`;

const { values } = commandLine(USAGE, {
  train: { type: "string", default: "2000" },
  epochs: { type: "string", default: "4" },
  backend: { type: "string", default: "auto" },
  out: { type: "string", default: TINY_WEIGHTS_DIR },
});
numberOption("train", values.train);
numberOption("epochs", values.epochs);
const info = await initBackend(values.backend as "auto");
console.log(`backend: ${info.name} (${info.adapter.description || "no adapter"})`);

const spec = {
  height: TINY_INPUT_SIZE,
  width: TINY_INPUT_SIZE,
  channels: 1 as const,
  range: [0, 1] as [number, number],
};
const train = await readFashionMnist({ split: "train", perClass: Number(values.train), seed: 7 });
const test = await readFashionMnist({ split: "test", limit: 2000 });
const x = imagesToTensor(train.images, spec);
const y = tf.oneHot(tf.tensor1d(train.labels, "int32"), 10);
const xTest = imagesToTensor(test.images, spec);
const yTest = tf.oneHot(tf.tensor1d(test.labels, "int32"), 10);

const backbone = buildTinyNet(1);
const logits = tf.layers.dense({
  units: 10,
  activation: "softmax",
  kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
})
  .apply(backbone.outputs[0]) as tf.SymbolicTensor;
const classifier = tf.model({ inputs: backbone.inputs, outputs: logits });
classifier.compile({
  optimizer: tf.train.adam(3e-3),
  loss: "categoricalCrossentropy",
  metrics: ["accuracy"],
});
const started = performance.now();
await classifier.fit(x, y, {
  epochs: Number(values.epochs),
  batchSize: 64,
  shuffle: true,
  callbacks: {
    onEpochEnd: (e, logs) =>
      console.log(`epoch ${e + 1}: loss ${logs?.loss.toFixed(4)} acc ${logs?.acc.toFixed(4)}`),
  },
});
const [, acc] = classifier.evaluate(xTest, yTest, { batchSize: 256 }) as tf.Scalar[];
const testAccuracy = (await acc.data())[0];
console.log(
  `Fashion-MNIST test accuracy (first 2000): ${testAccuracy.toFixed(4)} in ${
    ((performance.now() - started) / 1000).toFixed(0)
  } s`,
);

await backbone.save(directorySaver(values.out));
await Deno.writeTextFile(
  `${values.out}/provenance.json`,
  JSON.stringify(
    {
      notes: `pretrained by \`deno task pretrain\` on Fashion-MNIST (Debian dataset-fashion-mnist), ${
        Number(values.train) * 10
      } training images, ${values.epochs} epochs, Adam 3e-3, batch 64, backend ${info.name}; test accuracy ${
        testAccuracy.toFixed(4)
      } on the first 2000 test images`,
      testAccuracy,
    },
    null,
    2,
  ) + "\n",
);
console.log(`wrote ${values.out}`);
