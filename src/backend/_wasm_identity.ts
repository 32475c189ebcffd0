import type * as tf from "@tensorflow/tfjs";
import type { WasmBackend } from "./_wasm_scratch.ts";

/**
 * Identity on wasm as a new reference to the same data, as the cpu and webgl backends do; the stock kernel
 * copies it. The engine clones every tensor it saves for a gradient, so in training the copies add up to a
 * pass over every activation. Sharing is safe because no kernel writes into its inputs. Strings go to
 * `fallback`.
 */
export function sharedIdentity(fallback: tf.KernelFunc): tf.KernelFunc {
  return ((args: { inputs: { x: tf.TensorInfo }; backend: WasmBackend }) => {
    const { x } = args.inputs;
    if (x.dtype === "string") return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    args.backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  }) as unknown as tf.KernelFunc;
}
