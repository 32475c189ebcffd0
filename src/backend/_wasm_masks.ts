import * as tf from "@tensorflow/tfjs";
import { heap } from "./_wasm_heap_copy.ts";
import type { WasmBackend } from "./_wasm_scratch.ts";

// The ReLU6 (clipByValue) gradient is `where(x >= lo && x <= hi, dy, 0)`: two comparisons, a logical and and
// a select over every activation. The stock wasm kernels for these call an operation through a function
// pointer per element, with a modulo per operand for broadcasting; these loops run several times faster.
// They take the shapes the gradient produces (equal shapes, or one side a single value) and leave anything
// else to the stock kernel.

type Args = { inputs: Record<string, tf.TensorInfo>; backend: WasmBackend };

const size = (t: tf.TensorInfo) => tf.util.sizeFromShape(t.shape);

/** `a <op> b` to bool for float32 `a` and `b` of one shape, or either a single value. */
export function fastComparison(op: "GreaterEqual" | "LessEqual", fallback: tf.KernelFunc): tf.KernelFunc {
  return ((args: Args) => {
    const { a, b } = args.inputs;
    const n = Math.max(size(a), size(b));
    const sameShape = tf.util.arraysEqual(a.shape, b.shape);
    if (a.dtype !== "float32" || b.dtype !== "float32" || (!sameShape && size(a) !== 1 && size(b) !== 1)) {
      return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const out = args.backend.makeOutput(sameShape || size(a) !== 1 ? a.shape : b.shape, "bool");
    if (n === 0) return out;
    const va = heap(args.backend, a), vb = heap(args.backend, b), o = heap(args.backend, out);
    // `a >= b` is `b <= a`: one loop per operand layout, with the comparison spelled out for the JIT.
    const [lo, hi] = op === "LessEqual" ? [va, vb] : [vb, va];
    if (lo.length === n && hi.length === n) { for (let i = 0; i < n; i++) o[i] = lo[i] <= hi[i] ? 1 : 0; }
    else if (hi.length === 1) {
      const h = hi[0];
      for (let i = 0; i < n; i++) o[i] = lo[i] <= h ? 1 : 0;
    } else {
      const l = lo[0];
      for (let i = 0; i < n; i++) o[i] = l <= hi[i] ? 1 : 0;
    }
    return out;
  }) as unknown as tf.KernelFunc;
}

/** `a && b` for bool tensors of one shape, four bytes at a time. */
export function fastLogicalAnd(fallback: tf.KernelFunc): tf.KernelFunc {
  return ((args: Args) => {
    const { a, b } = args.inputs;
    if (a.dtype !== "bool" || b.dtype !== "bool" || !tf.util.arraysEqual(a.shape, b.shape)) {
      return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const out = args.backend.makeOutput(a.shape, "bool");
    const n = size(a);
    if (n === 0) return out;
    const va = heap(args.backend, a), vb = heap(args.backend, b), o = heap(args.backend, out);
    // Bools are 0 or 1, so a bitwise and of words is the logical and of each byte.
    const aligned = va.byteOffset % 4 === 0 && vb.byteOffset % 4 === 0 && o.byteOffset % 4 === 0;
    const words = aligned ? n >> 2 : 0;
    if (words > 0) {
      const wa = new Int32Array(va.buffer, va.byteOffset, words);
      const wb = new Int32Array(vb.buffer, vb.byteOffset, words);
      const wo = new Int32Array(o.buffer, o.byteOffset, words);
      for (let i = 0; i < words; i++) wo[i] = wa[i] & wb[i];
    }
    for (let i = words * 4; i < n; i++) o[i] = va[i] & vb[i];
    return out;
  }) as unknown as tf.KernelFunc;
}

/** `condition ? t : e` for a bool condition and float32 branches, all of one shape. */
export function fastSelect(fallback: tf.KernelFunc): tf.KernelFunc {
  return ((args: Args) => {
    const { condition, t, e } = args.inputs;
    const sameShape = tf.util.arraysEqual(condition.shape, t.shape) && tf.util.arraysEqual(t.shape, e.shape);
    if (condition.dtype !== "bool" || t.dtype !== "float32" || e.dtype !== "float32" || !sameShape) {
      return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const out = args.backend.makeOutput(t.shape, "float32");
    const n = size(t);
    if (n === 0) return out;
    const c = heap(args.backend, condition), vt = heap(args.backend, t), ve = heap(args.backend, e);
    const o = heap(args.backend, out);
    for (let i = 0; i < n; i++) o[i] = c[i] ? vt[i] : ve[i];
    return out;
  }) as unknown as tf.KernelFunc;
}
