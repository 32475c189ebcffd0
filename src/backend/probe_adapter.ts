/** What the WebGPU adapter on this box says about itself. */
export interface AdapterReport {
  /** Whether `navigator.gpu` exists and returned an adapter. */
  available: boolean;
  /** The adapter's own description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H200". */
  description: string;
  vendor: string;
  architecture: string;
  /** True for a software (CPU-emulated) adapter such as llvmpipe, lavapipe or SwiftShader. */
  isFallback: boolean;
  /** Why no adapter is available, when none is. */
  reason?: string;
}

// Some drivers do not set isFallbackAdapter on software rasterisers, so the description is checked too.
const SOFTWARE_ADAPTERS = /llvmpipe|lavapipe|swiftshader|softpipe|warp/i;

/**
 * Requests a WebGPU adapter and reports what it is, without creating a device.
 *
 * @example
 * ```ts
 * import { probeAdapter } from "./probe_adapter.ts";
 * const report = await probeAdapter();
 * console.log(report.available ? report.description : report.reason);
 * ```
 */
export async function probeAdapter(): Promise<AdapterReport> {
  const none = (reason: string): AdapterReport => ({
    available: false,
    description: "",
    vendor: "",
    architecture: "",
    isFallback: false,
    reason,
  });
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) return none("navigator.gpu is not exposed by this runtime");
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (err) {
    return none(`requestAdapter failed: ${(err as Error).message}`);
  }
  if (!adapter) return none("navigator.gpu.requestAdapter() returned no adapter (no Vulkan/GL driver found)");
  const info = adapter.info;
  const description = info.description || info.device || "unknown adapter";
  const flagged = (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
    (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
  return {
    available: true,
    description,
    vendor: info.vendor,
    architecture: info.architecture,
    isFallback: flagged || SOFTWARE_ADAPTERS.test(description),
  };
}
