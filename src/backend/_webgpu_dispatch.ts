import * as tf from "@tensorflow/tfjs";

// Hand-written WGSL compute passes recorded into tfjs-backend-webgpu's own command stream. Its program API
// (WebGPUProgram) writes one output per dispatch; the fused training kernels write two or three (batch norm
// gives y, mean and variance in one pass), so these build their pipelines on the backend's device and
// record on its open compute pass, with its uniform buffers, its submit batching, its buffer-lifetime
// bookkeeping and its kernel timer (timestamp queries, what `tf.profile` reads).

/** The part of tfjs-backend-webgpu's `WebGPUBackend` these kernels use. */
export interface WebGPUBackend extends tf.KernelBackend {
  device: GPUDevice;
  tensorMap: { get(dataId: tf.DataId): { resource: unknown; dtype: tf.DataType; shape: number[] } };
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  uploadToGPU(dataId: tf.DataId): void;
  makeUniforms(uniforms: { type: "int32" | "uint32" | "float32"; data: number[] }[]): {
    offset: number;
    size: number;
    buffer: GPUBuffer;
  };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  getQueryTime(): Promise<number>;
  commandEncoder: GPUCommandEncoder;
  computePassEncoder: GPUComputePassEncoder | null;
  dispatchCountInPass: number;
  commandQueueOwnedIds: WeakSet<tf.DataId>;
  activeTimers: { name: string; query: Promise<number> }[] | null;
  supportTimestampQuery: boolean;
  querySet: GPUQuerySet | null;
  querySetCount: number;
}

/** A uniform of a dispatch: one u32, i32 or f32, in the order the shader's uniform struct declares them. */
export type Uniform = { u32: number } | { i32: number } | { f32: number };

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

function pipelineFor(device: GPUDevice, code: string): GPUComputePipeline {
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, cache = new Map());
  let pipeline = cache.get(code);
  if (!pipeline) {
    pipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
    });
    cache.set(code, pipeline);
  }
  return pipeline;
}

/** The GPU buffer holding `t`, uploading it first if it still lives on the CPU. */
function bufferOf(backend: WebGPUBackend, t: tf.TensorInfo): GPUBuffer {
  backend.uploadToGPU(t.dataId);
  const resource = backend.tensorMap.get(t.dataId).resource;
  if (!(resource instanceof GPUBuffer)) {
    throw new Error(`webgpu training: a ${t.shape} ${t.dtype} tensor is not in a GPU buffer`);
  }
  return resource;
}

/**
 * Records one dispatch of the WGSL `code` (entry point `main`) on `backend`'s command stream: bindings
 * 0.. are `inputs` (read-only storage) then `outputs` (read-write storage), then one uniform struct of
 * `uniforms`; `workgroups` along x. Every binding the shader declares must be used by it (the pipeline's
 * layout is derived from the code).
 */
export function dispatch(
  backend: WebGPUBackend,
  code: string,
  inputs: tf.TensorInfo[],
  outputs: tf.TensorInfo[],
  uniforms: Uniform[],
  workgroups: number,
  name: string,
): void {
  const device = backend.device;
  const pipeline = pipelineFor(device, code);
  const buffers = [...inputs, ...outputs].map((t) => bufferOf(backend, t));
  const uniform = backend.makeUniforms(
    uniforms.map((u) =>
      "u32" in u
        ? { type: "uint32", data: [u.u32] }
        : "i32" in u
        ? { type: "int32", data: [u.i32] }
        : { type: "float32", data: [u.f32] }
    ),
  );
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      ...buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
      { binding: buffers.length, resource: { buffer: uniform.buffer, offset: 0, size: uniform.size } },
    ],
  });
  // Buffers the queue will still read are not released until it is submitted.
  for (const t of [...inputs, ...outputs]) backend.commandQueueOwnedIds.add(t.dataId);
  backend.ensureCommandEncoderReady();
  const timed = backend.activeTimers != null;
  if (timed && backend.supportTimestampQuery) {
    backend.endComputePassEncoder();
    backend.querySet ??= device.createQuerySet({ type: "timestamp", count: backend.querySetCount });
    backend.computePassEncoder = backend.commandEncoder.beginComputePass({
      timestampWrites: { querySet: backend.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
  } else {
    backend.computePassEncoder ??= backend.commandEncoder.beginComputePass({});
  }
  const pass = backend.computePassEncoder!;
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(workgroups);
  backend.dispatchCountInPass++;
  if (timed) {
    backend.endComputePassEncoder();
    backend.activeTimers!.push({ name, query: backend.getQueryTime() });
  } else if (backend.dispatchCountInPass >= Number(tf.env().get("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE"))) {
    backend.endComputePassEncoder();
    backend.submitQueue();
  }
}

/**
 * One float32 tensor holding `parts` end to end, by buffer copies on the command stream (not dispatches):
 * WebGPU guarantees a shader only 8 storage buffers, so small per-channel inputs travel together. The
 * caller disposes it (`backend.disposeData`) once the dispatch that reads it is recorded.
 */
export function pack(backend: WebGPUBackend, parts: tf.TensorInfo[]): tf.TensorInfo {
  const sizes = parts.map((t) => t.shape.reduce((a, b) => a * b, 1));
  const packed = output(backend, [sizes.reduce((a, b) => a + b, 0)]);
  const target = bufferOf(backend, packed);
  const sources = parts.map((t) => bufferOf(backend, t));
  for (const t of [...parts, packed]) backend.commandQueueOwnedIds.add(t.dataId);
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  let offset = 0;
  sources.forEach((source, i) => {
    backend.commandEncoder.copyBufferToBuffer(source, 0, target, offset * 4, sizes[i] * 4);
    offset += sizes[i];
  });
  return packed;
}

/** A new float32 tensor of `shape` on `backend` (its GPU buffer is allocated when first bound). */
export function output(backend: WebGPUBackend, shape: number[]): tf.TensorInfo {
  return backend.makeTensorInfo(shape, "float32");
}

/** Workgroups of `size` invocations for an element-wise pass over `n` values, grid-stride beyond 65535. */
export function elementwiseGroups(n: number, size = 256): number {
  return Math.max(1, Math.min(Math.ceil(n / size), 65535));
}
