// One row of the speed benchmark, run in its own process (so its peak memory is its own and a row that
// outlives its budget can be killed): bring up a backend, build a backbone, time training steps, inference
// and a whole `adapt()` job, and report each figure as a record the moment it is measured.
import * as tf from "@tensorflow/tfjs";
import { adapt } from "../src/adapt/adapt.ts";
import { ADAPT_DEFAULTS } from "../src/adapt/adapt_options.ts";
import type { AdaptationMetrics } from "../src/adapt/adaptation_metrics.ts";
import { AdaptedModel } from "../src/adapt/adapted_model.ts";
import { trainingStep } from "../src/adapt/training_step.ts";
import { speedTrainingState } from "../src/adapt/training_speed_trial.ts";
import { type BackendInfo, type BackendPolicy, initBackend } from "../src/backend/init_backend.ts";
import type { WasmBackend } from "../src/backend/_wasm_scratch.ts";
import { heapMemory } from "../src/backend/_wasm_simd.ts";
import type { Backbone } from "../src/model/backbone.ts";
import { type SpeedBackbone, speedBackbone, syntheticJob, trainableParameters } from "./_speed_models.ts";
import { processCpuSeconds } from "./_speed_machine.ts";
import { median, percentile, type RowRecord, type SoakSample } from "./_speed_records.ts";

/** How many repetitions each figure gets: a figure stops at `max*` runs, or at `min*` once its seconds are up. */
export interface Effort {
  warmupSteps: number;
  minSteps: number;
  maxSteps: number;
  stepSeconds: number;
  latencyRuns: number;
  latencySeconds: number;
  inferRuns: number;
  inferSeconds: number;
}

/** The full run's repetitions. */
export const FULL_EFFORT: Effort = {
  warmupSteps: 2,
  minSteps: 3,
  maxSteps: 8,
  stepSeconds: 25,
  latencyRuns: 200,
  latencySeconds: 12,
  inferRuns: 10,
  inferSeconds: 12,
};

/** `--quick`: enough to see every figure once. */
export const QUICK_EFFORT: Effort = {
  warmupSteps: 1,
  minSteps: 2,
  maxSteps: 3,
  stepSeconds: 6,
  latencyRuns: 30,
  latencySeconds: 3,
  inferRuns: 3,
  inferSeconds: 4,
};

/** The adaptation job timed end to end: `classes x shots` images, `adapt()`'s defaults (DAFT). */
export interface JobSpec {
  classes: number;
  shots: number;
  /** Default: `adapt()`'s own. */
  epochs?: number;
}

/** What one row measures. */
export interface RowSpec {
  backend: BackendPolicy;
  backbone: SpeedBackbone;
  trainBatches: number[];
  inferBatch: number;
  effort: Effort;
  job: JobSpec | null;
  /** Profile one training step by kernel (skipped on webgpu, whose kernel timer needs timestamp queries). */
  profile: boolean;
  /** When the row must be done, in ms since the epoch; measurements that would not fit are skipped. */
  deadline: number;
}

/** The memory soak: `jobs` consecutive small `adapt()` jobs on the tiny backbone. */
export interface SoakSpec {
  backend: BackendPolicy;
  jobs: number;
  classes: number;
  shots: number;
  epochs: number;
  batchSize: number;
  deadline: number;
}

type Emit = (record: RowRecord) => void;

function infoRecord(
  info: BackendInfo,
  name: SpeedBackbone,
  backbone: Backbone,
  parameters: number,
): RowRecord {
  const { height, width, channels } = backbone.input;
  return {
    kind: "info",
    side: "ours",
    backend: info.name,
    detail: info.name === "webgpu"
      ? `WebGPU adapter: ${info.adapter.description ?? "unknown"}`
      : info.name === "wasm"
      ? `XNNPACK SIMD on ${info.wasm?.threads ?? 1} thread(s), + this project's SIMD training kernels`
      : "pure JS",
    backbone: name,
    parameters,
    batchNormLayers: backbone.batchNormLayers.length,
    inputShape: [height, width, channels],
    featureDim: backbone.featureDim,
    versions: { deno: Deno.version.deno, v8: Deno.version.v8, tfjs: tf.version.tfjs },
  };
}

