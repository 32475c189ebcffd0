import type * as tf from "@tensorflow/tfjs";
import type { WasmBackend } from "./_wasm_scratch.ts";
import { PLAIN_WASM, SHARED_WASM } from "./simd/training_kernels_wasm.ts";

// The WebAssembly SIMD training kernels of ./simd/training_kernels.c, instantiated on the wasm backend's own
// memory so they read and write its tensors in place, by heap address.

type Ptr = number;

/**
 * A convolution-gradient kernel: two inputs and the output by address, then the geometry (input `n, h, w,
 * c`, output `ho, wo`, filter `kh, kw`, strides, top and left padding), then the output channels for a full
 * convolution.
 */
type ConvolutionGradient = (a: Ptr, b: Ptr, out: Ptr, ...geometry: number[]) => void;

/** The module's exports; what each computes is documented in ./simd/training_kernels.c. */
export interface SimdKernels {
  bn_scratch_bytes(c: number): number;
  bn_forward(
    x: Ptr,
    y: Ptr,
    rows: number,
    c: number,
    gamma: Ptr,
    beta: Ptr,
    epsilon: number,
    mean: Ptr,
    variance: Ptr,
    scratch: Ptr,
    relu6: number,
  ): void;
  bn_backward(
    dy: Ptr,
    x: Ptr,
    rows: number,
    c: number,
    mean: Ptr,
    variance: Ptr,
    gamma: Ptr,
    beta: Ptr,
    epsilon: number,
    dx: Ptr,
    dgamma: Ptr,
    dbeta: Ptr,
    scratch: Ptr,
    relu6: number,
  ): void;
  bn_inference(
    x: Ptr,
    y: Ptr,
    rows: number,
    c: number,
    mean: Ptr,
    variance: Ptr,
    scale: Ptr,
    hasScale: number,
    offset: Ptr,
    hasOffset: number,
    epsilon: number,
    scratch: Ptr,
  ): void;
  relu6(x: Ptr, y: Ptr, n: number): void;
  relu6_grad(dy: Ptr, x: Ptr, dx: Ptr, n: number): void;
  conv2d_filter_grad: ConvolutionGradient;
  depthwise_filter_grad: ConvolutionGradient;
  depthwise_input_grad: ConvolutionGradient;
}

type EmscriptenModule = { asm?: { memory?: WebAssembly.Memory }; wasmMemory?: WebAssembly.Memory };

const instances = new WeakMap<WebAssembly.Memory, SimdKernels>();

/** The wasm backend's heap as a WebAssembly.Memory, whether the build exports it or imports a shared one. */
function heapMemory(backend: WasmBackend): WebAssembly.Memory {
  const module = backend.wasm as unknown as EmscriptenModule;
  const memory = module.asm?.memory ?? module.wasmMemory;
  if (!(memory instanceof WebAssembly.Memory)) {
    throw new Error("wasm training: cannot reach the wasm backend's WebAssembly.Memory");
  }
  return memory;
}

/**
 * The SIMD kernels instantiated on `backend`'s heap: compiled once per heap, the shared-memory build for the
 * threaded backend's shared heap. They run on the calling thread.
 */
export function simdKernels(backend: WasmBackend): SimdKernels {
  const memory = heapMemory(backend);
  let found = instances.get(memory);
  if (!found) {
    const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
    const bytes = Uint8Array.from(atob(shared ? SHARED_WASM : PLAIN_WASM), (ch) => ch.charCodeAt(0));
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    found = instance.exports as unknown as SimdKernels;
    instances.set(memory, found);
  }
  return found;
}

/** Where `t`'s data starts on the heap. */
export function address(backend: WasmBackend, t: tf.TensorInfo): Ptr {
  const data = backend.dataIdMap.get(t.dataId);
  if (data?.memoryOffset === undefined) {
    throw new Error("wasm training: a tensor has no data on the wasm heap");
  }
  return data.memoryOffset;
}

/** Runs `body` with `bytes` of heap scratch, freed after. */
export function withScratch<T>(backend: WasmBackend, bytes: number, body: (scratch: Ptr) => T): T {
  const scratch = backend.makeOutput([Math.ceil(bytes / 4)], "float32");
  try {
    return body(address(backend, scratch));
  } finally {
    backend.disposeData(scratch.dataId);
  }
}

/**
 * Runs the convolution-gradient kernel `kernel` on `a` and `b` into a new `outShape` float32 tensor, with the
 * geometry of `info` (tfjs' own `computeConv2DInfo`, which also checked it).
 */
export function convolutionGradient(
  backend: WasmBackend,
  kernel: "conv2d_filter_grad" | "depthwise_filter_grad" | "depthwise_input_grad",
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  outShape: number[],
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const out = backend.makeOutput(outShape, "float32");
  const geometry = [
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
  ];
  if (kernel === "conv2d_filter_grad") geometry.push(info.outChannels);
  simdKernels(backend)[kernel](address(backend, a), address(backend, b), address(backend, out), ...geometry);
  return out;
}
