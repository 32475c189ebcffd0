import type * as tf from "@tensorflow/tfjs";
import type { WasmBackend } from "./_wasm_scratch.ts";
import { type ChunkArgs, KernelThread, MAX_CHUNKS } from "./_wasm_kernel_thread.ts";
import { PLAIN_WASM, SHARED_WASM } from "./simd/training_kernels_wasm.ts";

// The WebAssembly SIMD training kernels of ./simd/training_kernels.c, instantiated on the wasm backend's own
// memory so they read and write its tensors in place, by heap address.

type Ptr = number;

/**
 * A kernel computing channels `[c0, c1)` of its output (output channels for conv2d_filter_grad): two inputs
 * and the output by address, the geometry (input `n, h, w, c`, output `ho, wo`, filter `kh, kw`, strides,
 * top and left padding; then, for a full convolution, the output channels and scratch for one output row's
 * input patches, 0 for a 1x1 stride-1 unpadded filter), then `c0, c1`.
 */
type ChannelRangeGradient = (a: Ptr, b: Ptr, out: Ptr, ...geometryAndRange: number[]) => void;

/** The module's exports; what each computes is documented in ./simd/training_kernels.c. */
export interface SimdKernels {
  bn_sums(x: Ptr, rows: number, c: number, shift: Ptr, part: Ptr, totals: Ptr): void;
  bn_scales(c: number, gamma: Ptr, variance: Ptr, epsilon: number, scale: Ptr): void;
  bn_statistics(
    rows: number,
    c: number,
    shift: Ptr,
    totals: Ptr,
    chunks: number,
    stride: number,
    gamma: Ptr,
    beta: Ptr,
    epsilon: number,
    mean: Ptr,
    variance: Ptr,
    scale: Ptr,
    offset: Ptr,
  ): void;
  bn_apply(x: Ptr, y: Ptr, rows: number, c: number, mean: Ptr, scale: Ptr, offset: Ptr, relu6: number): void;
  bn_grad_sums(
    dy: Ptr,
    x: Ptr,
    rows: number,
    c: number,
    mean: Ptr,
    zscale: Ptr,
    beta: Ptr,
    relu6: number,
    part: Ptr,
    totals: Ptr,
  ): void;
  bn_grad_coefficients(
    rows: number,
    c: number,
    totals: Ptr,
    chunks: number,
    stride: number,
    variance: Ptr,
    gamma: Ptr,
    epsilon: number,
    a: Ptr,
    b: Ptr,
    offset: Ptr,
    dgamma: Ptr,
    dbeta: Ptr,
  ): void;
  bn_grad_apply(
    dy: Ptr,
    x: Ptr,
    dx: Ptr,
    rows: number,
    c: number,
    mean: Ptr,
    zscale: Ptr,
    beta: Ptr,
    a: Ptr,
    b: Ptr,
    offset: Ptr,
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
  conv2d_filter_grad: ChannelRangeGradient;
  depthwise_filter_grad: ChannelRangeGradient;
  depthwise_input_grad: (dy: Ptr, filter: Ptr, dx: Ptr, ...geometry: number[]) => void;
}

/** The exports the helper thread may run. */
const THREAD_KERNELS = [
  "bn_sums",
  "bn_apply",
  "bn_grad_sums",
  "bn_grad_apply",
  "conv2d_filter_grad",
  "depthwise_filter_grad",
  "depthwise_input_grad",
] as const satisfies readonly (keyof SimdKernels)[];

/** Below this many elements a call is not worth sharing with the helper thread. */
const SPLIT_MIN_ELEMENTS = 32_768;
/** A call is cut into at most this many chunks, ... */
const TARGET_CHUNKS = 16;
/** ... of at least about this many elements each (a chunk costs a claim and a call into the module). */
const CHUNK_MIN_ELEMENTS = 16_384;

type EmscriptenModule = { asm?: { memory?: WebAssembly.Memory }; wasmMemory?: WebAssembly.Memory };

interface HeapKernels {
  kernels: SimdKernels;
  /** The helper thread, on a shared heap while kernel threading is on. */
  thread?: KernelThread;
  bytes: Uint8Array;
  memory: WebAssembly.Memory;
}

const instances = new WeakMap<WebAssembly.Memory, HeapKernels>();
/** Heaps with a helper thread, which holds its heap alive until closed. */
const threaded = new Set<HeapKernels>();
let threading = true;

/** The wasm backend's heap as a WebAssembly.Memory, whether the build exports it or imports a shared one. */
export function heapMemory(backend: WasmBackend): WebAssembly.Memory {
  const module = backend.wasm as unknown as EmscriptenModule;
  const memory = module.asm?.memory ?? module.wasmMemory;
  if (!(memory instanceof WebAssembly.Memory)) {
    throw new Error("wasm training: cannot reach the wasm backend's WebAssembly.Memory");
  }
  return memory;
}

function heapKernels(backend: WasmBackend): HeapKernels {
  const memory = heapMemory(backend);
  let found = instances.get(memory);
  if (!found) {
    const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
    const bytes = Uint8Array.from(atob(shared ? SHARED_WASM : PLAIN_WASM), (ch) => ch.charCodeAt(0));
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    found = { kernels: instance.exports as unknown as SimdKernels, bytes, memory };
    instances.set(memory, found);
  }
  return found;
}

/**
 * The SIMD kernels instantiated on `backend`'s heap: compiled once per heap, the shared-memory build for the
 * threaded backend's shared heap. They run on the calling thread; {@linkcode helperThread} gives the second
 * thread that shares calls.
 */
export function simdKernels(backend: WasmBackend): SimdKernels {
  return heapKernels(backend).kernels;
}

/**
 * The helper thread for `backend`'s heap when a call of `elements` elements is worth splitting: on a shared
 * heap (the threaded build), with threading on, once the helper has started (it starts on the first ask;
 * until it is up, calls run on the calling thread alone).
 */
export function helperThread(backend: WasmBackend, elements: number): KernelThread | undefined {
  if (elements < SPLIT_MIN_ELEMENTS) return undefined;
  const thread = threadOf(backend);
  return thread?.ready ? thread : undefined;
}

/** The helper of `backend`'s heap, started if need be: with threading on, on a shared heap only. */
function threadOf(backend: WasmBackend): KernelThread | undefined {
  const heap = heapKernels(backend);
  if (!threading || !(heap.memory.buffer instanceof SharedArrayBuffer)) return undefined;
  if (!heap.thread) {
    heap.thread = new KernelThread(heap.bytes, heap.memory, THREAD_KERNELS);
    threaded.add(heap);
  }
  return heap.thread;
}

/**
 * Stops every kernel helper thread (a helper holds its heap alive): for when the wasm backend stops. A heap
 * still in use starts a new helper at its next large call.
 */
export function closeKernelThreads(): void {
  for (const heap of threaded) {
    heap.thread?.close();
    heap.thread = undefined;
  }
  threaded.clear();
}

/**
 * The helper thread of `backend`'s heap once it is up, starting it if need be; undefined on a plain heap,
 * with threading off, or if it failed to start.
 */
export async function startedHelperThread(backend: WasmBackend): Promise<KernelThread | undefined> {
  const thread = threadOf(backend);
  return thread && await thread.whenReady() ? thread : undefined;
}

/**
 * Turns the kernel helper thread on or off (default on) for calls from now on. For measuring what the
 * second thread brings, and for tests.
 */
export function setKernelThreading(on: boolean): void {
  threading = on;
}

/** An export the helper thread may run. */
export type ThreadKernel = (typeof THREAD_KERNELS)[number];

/**
 * The chunk size, a multiple of `align` units, for a call over `total` units of `unitElements` elements each:
 * up to `maxChunks` (default {@linkcode TARGET_CHUNKS}) chunks of at least {@linkcode CHUNK_MIN_ELEMENTS}
 * elements. It depends on the shape alone, so a call is cut the same way whether or not the helper thread
 * shares it.
 *
 * @example
 * ```ts
 * import { chunkSize } from "./_wasm_simd.ts";
 * console.assert(chunkSize(36_864, 1, 96) === 2_304); // 16 chunks of rows
 * console.assert(chunkSize(100, 1, 10) === 100); // one chunk
 * console.assert(chunkSize(96, 16, 5_000, 4) === 32); // 3 chunks of 32 channels
 * ```
 */
export function chunkSize(
  total: number,
  align: number,
  unitElements: number,
  maxChunks = TARGET_CHUNKS,
): number {
  const chunks = Math.max(1, Math.min(maxChunks, Math.floor((total * unitElements) / CHUNK_MIN_ELEMENTS)));
  return Math.max(align, Math.ceil(total / chunks / align) * align);
}

/**
 * Runs `kernel` over `[0, total)` in chunks of `size` (`argsOf` gives a chunk's arguments): shared with the
 * helper thread, each thread taking the next chunk as it comes free, when the call has more than one chunk
 * and is `elements` large enough to share; else chunk after chunk on this thread. The chunks are the same
 * either way.
 */
export function runChunked(
  backend: WasmBackend,
  kernel: ThreadKernel,
  argsOf: ChunkArgs,
  total: number,
  size: number,
  elements: number,
): void {
  const run = simdKernels(backend)[kernel] as unknown as (...args: number[]) => void;
  const chunks = Math.ceil(total / size);
  const thread = chunks > 1 && chunks <= MAX_CHUNKS ? helperThread(backend, elements) : undefined;
  if (thread) return thread.share(kernel, run, argsOf, total, size);
  for (let chunk = 0, first = 0; first < total; chunk++, first += size) {
    run(...argsOf(first, Math.min(total, first + size), chunk));
  }
}

/**
 * The chunk of output channels for a filter gradient over `channels` of them: whole cache lines of channels
 * (16) where they divide into two or more (a chunk reads its columns of each row: a part line is read for
 * nothing), else `align`; at most `maxChunks` chunks.
 */
function channelChunk(channels: number, elements: number, align: number, maxChunks: number): number {
  const line = channels >= 32 && channels % 16 === 0 ? 16 : align;
  return chunkSize(channels, line, elements / Math.max(channels, 1), maxChunks);
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
  const args = [address(backend, a), address(backend, b), address(backend, out), ...geometry];
  const elements = info.batchSize * info.outHeight * info.outWidth * info.outChannels;
  // At most two chunks of a full convolution's output channels, as each chunk reads the whole input; up to
  // eight of a depthwise one's, which reads only its own channels: 2/8 took 0.5-1 ms a batch-16 step less
  // than 4/16 (timed around these calls in a loop of steps, a temporary change).
  if (kernel === "conv2d_filter_grad") {
    const cout = info.outChannels;
    const size = channelChunk(cout, elements, 8, 2);
    const contiguous = info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 &&
      info.strideWidth === 1 && info.padInfo.top === 0 && info.padInfo.left === 0 &&
      info.inHeight === info.outHeight && info.inWidth === info.outWidth;
    if (contiguous) {
      runChunked(backend, kernel, (first, end) => [...args, cout, 0, first, end], cout, size, elements);
      return out;
    }
    // Each chunk gathers the input patches of an output row into scratch of its own (`wo` positions x
    // `kh * kw * cin` taps).
    const patchBytes = 4 * info.outWidth * info.filterHeight * info.filterWidth * info.inChannels;
    withScratch(backend, Math.ceil(cout / size) * patchBytes, (scratch) => {
      const argsOf: ChunkArgs = (
        first,
        end,
        chunk,
      ) => [...args, cout, scratch + chunk * patchBytes, first, end];
      runChunked(backend, kernel, argsOf, cout, size, elements);
    });
  } else if (kernel === "depthwise_filter_grad") {
    const size = channelChunk(info.inChannels, elements, 4, 8);
    runChunked(backend, kernel, (first, end) => [...args, first, end], info.inChannels, size, elements);
  } else {
    depthwiseInputGradient(backend, args, info, elements);
  }
  return out;
}

/** The strided depthwise input gradient, in chunks of images (dy and dx at an offset, a smaller batch). */
function depthwiseInputGradient(
  backend: WasmBackend,
  [dy, filter, dx, n, ...rest]: number[],
  info: tf.backend_util.Conv2DInfo,
  elements: number,
): void {
  const dyItem = 4 * info.outHeight * info.outWidth * info.outChannels;
  const dxItem = 4 * info.inHeight * info.inWidth * info.inChannels;
  runChunked(
    backend,
    "depthwise_input_grad",
    (first, end) => [dy + first * dyItem, filter, dx + first * dxItem, end - first, ...rest],
    n,
    chunkSize(n, 1, elements / Math.max(n, 1)),
    elements,
  );
}
