import * as tf from "@tensorflow/tfjs";

/** The outcome of comparing a backend against the CPU reference. */
export interface SelfTestResult {
  backend: string;
  passed: boolean;
  /** Largest absolute difference from the CPU reference, per check. */
  maxAbsDiff: { conv: number; matmul: number; gradientStep: number };
  tolerance: number;
  millis: number;
  error?: string;
}

/** Largest absolute difference the self-test accepts between a backend and the CPU reference. */
export const SELF_TEST_TOLERANCE = 1e-3;

type Outputs = { conv: Float32Array; matmul: Float32Array; gradientStep: Float32Array };

// Deterministic inputs (no RNG) so both backends see identical numbers.
function ramp(shape: number[], scale: number): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37 + scale) * scale);
  return tf.tensor(values, shape);
}

async function compute(): Promise<Outputs> {
  const [conv, matmul, gradientStep] = tf.tidy(() => {
    const x = ramp([2, 9, 9, 3], 1) as tf.Tensor4D;
    const k = ramp([3, 3, 3, 8], 0.5) as tf.Tensor4D;
    const conv = tf.conv2d(x, k, 2, "same");
    const a = ramp([17, 33], 1) as tf.Tensor2D;
    const b = ramp([33, 9], 0.7) as tf.Tensor2D;
    const matmul = tf.matMul(a, b);
    // One SGD step on a conv + dense softmax classifier: exercises backprop through conv and matmul.
    const w = ramp([3, 3, 3, 4], 0.3) as tf.Tensor4D;
    const d = ramp([4, 3], 0.2) as tf.Tensor2D;
    const labels = tf.oneHot(tf.tensor1d([0, 2], "int32"), 3);
    const loss = (wc: tf.Tensor, wd: tf.Tensor) => {
      const h = tf.mean(tf.relu(tf.conv2d(x, wc as tf.Tensor4D, 1, "same")), [1, 2]);
      return tf.losses.softmaxCrossEntropy(labels, tf.matMul(h as tf.Tensor2D, wd as tf.Tensor2D));
    };
    const [gw, gd] = tf.grads(loss)([w, d]);
    const step = tf.concat([tf.sub(w, tf.mul(gw, 0.1)).flatten(), tf.sub(d, tf.mul(gd, 0.1)).flatten()]);
    return [conv, matmul, step];
  });
  const out = {
    conv: await conv.data() as Float32Array,
    matmul: await matmul.data() as Float32Array,
    gradientStep: await gradientStep.data() as Float32Array,
  };
  tf.dispose([conv, matmul, gradientStep]);
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/**
 * Runs a conv, a matmul and one gradient step on the active backend and on the CPU reference, and compares
 * them. Leaves the active backend as it found it.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { runSelfTest } from "./self_test.ts";
 * await tf.setBackend("cpu");
 * const result = await runSelfTest();
 * console.assert(result.passed);
 * ```
 */
export async function runSelfTest(tolerance = SELF_TEST_TOLERANCE): Promise<SelfTestResult> {
  const backend = tf.getBackend();
  const started = performance.now();
  try {
    const candidate = await compute();
    await tf.setBackend("cpu");
    const reference = await compute();
    await tf.setBackend(backend);
    const diffs = {
      conv: maxAbsDiff(candidate.conv, reference.conv),
      matmul: maxAbsDiff(candidate.matmul, reference.matmul),
      gradientStep: maxAbsDiff(candidate.gradientStep, reference.gradientStep),
    };
    return {
      backend,
      passed: Object.values(diffs).every((d) => d <= tolerance),
      maxAbsDiff: diffs,
      tolerance,
      millis: performance.now() - started,
    };
  } catch (err) {
    if (tf.getBackend() !== backend) await tf.setBackend(backend).catch(() => {});
    return {
      backend,
      passed: false,
      maxAbsDiff: { conv: Infinity, matmul: Infinity, gradientStep: Infinity },
      tolerance,
      millis: performance.now() - started,
      error: (err as Error).message,
    };
  }
}
