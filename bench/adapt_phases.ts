/**
 * Where the speed benchmark's adaptation job spends its time outside the training steps: `adapt()` (DAFT
 * unless `--method` names another) on the benchmark's synthetic set (`classes x shots`, `epochs`, no step
 * floor, as `deno task bench` times it), its phases told apart by the progress events `adapt()` sends:
 *
 * - `pretrained`: the start to `linear_probe` (options, split, the pretrained validation features);
 * - `baseline`: `linear_probe` to `bn_conversion` (the pass over the training images, which also measures
 *   the BN statistics, and the logistic fit); a recipe that converts nothing sends no `bn_conversion`, and
 *   its baseline counts in the next phase;
 * - `conversion + head + step 1`: `bn_conversion` to the first step's event (the conversion and its output
 *   check, the head and its feature-norm pass, then the first step, which no event starts);
 * - `steps`: each later step's event from the one before (batch, augmentation, step, loss read), an epoch's
 *   first from the previous epoch's record;
 * - `validation`: each epoch's last step to its record (a validation pass, checkpoint);
 * - `evaluation + drift`: the last record to `adapt()`'s return (parameter change, final scores, distortion
 *   features, drift reference).
 *
 * The first job in a process pays the one-off costs (kernel compiles, operator set-up); the later ones run
 * as the benchmark's job does, after its warm-up. Each job also prints a digest of the adapted weights and
 * of the metrics without their timings, so that two builds can be checked to train the same model.
 *
 *   deno run -A --v8-flags=--no-liftoff bench/adapt_phases.ts [--jobs 3] [--backend wasm] [--method daft]
 *                                                           [--classes 10] [--shots 10] [--epochs 10]
 *
 * @module
 */
import "./_speed_wasm_dir.ts";
import * as tf from "@tensorflow/tfjs";
import { commandLine, numberOption } from "../cli/_args.ts";
import { adapt } from "../src/adapt/adapt.ts";
import type { AdaptProgress } from "../src/adapt/adapt_options.ts";
import { DEFAULT_METHOD, type Method } from "../src/adapt/methods.ts";
import { type BackendPolicy, initBackend } from "../src/backend/init_backend.ts";
import { speedBackbone, syntheticJob } from "./_speed_models.ts";

/** One job's seconds by phase, and what it trained. */
interface PhaseTimes {
  total: number;
  pretrained: number;
  baseline: number;
  conversionAndHead: number;
  steps: number[];
  validation: number[];
  evaluationAndDrift: number;
  weightsDigest: string;
  metricsDigest: string;
}

async function digest(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(hash.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Runs one timed job on a fresh backbone. */
async function timePhases(
  classes: number,
  shots: number,
  epochs: number,
  method: Method = DEFAULT_METHOD,
): Promise<PhaseTimes> {
  const backbone = await speedBackbone("mobilenetv2");
  const data = syntheticJob(backbone, classes, shots);
  const events: { at: number; progress: AdaptProgress }[] = [];
  const started = performance.now();
  const model = await adapt(backbone, data, {
    method,
    epochs,
    minSteps: 0,
    onProgress: (progress) => events.push({ at: performance.now(), progress }),
  });
  const ended = performance.now();
  data.images.dispose();
  try {
    // A recipe that converts nothing sends no `bn_conversion`: its baseline then counts in the next phase.
    const at = (phase: AdaptProgress["phase"]) => events.find((e) => e.progress.phase === phase)?.at ?? NaN;
    const headStart = Number.isNaN(at("bn_conversion")) ? at("linear_probe") : at("bn_conversion");
    const trainingEvents = events.filter((e) => e.progress.phase === "training");
    const steps: number[] = [], validation: number[] = [];
    let previous = headStart, firstStep = NaN;
    for (const e of trainingEvents) {
      if (e.progress.record) validation.push((e.at - previous) / 1000);
      else {
        if (Number.isNaN(firstStep)) firstStep = e.at;
        else steps.push((e.at - previous) / 1000);
      }
      previous = e.at;
    }
    const weights = await Promise.all(
      model.classifier.weights.map((w) => w.read().data() as Promise<Float32Array>),
    );
    const flat = new Uint8Array(weights.reduce((n, w) => n + w.byteLength, 0));
    let offset = 0;
    for (const w of weights) {
      flat.set(new Uint8Array(w.buffer, w.byteOffset, w.byteLength), offset);
      offset += w.byteLength;
    }
    const { seconds: _s, history, ...metrics } = model.metadata.metrics;
    const untimed = { ...metrics, history: history.map(({ seconds: _e, ...r }) => r) };
    const json = JSON.stringify({
      metrics: untimed,
      bn: model.metadata.bnConversion,
      drift: model.metadata.driftReference,
    });
    return {
      total: (ended - started) / 1000,
      pretrained: (at("linear_probe") - started) / 1000,
      baseline: (at("bn_conversion") - at("linear_probe")) / 1000,
      conversionAndHead: (firstStep - headStart) / 1000,
      steps,
      validation,
      evaluationAndDrift: (ended - previous) / 1000,
      weightsDigest: await digest(flat),
      metricsDigest: await digest(new TextEncoder().encode(json)),
    };
  } finally {
    model.dispose();
  }
}

const USAGE = `usage: deno run -A --v8-flags=--no-liftoff bench/adapt_phases.ts [--jobs 3] [--backend wasm]
       [--method daft] [--classes 10] [--shots 10] [--epochs 10]`;

if (import.meta.main) {
  const { values } = commandLine(USAGE, {
    jobs: { type: "string" },
    backend: { type: "string", default: "wasm" },
    method: { type: "string", default: DEFAULT_METHOD },
    classes: { type: "string" },
    shots: { type: "string" },
    epochs: { type: "string" },
  });
  const args = {
    jobs: numberOption("jobs", values.jobs) ?? 3,
    backend: values.backend,
    method: values.method as Method,
    classes: numberOption("classes", values.classes) ?? 10,
    shots: numberOption("shots", values.shots) ?? 10,
    epochs: numberOption("epochs", values.epochs) ?? 10,
  };
  const info = await initBackend(args.backend as BackendPolicy);
  console.log(
    `backend ${info.name}; ${args.method}, ${args.classes} classes x ${args.shots} shots, ${args.epochs} epochs`,
  );
  const s = (v: number) => v.toFixed(2).padStart(6);
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(
    "job  total  pretr  basel  bn+hd+step1  steps(n, median)  valid  eval+drift  weights           metrics",
  );
  for (let job = 0; job < args.jobs; job++) {
    const t = await timePhases(args.classes, args.shots, args.epochs, args.method);
    const outside = t.total - sum(t.steps) - sum(t.validation);
    console.log(
      `${String(job).padStart(3)} ${s(t.total)} ${s(t.pretrained)} ${s(t.baseline)} ${
        s(t.conversionAndHead)
      } ${s(sum(t.steps))} (${t.steps.length}, ${(median(t.steps) * 1000).toFixed(0)} ms) ${
        s(sum(t.validation))
      } ${s(t.evaluationAndDrift)}      ${t.weightsDigest}  ${t.metricsDigest}  outside steps+valid ${
        outside.toFixed(2)
      } s, tensors ${tf.memory().numTensors}`,
    );
  }
}
