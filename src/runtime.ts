import { join } from "node:path";
import denoJson from "../deno.json" with { type: "json" };
import { METHODS } from "./adapt/methods.ts";
import { trainingSpeedTrial } from "./adapt/training_speed_trial.ts";
import type { MeasuredChoice } from "./backend/backend_choice.ts";
import { type BackendInfo, initBackend } from "./backend/init_backend.ts";
import { resolveServingThreads } from "./backend/start_wasm_backend.ts";
import type { Config } from "./config.ts";
import { scrubPaths } from "./errors.ts";
import { AdaptationQueue } from "./jobs/adaptation_queue.ts";
import { ServingDemand } from "./jobs/serving_demand.ts";
import { listBackbones, loadBackbone } from "./model/registry.ts";
import type { DatasetStore } from "./store/dataset_store.ts";
import type { JobRecord } from "./jobs/job_record.ts";
import { JobStore } from "./jobs/job_store.ts";
import type { ModelStore } from "./store/model_store.ts";
import { openStores } from "./store/open_stores.ts";
import { ModelTransfer } from "./serve/model_transfer.ts";
import { PredictionService } from "./serve/prediction_service.ts";
import { Readiness } from "./serve/readiness.ts";
import { type AdaptationAsked, submitAdaptation } from "./serve/submit_adaptation.ts";
import { TrafficWindow } from "./serve/traffic_window.ts";

/** What `GET /v1/info` reports. */
export interface RuntimeInfo {
  name: string;
  version: string;
  backend: {
    name?: string;
    policy: string;
    adapter?: string;
    isFallbackAdapter?: boolean;
    fellBack?: boolean;
    fallbackReason?: string;
    selfTest?: BackendInfo["selfTest"];
    /** On wasm: how many threads it computes on (1: the single-threaded build), and why not more. */
    wasm?: BackendInfo["wasm"];
    /** `auto` on a hardware adapter: webgpu's and wasm's measured training speed, the choice and why. */
    choice?: MeasuredChoice;
  };
  backbones: { name: string; description: string }[];
  defaultBackbone: string;
  methods: { name: string; description: string }[];
  activeModel: string | null;
  ready: boolean;
}

/** The server's state: stores, the adaptation queue, the prediction service, readiness. */
export interface Runtime {
  config: Config;
  datasets: DatasetStore;
  models: ModelStore;
  jobs: JobStore;
  queue: AdaptationQueue;
  predictions: PredictionService;
  /** Model export and import, between this server and its peers. */
  transfer: ModelTransfer;
  /** The served images kept for a `bn-refresh` from traffic; unset unless `--keep-traffic` is above 0. */
  traffic?: TrafficWindow;
  /** Queues an adaptation, or a `bn-refresh` on the kept traffic (see `submitAdaptation`). */
  submitAdaptation(asked: AdaptationAsked): Promise<JobRecord>;
  readiness: Readiness;
  /**
   * Brings up the compute backend (or takes `backend` when the caller already did), restores the active
   * model, starts the queue, and checks that the default backbone loads. `readiness` says how far it got;
   * predictions work once the backend is up.
   */
  bringUp(backend?: BackendInfo): Promise<void>;
  info(): RuntimeInfo;
  /** Ends the running job (as interrupted) and unloads the models. */
  close(): Promise<void>;
}

/**
 * The composition root: the one place the server's parts are built from the configuration and wired
 * together (stores, job store and queue, prediction service, model transfer, readiness). Routes receive the
 * narrow services they use from what this returns; nothing below it knows the whole.
 *
 * Opens everything the server needs under `config.dataDir`, recovering from the last run: jobs that were
 * running are marked interrupted, queued ones wait again, and `bringUp` re-activates the active model.
 *
 * @example
 * ```ts
 * import { openRuntime } from "./runtime.ts";
 * import { loadConfig } from "./config.ts";
 * const result = loadConfig(["--data-dir", await Deno.makeTempDir()], () => undefined);
 * if (!result.help) {
 *   const runtime = await openRuntime(result.config);
 *   console.assert(!runtime.readiness.ready);
 *   await runtime.close();
 * }
 * ```
 */
