import { adapt } from "../src/adapt/adapt.ts";
import { readImageFolder } from "../src/data/folder.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { takePerClass } from "../src/data/take_per_class.ts";
import { loadBackbone } from "../src/model/registry.ts";
import { PredictionService } from "../src/serve/prediction_service.ts";
import { ModelStore } from "../src/store/model_store.ts";
import { newResourceId } from "../src/store/resource_id.ts";

/** Median latency of one-image prediction requests with the drift monitor off and on. */
export interface ServingCost {
  backbone: string;
  requests: number;
  offMs: number;
  onMs: number;
}

const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Serves one model from two {@linkcode PredictionService}s, one with the drift monitor off and one with it
 * on (window 64), and times `requests` one-image requests on each, interleaved so that both see the same
 * machine load. The image is a 28x28 PNG digit, so decoding is a small part of a request. The model is a linear probe on `backbone` fitted to 8 fixture digits: the cost of the
 * monitor depends on the network, not on how well it was trained.
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
  try {
    for (let r = -20; r < requests; r++) {
      for (
        const [name, service] of r % 2
          ? [["off", off], ["on", on]] as const
          : [["on", on], ["off", off]] as const
      ) {
        const t = performance.now();
        await service.predict(id, [bytes], 1);
        if (r >= 0) times[name].push(performance.now() - t);
      }
    }
  } finally {
    await off.dispose();
    await on.dispose();
    await Deno.remove(root, { recursive: true });
  }
  return { backbone, requests, offMs: median(times.off), onMs: median(times.on) };
}