const MiB = 1024 * 1024;
const SLOW_RUN_MS = 10_000;

// The kernel's high-water mark of this process's resident set; Deno.memoryUsage() has only the current.
function highWaterMiB(): number | undefined {
  try {
    const kb = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s*(\d+)\s*kB/)?.[1];
    return kb ? Number(kb) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

class MemoryWatch {
  peakRss = 0;
  tensorPeak?: number;
  sample() {
    this.peakRss = Math.max(this.peakRss, Deno.memoryUsage().rss);
  }
  record(): RowRecord {
    this.sample();
    return {
      kind: "memory",
      rssMiB: Deno.memoryUsage().rss / MiB,
      peakRssMiB: this.peakRss / MiB,
      hwmMiB: highWaterMiB(),
      tensorPeakMiB: this.tensorPeak === undefined ? undefined : this.tensorPeak / MiB,
      numTensors: tf.memory().numTensors,
    };
  }
}

/**
 * Runs `fn` `warmup` times untimed, then until `max` timed runs, or `min` once `seconds` have passed or the
 * deadline is near; returns each timed run's milliseconds.
 */
async function timeRuns(
  fn: () => Promise<void>,
  opts: { warmup: number; min: number; max: number; seconds: number; deadline: number },
): Promise<number[]> {
  for (let i = 0; i < opts.warmup; i++) {
    const t = performance.now();
    await fn();
    // On a slow backend one warm-up (the first run's kernel set-up) is enough.
    if (performance.now() - t > SLOW_RUN_MS) break;
  }
  const times: number[] = [];
  const started = performance.now();
  while (times.length < opts.max) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
    const elapsed = (performance.now() - started) / 1000;
    if (times.length >= opts.min && elapsed >= opts.seconds) break;
    // Leave the rest of the row its chance: stop early when one more run would pass the deadline.
    if (Date.now() + times[times.length - 1] > opts.deadline) break;
  }
  return times;
}

function remainingMs(deadline: number) {
  return deadline - Date.now();
}

