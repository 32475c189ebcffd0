import type * as tf from "@tensorflow/tfjs";
import type { WasmBackend } from "./_wasm_scratch.ts";

/** A new reference to `x`'s data: no kernel writes into its inputs, so sharing is safe. */
function share(backend: WasmBackend, x: tf.TensorInfo): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * Identity on wasm as a new reference to the same data, as the cpu and webgl backends do; the stock kernel
 * copies it. The engine clones every tensor it saves for a gradient, so in training the copies add up to a
 * pass over every activation. Strings go to `fallback`.
 */
export function sharedIdentity(fallback: tf.KernelFunc): tf.KernelFunc {
  return ((args: { inputs: { x: tf.TensorInfo }; backend: WasmBackend }) => {
    const { x } = args.inputs;
    if (x.dtype === "string") return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    return share(args.backend, x);
  }) as unknown as tf.KernelFunc;
}

/**
 * Cast to the dtype a tensor already has, as a new reference to its data (the cpu backend's way); the stock
 * kernel copies it. The gradient of every Identity is such a cast (`cast(dy, "float32")`), so in training
 * the stock kernel copies every gradient that flows back through a saved activation. Other casts go to
 * `fallback`.
 */
export function sharedCast(fallback: tf.KernelFunc): tf.KernelFunc {
  return ((args: { inputs: { x: tf.TensorInfo }; attrs: { dtype: tf.DataType }; backend: WasmBackend }) => {
    const { x } = args.inputs;
    if (x.dtype !== args.attrs.dtype || x.dtype === "string") {
      return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    return share(args.backend, x);
  }) as unknown as tf.KernelFunc;
}
