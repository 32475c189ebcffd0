import { adapt } from "../src/adapt/adapt.ts";
import { readImageFolder } from "../src/data/folder.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { takePerClass } from "../src/data/take_per_class.ts";
import { loadBackbone } from "../src/model/registry.ts";
import { PredictionService } from "../src/serve/prediction_service.ts";
import { ModelStore } from "../src/store/model_store.ts";
import { newResourceId } from "../src/store/resource_id.ts";

/** Median latency of one-image prediction requests with the drift monitor off and on, and their full cost. */
export interface ServingCost {
  backbone: string;
  requests: number;
  /** Latency: from the call until the predictions are returned. */
  offMs: number;
  onMs: number;
  /**
   * Cost: the same, plus the monitor's reading of the batch, which the server does after the response:
   * what a request costs a saturated server.
   */
  offCycleMs: number;
  onCycleMs: number;
}

const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Serves one model from two {@linkcode PredictionService}s, one with the drift monitor off and one with it
 * on (window 64), and times `requests` one-image requests on each, interleaved so that both see the same
 * machine load. Latency stops when the predictions are returned; the cycle goes on until the monitor has
 * read the batch (`PredictionService.observed`), which the server does after the response. The image is a
 * 28x28 PNG digit, so decoding is a small part of a request. The model is a linear probe on `backbone` fitted to 8 fixture digits: the cost
 * of the monitor depends on the network, not on how well it was trained.
 */
export async function measureServingCost(backbone: string, requests = 200): Promise<ServingCost> {
  const net = await loadBackbone({ name: backbone });
  const digits = takePerClass(
    await readImageFolder(new URL("../fixtures/digits", import.meta.url).pathname),
    4,
    0,
  );
  const keep = digits.labels.map((y, i) => (y < 2 ? i : -1)).filter((i) => i >= 0);
  const images = imagesToTensor(keep.map((i) => digits.images[i]), net.input);
  const model = await adapt(net, {
    images,
    labels: keep.map((i) => digits.labels[i]),
    classNames: digits.classNames.slice(0, 2),
  }, { method: "lp" });
  images.dispose();
  const root = await Deno.makeTempDir();
  const store = await ModelStore.open(root);
  const id = newResourceId("model");
  await model.save(store.stagingDir(id));
  model.dispose();
  await store.commit({
    id,
    createdAt: new Date().toISOString(),
    jobId: "bench",
    dataset: { id: "bench", name: "bench" },
  });
  const limits = {
    maxImageBytes: 1 << 24,
    maxImagePixels: 1 << 24,
    maxImageSide: 512,
    maxRequestPixels: 1 << 26,
    maxPredictImages: 64,
    maxCachedModels: 2,
  };
  const off = new PredictionService(store, { ...limits, isReady: () => true, driftWindow: 0 });
  const on = new PredictionService(store, {
    ...limits,
    isReady: () => true,
    driftWindow: 64,
    driftThreshold: 1e6,
  });
  const bytes = await Deno.readFile(
    new URL("../fixtures/digits-unseen/3-mnist-test-00309.png", import.meta.url),
  );
  const times = { off: [] as number[], on: [] as number[] };
  const cycles = { off: [] as number[], on: [] as number[] };
  try {
    for (let r = -20; r < requests; r++) {
      for (
        const [name, service] of r % 2
          ? [["off", off], ["on", on]] as const
          : [["on", on], ["off", off]] as const
      ) {
        const t = performance.now();
        await service.predict(id, [bytes], 1);
        const answered = performance.now();
        await service.observed();
        if (r >= 0) {
          times[name].push(answered - t);
          cycles[name].push(performance.now() - t);
        }
      }
    }
  } finally {
    await off.dispose();
    await on.dispose();
    await Deno.remove(root, { recursive: true });
  }
  return {
    backbone,
    requests,
    offMs: median(times.off),
    onMs: median(times.on),
    offCycleMs: median(cycles.off),
    onCycleMs: median(cycles.on),
  };
}

// deno run -A --v8-flags=--no-liftoff bench/_drift_serving_cost.ts [backbone] [requests]: one measurement.
if (import.meta.main) {
  const { initBackend } = await import("../src/backend/init_backend.ts");
  await initBackend("auto");
  console.log(JSON.stringify(await measureServingCost(Deno.args[0] ?? "tiny", Number(Deno.args[1] ?? 400))));
}