/** Measures one (backend, backbone) row; each figure is emitted as soon as it is known. */
export async function runRow(spec: RowSpec, emit: Emit): Promise<void> {
  const info = await initBackend(spec.backend);
  const watch = new MemoryWatch();
  const backbone = await speedBackbone(spec.backbone);
  const classes = 10;
  const { headed, state, batchOf } = speedTrainingState(backbone, classes);
  const { height, width, channels } = backbone.input;
  emit(infoRecord(info, spec.backbone, backbone, trainableParameters(headed.logits)));

  // The product's step (src/adapt/training_step.ts), read back like adapt() reads it.
  const step = (x: tf.Tensor4D, y: tf.Tensor) => async () => {
    const { loss, hits } = trainingStep(state, x, y);
    await loss.data();
    await hits.data();
    tf.dispose([loss, hits]);
    watch.sample();
  };

  // Inference first: it is cheap, so a slow backend that runs out of budget in training still has it.
  // Timed through the server's path, AdaptedModel.predict (inference plan, one read, top-3), which reads
  // only the input spec and the class names of this stand-in metadata.
  const served = new AdaptedModel(headed.probabilities, {
    format: "daft-edge-model/1",
    createdAt: new Date().toISOString(),
    method: "ft",
    hyperparameters: {},
    classNames: Array.from({ length: classes }, (_, c) => `class-${c}`),
    input: backbone.input,
    featureLayer: backbone.model.outputs[0].sourceLayer.name,
    backbone: { name: backbone.name, provenance: backbone.provenance },
    backend: info.name,
    metrics: {} as AdaptationMetrics,
    bnConversion: null,
  });
  const oneImage = tf.randomUniform([1, height, width, channels], 0, 1, "float32", 3) as tf.Tensor4D;
  const predictOne = async () => {
    await served.predict(oneImage);
  };
  const latencies = await timeRuns(predictOne, {
    warmup: 3,
    min: 10,
    max: spec.effort.latencyRuns,
    seconds: spec.effort.latencySeconds,
    deadline: spec.deadline,
  });
  oneImage.dispose();
  emit({
    kind: "latency",
    runs: latencies.length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  });

  const many = tf.randomUniform(
    [spec.inferBatch, height, width, channels],
    0,
    1,
    "float32",
    5,
  ) as tf.Tensor4D;
  const predictMany = async () => {
    await served.predict(many, 3, spec.inferBatch);
  };
  const batchMs = await timeRuns(predictMany, {
    warmup: 1,
    min: 2,
    max: spec.effort.inferRuns,
    seconds: spec.effort.inferSeconds,
    deadline: spec.deadline,
  });
  many.dispose();
  emit({
    kind: "throughput",
    batch: spec.inferBatch,
    batchMs,
    samplesPerSec: spec.inferBatch / median(batchMs) * 1000,
  });
  emit(watch.record());

  const stepMsAt = new Map<number, number>();
  for (const batch of spec.trainBatches) {
    const { x, y } = batchOf(batch);
    try {
      const estimate = stepMsAt.size
        ? Math.max(...stepMsAt.values()) * batch / Math.min(...stepMsAt.keys())
        : 0;
      if (estimate * (spec.effort.warmupSteps + spec.effort.minSteps) > remainingMs(spec.deadline)) {
        emit({ kind: "skipped", what: `train b${batch}`, reason: "would not fit the row's time budget" });
        continue;
      }
      const stepMs = await timeRuns(step(x, y), {
        warmup: spec.effort.warmupSteps,
        min: spec.effort.minSteps,
        max: spec.effort.maxSteps,
        seconds: spec.effort.stepSeconds,
        deadline: spec.deadline,
      });
      stepMsAt.set(batch, median(stepMs));
      emit({ kind: "train", batch, stepMs, samplesPerSec: batch / median(stepMs) * 1000 });
      emit(watch.record());
    } finally {
      tf.dispose([x, y]);
    }
  }

  // Peak tensor memory of one step at the largest batch; profiling keeps a list of every kernel it runs.
  const largest = Math.max(...stepMsAt.keys());
  const fits = (batch: number) => 2 * (stepMsAt.get(batch) ?? Infinity) < remainingMs(spec.deadline);
  if (Number.isFinite(largest) && fits(largest)) {
    const { x, y } = batchOf(largest);
    try {
      const profile = await tf.profile(step(x, y));
      watch.tensorPeak = profile.peakBytes;
    } catch (err) {
      emit({ kind: "skipped", what: "tensor peak", reason: (err as Error).message });
    } finally {
      tf.dispose([x, y]);
    }
  }

  if (spec.profile && info.name !== "webgpu" && fits(spec.trainBatches[0])) {
    const batch = spec.trainBatches[0];
    const { x, y } = batchOf(batch);
    try {
      const started = performance.now();
      const profile = await tf.profile(step(x, y));
      const stepMs = performance.now() - started;
      const byName = new Map<string, { ms: number; calls: number }>();
      let kernelMs = 0;
      for (const k of profile.kernels) {
        // `name__op` entries are ops with custom gradients: scopes around kernels listed on their own.
        if (k.name.endsWith("__op")) continue;
        const ms = Number(await k.kernelTimeMs) || 0;
        kernelMs += ms;
        const acc = byName.get(k.name) ?? { ms: 0, calls: 0 };
        byName.set(k.name, { ms: acc.ms + ms, calls: acc.calls + 1 });
      }
      const kernels = [...byName].map(([name, v]) => ({ name, ...v })).sort((a, b) => b.ms - a.ms);
      emit({ kind: "profile", batch, stepMs, kernelMs, kernels });
    } finally {
      tf.dispose([x, y]);
    }
  }

  emit(watch.record());
  state.headOptimizer.dispose();
  state.backboneOptimizer.dispose();
  served.dispose();

  if (spec.job) await timeJob(spec, stepMsAt, watch, emit);
  emitCpu(emit);
}

function emitCpu(emit: Emit) {
  const seconds = processCpuSeconds();
  if (seconds !== undefined) emit({ kind: "cpu", seconds });
}