export async function openRuntime(config: Config): Promise<Runtime> {
  const stores = {
    ...await openStores(config.dataDir, {
      maxSamplesPerDataset: config.maxSamplesPerDataset,
      maxDatasetPixels: config.maxDatasetPixels,
    }),
    jobs: await JobStore.open(join(config.dataDir, "jobs")),
  };
  const readiness = new Readiness(config.defaultBackbone);
  // Predictions need the backend, not the default backbone: a model that exists can serve even if the
  // default backbone cannot be loaded.
  // Predictions in progress, counted here and read by the training worker, which pauses while there are any.
  const demand = new ServingDemand();
  const traffic = config.keepTraffic > 0
    ? new TrafficWindow({ images: config.keepTraffic, bytes: config.keepTrafficBytes })
    : undefined;
  const predictions = new PredictionService(stores.models, {
    ...config,
    isReady: () => readiness.backend !== undefined,
    demand,
    traffic,
  });
  await predictions.recall();
  const transfer = new ModelTransfer(stores.models, {
    peers: config.peers,
    maxArchiveBytes: config.maxBodyBytes,
    isReady: () => readiness.backend !== undefined,
  });
  const queue = await AdaptationQueue.open({
    ...stores,
    ...config,
    activate: (modelId) => predictions.activate(modelId),
    servingDemand: demand.buffer,
  });

  async function bringUp(backend?: BackendInfo) {
    try {
      readiness.backend = backend ?? await initBackend(config.backend, {
        // Predictions get their own share of the cores; jobs get config.wasmThreads in their workers.
        wasmThreads: resolveServingThreads(config.servingWasmThreads),
        // On a hardware adapter, `auto` times the default backbone's training on webgpu and on wasm once per
        // adapter and Deno version (cached in the data dir), and takes the faster.
        choice: {
          dataDir: config.dataDir,
          trial: trainingSpeedTrial({ backbone: config.defaultBackbone }),
          wasmThreads: config.wasmThreads,
        },
      });
    } catch (err) {
      readiness.backendError = scrubPaths((err as Error).message, config.dataDir);
      throw err;
    }
    await predictions.restore();
    queue.start();
    try {
      const backbone = await loadBackbone({ name: config.defaultBackbone });
      backbone.model.dispose();
      readiness.backboneReady = true;
    } catch (err) {
      readiness.backboneError = scrubPaths((err as Error).message, config.dataDir);
      throw err;
    }
  }

  function info(): RuntimeInfo {
    const b = readiness.backend;
    return {
      name: denoJson.name,
      version: denoJson.version,
      backend: {
        name: b?.name,
        policy: config.backend,
        adapter: b?.adapter.available ? b.adapter.description : b?.adapter.reason,
        isFallbackAdapter: b?.adapter.isFallback,
        fellBack: b?.fellBack,
        fallbackReason: b?.fallbackReason,
        selfTest: b?.selfTest,
        wasm: b?.wasm,
        choice: b?.choice,
      },
      backbones: listBackbones(),
      defaultBackbone: config.defaultBackbone,
      methods: Object.entries(METHODS).map(([name, m]) => ({ name, description: m.description })),
      activeModel: predictions.activeModelId() ?? null,
      ready: readiness.ready,
    };
  }

  async function close() {
    await queue.close();
    await predictions.dispose();
  }

  const submit = (asked: AdaptationAsked) =>
    submitAdaptation(
      { queue, datasets: stores.datasets, models: stores.models, traffic, limits: config },
      asked,
    );

  return {
    config,
    ...stores,
    queue,
    predictions,
    transfer,
    traffic,
    submitAdaptation: submit,
    readiness,
    bringUp,
    info,
    close,
  };
}
