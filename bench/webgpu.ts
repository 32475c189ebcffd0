// One MobileNetV2 training step on the webgpu backend, stock tfjs-backend-webgpu against this project's WGSL
// training kernels (src/backend/webgpu_training.ts); the usage below says what it measures.
import * as tf from "@tensorflow/tfjs";
import { commandLine, numberOption } from "../cli/_args.ts";
import { trainingStep } from "../src/adapt/training_step.ts";
import { disposeSpeedState, speedTrainingState } from "../src/adapt/training_speed_trial.ts";
import { initBackend } from "../src/backend/init_backend.ts";
import { mobilenetV2ImageNet } from "../src/model/mobilenetv2_imagenet.ts";
import { machineCpuSeconds, processCpuSeconds, waitForQuiet } from "./_speed_machine.ts";
import { median } from "./_speed_records.ts";

const USAGE = `usage: deno task bench:webgpu [options]

One MobileNetV2 training step on the webgpu backend, stock tfjs-backend-webgpu against this project's WGSL
training kernels (src/backend/webgpu_training.ts): GPU dispatches and queue submits per step (every compute
pass's dispatchWorkgroups and every queue.submit, counted by wrapping them), median step time and samples/s.
The step is the product's (trainingStep): MobileNetV2 (ImageNet weights, cut at block_10) with a 10-class
head, forward in training mode, backward, momentum SGD on every weight, loss read back. Each mode gets a
fresh backbone and one untimed warm-up step (shader compiles). On a software adapter (llvmpipe) a step takes
seconds: keep the batch small. The cores may be shared: before timing, each mode waits for other work to
use less than a third of a core, and the report says how many cores other work kept busy meanwhile.

  --batch N          images per step (4)
  --size N           input height and width, a multiple of 16 (96)
  --steps N          timed steps per mode (3)
  --modes LIST       stock, ours or both (stock,ours)
  --profile          also the GPU time per kernel name (tf.profile; timestamp queries)
  --quiet-wait S     seconds to wait for other work to calm down before timing (60)`;

const flags = commandLine(USAGE, {
  batch: { type: "string", default: "4" },
  size: { type: "string", default: "96" },
  steps: { type: "string", default: "3" },
  modes: { type: "string", default: "stock,ours" },
  profile: { type: "boolean", default: false },
  "quiet-wait": { type: "string", default: "60" },
}).values;
const batch = numberOption("batch", flags.batch)!, size = numberOption("size", flags.size)!;
const steps = numberOption("steps", flags.steps)!,
  quietWait = numberOption("quiet-wait", flags["quiet-wait"])!;
const modes = flags.modes!.split(",");
for (const m of modes) {
  if (m !== "stock" && m !== "ours") {
    console.error(`error: --modes takes stock and ours, got '${m}'`);
    Deno.exit(2);
  }
}
const CLASSES = 10;

const counts = { dispatches: 0, submits: 0 };
type Proto<T> = { prototype: T };
const gpuGlobals = globalThis as unknown as {
  GPUComputePassEncoder?: Proto<GPUComputePassEncoder>;
  GPUQueue?: Proto<GPUQueue>;
};
if (!gpuGlobals.GPUComputePassEncoder || !gpuGlobals.GPUQueue) {
  console.error("this runtime exposes no WebGPU (navigator.gpu)");
  Deno.exit(2);
}
const pass = gpuGlobals.GPUComputePassEncoder.prototype, queue = gpuGlobals.GPUQueue.prototype;
const dispatchWorkgroups = pass.dispatchWorkgroups, submit = queue.submit;
pass.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...args) {
  counts.dispatches++;
  return dispatchWorkgroups.apply(this, args);
};
queue.submit = function (this: GPUQueue, ...args) {
  counts.submits++;
  return submit.apply(this, args);
};

interface ModeResult {
  mode: string;
  adapter: string;
  dispatches: number;
  submits: number;
  stepMs: number[];
  /** Cores other processes kept busy during the timed steps (the machine may be shared). */
  otherCores?: number;
  kernels?: { name: string; ms: number; calls: number }[];
}

