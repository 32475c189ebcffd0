/**
 * One training step of the default backbone on the wasm backend, taken apart: the step's median and fastest
 * wall time, with the SIMD kernels' helper thread on and off in alternating steps of one process (so both
 * see the same machine), the size of the wasm heap after them (its high-water mark: the heap never shrinks;
 * `--stock-gradients` takes the gradients with tf.variableGrads instead of leanVariableGrads), and the time
 * per kernel, each call's fastest of five profiled steps, summed by kernel name. What docs/BENCHMARKS.md's
 * per-change figures come from; `deno task bench` gives the headline.
 *
 *   deno task bench:step [--batch 16] [--steps 10] [--threads 2] [--top 12] [--stock-gradients]
 *
 * A step is the runtime's `trainingStep` (forward in training mode, backward, momentum SGD on every weight,
 * loss read back) on random images, MobileNetV2 to block_10 at 96x96 with a 10-class head.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { commandLine } from "../cli/_args.ts";
import { disposeSpeedState, readBackStep, speedTrainingState } from "../src/adapt/training_speed_trial.ts";
import { initBackend } from "../src/backend/init_backend.ts";
import type { WasmBackend } from "../src/backend/_wasm_scratch.ts";
import { heapMemory, setKernelThreading, startedHelperThread } from "../src/backend/_wasm_simd.ts";
import { loadBackbone } from "../src/model/registry.ts";

const USAGE = `usage: deno task bench:step [options]

A MobileNetV2 training step on wasm: wall time with the kernel helper thread on and off, and time per kernel.

  --batch N --steps N (per mode) --threads N (wasm threads) --top N (kernels listed)
  --stock-gradients (tf.variableGrads, to compare the wasm heap it needs with leanVariableGrads')`;

const median = (sorted: number[]) => sorted[sorted.length >> 1];

if (import.meta.main) {
  const { values } = commandLine(USAGE, {
    batch: { type: "string", default: "16" },
    steps: { type: "string", default: "10" },
    threads: { type: "string", default: "2" },
    top: { type: "string", default: "12" },
    "stock-gradients": { type: "boolean", default: false },
  });
  const batch = Number(values.batch), steps = Number(values.steps), top = Number(values.top);
  const info = await initBackend("wasm", { wasmThreads: Number(values.threads) });
  const helper = await startedHelperThread(tf.backend() as unknown as WasmBackend);
  const { state, batchOf } = speedTrainingState(await loadBackbone({ name: "mobilenetv2-imagenet" }));
  state.stockGradients = values["stock-gradients"];
  const { x, y } = batchOf(batch);
  const step = () => readBackStep(state, x, y);
  console.log(
    `batch ${batch}, wasm on ${info.wasm?.threads ?? 1} threads, helper thread ${
      helper ? "up" : "unavailable"
    }`,
  );

  const modes = helper ? ["off", "on"] as const : ["off"] as const;
  const times: Record<string, number[]> = { off: [], on: [] };
  for (let i = 0; i < 2; i++) await step(); // warm-up
  for (let i = 0; i < steps * modes.length; i++) {
    const mode = modes[i % modes.length];
    setKernelThreading(mode === "on");
    const started = performance.now();
    await step();
    times[mode].push(performance.now() - started);
  }
  for (const mode of modes) {
    const sorted = times[mode].sort((a, b) => a - b);
    console.log(
      `helper thread ${mode}: step median ${median(sorted).toFixed(1)} ms, fastest ${
        sorted[0].toFixed(1)
      } ms, ` +
        `${(batch / median(sorted) * 1000).toFixed(1)} samples/s`,
    );
  }

  const heapMiB = heapMemory(tf.backend() as unknown as WasmBackend).buffer.byteLength / 2 ** 20;
  console.log(
    `wasm heap after the steps: ${heapMiB.toFixed(0)} MiB (gradients: ${
      state.stockGradients ? "tf.variableGrads" : "leanVariableGrads"
    })`,
  );

  setKernelThreading(true);
  const profiles: { name: string; ms: number }[][] = [];
  for (let i = 0; i < 5; i++) {
    const profile = await tf.profile(step);
    profiles.push(profile.kernels.map((k) => ({
      name: k.name,
      ms: typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0,
    })));
  }
  const byName = new Map<string, { calls: number; ms: number }>();
  let total = 0;
  profiles[0].forEach((call, i) => {
    const ms = Math.min(...profiles.map((p) => p[i]?.name === call.name ? p[i].ms : Infinity));
    total += ms;
    const entry = byName.get(call.name) ?? { calls: 0, ms: 0 };
    byName.set(call.name, { calls: entry.calls + 1, ms: entry.ms + ms });
  });
  console.log(`\nkernel time per step (each call's fastest of 5 profiled steps): ${total.toFixed(1)} ms`);
  console.log("| kernel | calls | ms |\n| --- | ---: | ---: |");
  for (const [name, { calls, ms }] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
    console.log(`| ${name} | ${calls} | ${ms.toFixed(1)} |`);
  }
  tf.dispose([x, y]);
  disposeSpeedState(state);
  Deno.exit(0);
}