async function timeJob(spec: RowSpec, stepMsAt: Map<number, number>, watch: MemoryWatch, emit: Emit) {
  const job = spec.job!;
  const epochs = job.epochs ?? ADAPT_DEFAULTS.epochs;
  const batchSize = ADAPT_DEFAULTS.batchSize;
  const trainPerClass = job.shots - Math.max(1, Math.round(job.shots * 0.2));
  const steps = epochs * Math.ceil(job.classes * trainPerClass / batchSize);
  // Steps, plus about one forward pass over the set per epoch and five more around the training.
  const step16 = stepMsAt.get(16) ?? Math.max(...stepMsAt.values(), 0);
  const estimate = step16 * (steps + (epochs + 5) * (job.classes * job.shots) / batchSize / 3);
  if (estimate > remainingMs(spec.deadline)) {
    emit({
      kind: "skipped",
      what: "adapt",
      reason: `estimated ${(estimate / 1000).toFixed(0)} s (${steps} steps at ${
        (step16 / 1000).toFixed(1)
      } s) > ${(remainingMs(spec.deadline) / 1000).toFixed(0)} s left of the row's budget`,
    });
    return;
  }
  const backbone = await speedBackbone(spec.backbone);
  const data = syntheticJob(backbone, job.classes, job.shots);
  try {
    const started = performance.now();
    // Exactly `epochs` (no few-shot step floor), the same schedule the PyTorch peer runs.
    const model = await adapt(backbone, data, { epochs, minSteps: 0, onProgress: () => watch.sample() });
    const seconds = (performance.now() - started) / 1000;
    const m = model.metadata.metrics;
    emit({
      kind: "adapt",
      seconds,
      trainingSeconds: m.history.reduce((s, r) => s + r.seconds, 0),
      classes: job.classes,
      shots: job.shots,
      epochs,
      steps,
      valAccuracy: m.valAccuracy,
    });
    model.dispose();
  } finally {
    data.images.dispose();
  }
  emit(watch.record());
}

/** Runs `jobs` small `adapt()` jobs back to back and reports resident memory and live tensors as it goes. */
export async function runSoak(spec: SoakSpec, emit: Emit): Promise<void> {
  const info = await initBackend(spec.backend);
  const probe = await speedBackbone("tiny");
  emit(infoRecord(info, "tiny", probe, trainableParameters(probe.model)));
  probe.model.dispose();
  const gc = (globalThis as { gc?: () => void }).gc;
  const wasmHeap = () =>
    tf.getBackend() === "wasm"
      ? heapMemory(tf.backend() as unknown as WasmBackend).buffer.byteLength
      : undefined;
  const sample = (job: number): SoakSample => {
    gc?.();
    const usage = Deno.memoryUsage();
    const wasm = wasmHeap();
    return {
      job,
      rssMiB: usage.rss / MiB,
      heapMiB: usage.heapUsed / MiB,
      wasmMiB: wasm === undefined ? undefined : wasm / MiB,
      numTensors: tf.memory().numTensors,
    };
  };
  const samples = [sample(0)];
  const started = performance.now();
  let done = 0;
  for (let job = 1; job <= spec.jobs; job++) {
    if (Date.now() > spec.deadline) break;
    const backbone = await speedBackbone("tiny");
    const data = syntheticJob(backbone, spec.classes, spec.shots, job);
    const model = await adapt(backbone, data, {
      epochs: spec.epochs,
      batchSize: spec.batchSize,
      seed: job,
      minSteps: 0,
    });
    model.dispose();
    data.images.dispose();
    done = job;
    if (job === 1 || job % 10 === 0 || job === spec.jobs) samples.push(sample(job));
  }
  if (done < spec.jobs) {
    emit({
      kind: "skipped",
      what: "soak",
      reason: `stopped at the deadline after ${done} of ${spec.jobs} jobs`,
    });
    if (samples[samples.length - 1].job !== done) samples.push(sample(done));
  }
  emit({
    kind: "soak",
    jobs: done,
    samplesPerJob: spec.classes * spec.shots,
    epochs: spec.epochs,
    seconds: (performance.now() - started) / 1000,
    samples,
  });
  emitCpu(emit);
}