async function measure(mode: string): Promise<ModeResult> {
  const info = await initBackend("webgpu", { webgpuKernels: mode === "ours" });
  const backbone = await mobilenetV2ImageNet({ inputSize: size });
  const { state, batchOf } = speedTrainingState(backbone, CLASSES);
  const { x, y } = batchOf(batch);
  const step = async () => {
    const { loss, hits } = trainingStep(state, x, y);
    await loss.data();
    await hits.data();
    tf.dispose([loss, hits]);
  };
  await step();
  // A shared machine: wait (a while) for other work to calm down, and say how much ran beside the steps.
  await waitForQuiet(0.3, quietWait);
  const machineBefore = machineCpuSeconds(), ownBefore = processCpuSeconds(), started = performance.now();
  const stepMs: number[] = [];
  let dispatches = 0, submits = 0;
  for (let i = 0; i < steps; i++) {
    counts.dispatches = counts.submits = 0;
    const started = performance.now();
    await step();
    stepMs.push(performance.now() - started);
    [dispatches, submits] = [counts.dispatches, counts.submits];
  }
  const machineAfter = machineCpuSeconds(), ownAfter = processCpuSeconds();
  const otherCores = machineBefore && machineAfter && ownBefore !== undefined && ownAfter !== undefined
    ? Math.max(0, machineAfter.busy - machineBefore.busy - (ownAfter - ownBefore)) /
      ((performance.now() - started) / 1000)
    : undefined;
  let kernels: ModeResult["kernels"];
  if (flags.profile) {
    const profile = await tf.profile(step);
    const byName = new Map<string, { ms: number; calls: number }>();
    for (const k of profile.kernels) {
      if (k.name.endsWith("__op")) continue;
      const acc = byName.get(k.name) ?? { ms: 0, calls: 0 };
      byName.set(k.name, { ms: acc.ms + (Number(await k.kernelTimeMs) || 0), calls: acc.calls + 1 });
    }
    kernels = [...byName].map(([name, v]) => ({ name, ...v })).sort((a, b) => b.ms - a.ms);
  }
  tf.dispose([x, y]);
  disposeSpeedState(state);
  return { mode, adapter: info.adapter.description, dispatches, submits, stepMs, otherCores, kernels };
}

const results: ModeResult[] = [];
for (const mode of modes) results.push(await measure(mode));

const fixed = (v: number, d = 2) => v.toFixed(d);
console.log(
  `\nMobileNetV2 (block_10, ${size}x${size}x3) training step, batch ${batch}, webgpu on ${
    results[0].adapter
  }`,
);
console.log(
  `Deno ${Deno.version.deno}, tfjs ${tf.version.tfjs}; median of ${steps} steps after one warm-up\n`,
);
console.log("| kernels | dispatches / step | submits / step | step (ms) | samples/s | other work (cores) |");
console.log("| ------- | ----------------: | -------------: | --------: | --------: | -----------------: |");
for (const r of results) {
  const ms = median(r.stepMs);
  console.log(
    `| ${
      r.mode === "ours" ? "ours (src/backend/webgpu_training.ts)" : "stock tfjs-backend-webgpu"
    } | ${r.dispatches} | ${r.submits} | ${fixed(ms, 0)} | ${fixed(batch / ms * 1000)} | ${
      r.otherCores === undefined ? "—" : fixed(r.otherCores)
    } |`,
  );
}
const stock = results.find((r) => r.mode === "stock"), ours = results.find((r) => r.mode === "ours");
if (stock && ours) {
  console.log(
    `\nours / stock: ${fixed(ours.dispatches / stock.dispatches)}x the dispatches, ${
      fixed(median(stock.stepMs) / median(ours.stepMs))
    }x the samples/s`,
  );
}
for (const r of results) {
  if (!r.kernels) continue;
  const total = r.kernels.reduce((a, k) => a + k.ms, 0);
  console.log(`\n${r.mode}: GPU time by kernel (${fixed(total, 0)} ms in all)`);
  for (const k of r.kernels.slice(0, 12)) {
    console.log(
      `  ${k.name.padEnd(38)} ${fixed(k.ms, 1).padStart(8)} ms  ${String(k.calls).padStart(4)} calls`,
    );
  }
}
