/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// The adaptation worker: one job per worker, so training's long synchronous stretches never block the HTTP
// thread, and everything the job allocated goes away with the worker. Protocol: worker_messages.ts.
import { initBackend } from "../backend/init_backend.ts";
import { stopWasmBackend } from "../backend/start_wasm_backend.ts";
import { toJobError } from "./job_error.ts";
import { runAdaptation } from "./run_adaptation.ts";
import { yieldToServing } from "./yield_to_serving.ts";
import type { WorkerCommand, WorkerReport } from "./worker_messages.ts";

/** Least time between two progress reports within one phase, in ms. */
const PROGRESS_INTERVAL_MS = 100;

const controller = new AbortController();
let cancelFlag: Int32Array | undefined;
const post = (report: WorkerReport) => self.postMessage(report);

// A cancel message only arrives when the event loop turns; training on a synchronous backend may not let it
// for a long time. The shared flag is read at every progress event instead, which comes once per step.
function checkCancelFlag() {
  if (cancelFlag && Atomics.load(cancelFlag, 0) !== 0 && !controller.signal.aborted) controller.abort();
}

self.onmessage = async (event: MessageEvent<WorkerCommand>) => {
  const command = event.data;
  if (command.type === "cancel") {
    controller.abort();
    return;
  }
  cancelFlag = command.cancelFlag;
  let report: WorkerReport;
  try {
    // `auto` takes the choice the server measured and cached at bring-up (no trial of its own).
    const backend = await initBackend(command.task.backend, {
      wasmThreads: command.task.wasmThreads,
      choice: { dataDir: command.task.dataDir },
    });
    if (command.servingDemand) yieldToServing(command.servingDemand);
    let last = { phase: "", at: 0 };
    const metrics = await runAdaptation(command.task, {
      signal: controller.signal,
      onStarted: (dataset) => post({ type: "started", backend: backend.name, dataset }),
      onProgress: (progress) => {
        checkCancelFlag();
        const now = performance.now();
        const endOfEpoch = progress.step !== undefined && progress.step === progress.steps;
        if (progress.phase !== last.phase || endOfEpoch || now - last.at >= PROGRESS_INTERVAL_MS) {
          last = { phase: progress.phase, at: now };
          post({ type: "progress", progress });
        }
      },
      onEpoch: (record) => post({ type: "epoch", record }),
    });
    report = { type: "succeeded", metrics };
  } catch (err) {
    report = { type: "failed", error: toJobError(err, command.task.dataDir) };
  }
  // The queue terminates this worker on the last report, and a wasm pthread waiting in wasm does not see its
  // parent end: it would live on, holding the whole heap. End them first.
  stopWasmBackend();
  post(report);
};
