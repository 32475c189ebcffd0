import * as tf from "@tensorflow/tfjs";

/**
 * The part of tfjs-backend-wasm's `BackendWasm` that composed kernels use: allocation on the wasm heap and
 * reference-counted release. Kernels receive it as `backend`.
 */
export interface WasmBackend extends tf.KernelBackend {
  dataIdMap: {
    get(dataId: tf.DataId): { id: number; memoryOffset: number } | undefined;
    delete(dataId: tf.DataId): boolean;
  };
  wasm: { tfjs: { disposeData(id: number): void } };
  makeOutput(
    shape: number[],
    dtype: tf.DataType,
    memoryOffset?: number,
    values?: tf.backend_util.BackendValues,
  ): tf.TensorInfo;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  incRef(dataId: tf.DataId): void;
}

/**
 * Runs wasm kernels directly (not through the engine, so nothing is recorded on a gradient tape or counted as
 * a tensor) and frees every intermediate they allocate. One per composed-kernel call.
 */
export class WasmScratch {
  readonly backend: WasmBackend;
  #owned: tf.TensorInfo[] = [];
  #aliases: tf.TensorInfo[] = [];

  constructor(backend: WasmBackend) {
    this.backend = backend;
  }

  /** Runs the wasm kernel `name`; its output is freed by {@linkcode release} unless it is the result. */
  run(
    name: string,
    inputs: tf.NamedTensorInfoMap | tf.TensorInfo[],
    attrs: Record<string, unknown> = {},
  ): tf.TensorInfo {
    const kernel = tf.getKernel(name, "wasm");
    if (!kernel) throw new Error(`wasm training: the wasm backend has no '${name}' kernel to build on`);
    const out = kernel.kernelFunc({
      inputs: inputs as tf.NamedTensorInfoMap,
      backend: this.backend,
      attrs: attrs as tf.NamedAttrMap,
    });
    this.#owned.push(...(Array.isArray(out) ? out : [out]));
    if (Array.isArray(out)) throw new Error(`wasm training: '${name}' returned several outputs, not one`);
    return out;
  }

  /** Takes ownership of `info` (allocated outside {@linkcode run}): it is freed with the rest. */
  own(info: tf.TensorInfo): tf.TensorInfo {
    this.#owned.push(info);
    return info;
  }

  /** A float32 scalar on the heap, freed with the rest. */
  scalar(value: number): tf.TensorInfo {
    const out = this.backend.makeOutput([], "float32", undefined, new Float32Array([value]));
    this.#owned.push(out);
    return out;
  }

  /**
   * A float32 tensor `shape` whose data is `base`'s from element `offset` on: no copy, so a kernel can read a
   * shifted window of `base`. Dropped (without freeing `base`'s memory) by {@linkcode release}.
   */
  alias(base: tf.TensorInfo, offset: number, shape: number[]): tf.TensorInfo {
    const data = this.backend.dataIdMap.get(base.dataId);
    if (base.dtype !== "float32" || data?.memoryOffset === undefined) {
      throw new Error("wasm training: can only alias float32 data on the wasm heap");
    }
    if (offset < 0 || offset + tf.util.sizeFromShape(shape) > tf.util.sizeFromShape(base.shape)) {
      throw new Error(`wasm training: alias [${offset}, +[${shape}]) runs outside [${base.shape}]`);
    }
    const info = this.backend.makeOutput(shape, "float32", data.memoryOffset + 4 * offset);
    this.#aliases.push(info);
    return info;
  }

  /**
   * Frees every intermediate except `result` (or anything sharing its data), and returns `result` with the
   * shape the caller wants; the element count must not change.
   */
  release(result: tf.TensorInfo, shape: number[] = result.shape): tf.TensorInfo {
    if (tf.util.sizeFromShape(shape) !== tf.util.sizeFromShape(result.shape)) {
      throw new Error(`wasm training: cannot view [${result.shape}] as [${shape}]`);
    }
    let kept = false;
    for (const info of this.#owned) {
      // The first owned reference to the result's data becomes the engine's; later ones (reshapes) go.
      if (info.dataId === result.dataId && !kept) kept = true;
      else this.backend.disposeData(info.dataId);
    }
    this.#owned = [];
    this.#dropAliases();
    if (!kept) throw new Error("wasm training: a composed kernel returned data it does not own");
    return { dataId: result.dataId, shape, dtype: result.dtype };
  }

  /** Frees every intermediate; for the error path. */
  dispose(): void {
    for (const info of this.#owned) this.backend.disposeData(info.dataId);
    this.#owned = [];
    this.#dropAliases();
  }

  #dropAliases(): void {
    // An alias's memory belongs to its base: unregister it without the free() that disposeData would do.
    for (const info of this.#aliases) {
      const data = this.backend.dataIdMap.get(info.dataId);
      if (!data) continue;
      this.backend.wasm.tfjs.disposeData(data.id);
      this.backend.dataIdMap.delete(info.dataId);
    }
    this.#aliases = [];
  }
}

/** The same data seen with another shape (no copy, no new reference: don't free it separately). */
export function view(info: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

/** Runs `body` with a fresh scratch space and frees everything it allocated but the result. */
export function composed(
  backend: WasmBackend,
  body: (s: WasmScratch) => { result: tf.TensorInfo; shape?: number[] },
): tf.TensorInfo {
  const s = new WasmScratch(backend);
  try {
    const { result, shape } = body(s);
    return s.release(result, shape);
  } catch (err) {
    s.dispose();
    throw err;
  }
}
