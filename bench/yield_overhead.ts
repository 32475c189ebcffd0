/**
 * What `yieldToServing` costs a job when no prediction is in progress: the kernels a real adaptation runs
 * (default backbone, 12 of each digit, `--epochs` epochs, on the wasm backend as the worker uses it), times the
 * cost of the check before each (measured over a million calls). Also times the same adaptation with and
 * without the check, alternating, for a direct (but noisier) comparison.
 *
 *   deno task bench:yield [--epochs 4] [--repeats 2]
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { commandLine } from "../cli/_args.ts";
import { adapt } from "../src/adapt/adapt.ts";
import { initBackend } from "../src/backend/init_backend.ts";
import { readImageFolder } from "../src/data/folder.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { takePerClass } from "../src/data/take_per_class.ts";
import { yieldToServing } from "../src/jobs/yield_to_serving.ts";
import { DEFAULT_BACKBONE, loadBackbone } from "../src/model/registry.ts";

const USAGE = `usage: deno task bench:yield [options]

The cost of yielding to predictions, to a job on an idle server.

  --epochs N --repeats N`;

const { values } = commandLine(USAGE, {
  epochs: { type: "string", default: "4" },
  repeats: { type: "string", default: "2" },
});
const epochs = Number(values.epochs);
await initBackend("wasm");
const digits = takePerClass(
  await readImageFolder(new URL("../fixtures/digits/", import.meta.url).pathname),
  12,
  1,
);

/** One adaptation, timed; with `check`, under yieldToServing (no demand), counting its kernels. */
async function job(check: boolean): Promise<{ seconds: number; kernels: number }> {
  const backbone = await loadBackbone({ name: DEFAULT_BACKBONE });
  const images = imagesToTensor(digits.images, backbone.input);
  const engine = tf.engine();
  let kernels = 0;
  const undo = check ? yieldToServing(new Int32Array(new SharedArrayBuffer(4))) : () => {};
  const counted = engine.runKernel;
  engine.runKernel = function (this: typeof engine, ...args: Parameters<typeof counted>) {
    kernels++;
    return counted.apply(this, args);
  } as typeof counted;
  const start = performance.now();
  try {
    const model = await adapt(backbone, { images, labels: digits.labels, classNames: digits.classNames }, {
      epochs,
      seed: 1,
    });
    model.dispose();
  } finally {
    engine.runKernel = counted;
    undo();
    images.dispose();
  }
  return { seconds: (performance.now() - start) / 1000, kernels };
}

// The check alone: a million calls through the wrapper against a million without.
function perCallNs(): number {
  const demand = new Int32Array(new SharedArrayBuffer(4));
  const target = { f: (x: number) => x + 1 };
  const plain = target.f;
  const wrapped = (x: number) => (Atomics.load(demand, 0) > 0 ? -1 : plain(x));
  const time = (f: (x: number) => number) => {
    let acc = 0;
    const start = performance.now();
    for (let i = 0; i < 1e6; i++) acc += f(i);
    return [(performance.now() - start) * 1e6 / 1e6, acc] as const;
  };
  time(plain), time(wrapped);
  return Math.max(0, time(wrapped)[0] - time(plain)[0]);
}

const runs: { check: boolean; seconds: number; kernels: number }[] = [];
for (let i = 0; i < Number(values.repeats); i++) {
  for (const check of [false, true]) runs.push({ check, ...await job(check) });
}
const ns = perCallNs();
const kernels = Math.max(...runs.map((r) => r.kernels));
const mean = (check: boolean) => {
  const xs = runs.filter((r) => r.check === check).map((r) => r.seconds);
  return xs.reduce((a, b) => a + b, 0) / xs.length;
};
console.log(`adaptation of ${epochs} epochs on ${digits.images.length} digits, ${DEFAULT_BACKBONE}, wasm:`);
for (const r of runs) {
  console.log(`  ${r.check ? "with the check   " : "without the check"} ${r.seconds.toFixed(2)} s`);
}
console.log(
  `kernels per job: ${kernels}; the check costs ${ns.toFixed(1)} ns per call, so ` +
    `${(kernels * ns / 1e6).toFixed(3)} ms per job (${
      (kernels * ns / 1e9 / mean(false) * 100).toFixed(4)
    }% of it)`,
);
console.log(`with/without, alternating: ${(mean(true) / mean(false)).toFixed(3)}`);
