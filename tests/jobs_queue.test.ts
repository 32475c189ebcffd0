import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { adapt } from "../src/adapt/adapt.ts";
import { decodeImage } from "../src/data/image.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { RuntimeError } from "../src/errors.ts";
import { AdaptationQueue, type AdaptationQueueOptions } from "../src/jobs/adaptation_queue.ts";
import type { JobEvent } from "../src/jobs/job_events.ts";
import { JobStore } from "../src/jobs/job_store.ts";
import { runAdaptation } from "../src/jobs/run_adaptation.ts";
import { loadBackbone } from "../src/model/registry.ts";
import type { JobMetrics, JobRecord } from "../src/jobs/job_record.ts";
import { openStores } from "../src/store/open_stores.ts";
import { newResourceId } from "../src/store/resource_id.ts";
import { validateSamples } from "../src/store/validate_samples.ts";
import { FIXTURES, testBackend } from "./_setup.ts";

const LIMITS = {
  maxSamplesPerRequest: 1000,
  maxImageBytes: 1e6,
  maxImagePixels: 1e6,
  maxImageSide: 512,
  maxRequestPixels: 1e8,
};

async function digitSamples(digits: number[], perDigit: number) {
  const uploads = [];
  for (const d of digits) {
    const files = [...Deno.readDirSync(`${FIXTURES}digits/${d}`)].map((e) => e.name).sort().slice(
      0,
      perDigit,
    );
    for (const f of files) {
      uploads.push({ label: String(d), bytes: await Deno.readFile(`${FIXTURES}digits/${d}/${f}`) });
    }
  }
  return validateSamples(uploads, LIMITS);
}

// The dataset and model stores, and the job store the queue keeps its records in.
const openAllStores = async (dataDir: string) => ({
  ...await openStores(dataDir),
  jobs: await JobStore.open(`${dataDir}/jobs`),
});

async function setup(options: Partial<AdaptationQueueOptions> = {}) {
  const backend = await testBackend();
  const dataDir = await Deno.makeTempDir({ prefix: "daft-jobs-" });
  const stores = await openAllStores(dataDir);
  const dataset = await stores.datasets.create("digits");
  await stores.datasets.add(dataset.id, await digitSamples([0, 1, 7], 8));
  const queue = await AdaptationQueue.open({
    ...stores,
    backend: backend.policy,
    defaultBackbone: "tiny",
    maxQueuedJobs: 8,
    cancelGraceMs: 10_000,
    maxImagePixels: 1e6,
    maxImageSide: 512,
    ...options,
  });
  const close = async () => {
    await queue.close();
    await Deno.remove(dataDir, { recursive: true });
  };
  return { stores, dataset, queue, dataDir, close };
}

/** Resolves with the job's `done` event, collecting every event on the way. */
function untilDone(queue: AdaptationQueue, id: string, events: JobEvent["type"][] = []): Promise<JobRecord> {
  return new Promise((resolve) => {
    const unsubscribe = queue.events.subscribe(id, (event) => {
      events.push(event.type);
      if (event.type === "done") {
        unsubscribe();
        resolve(event.job);
      }
    });
  });
}

async function rejectsWith(promise: Promise<unknown>, kind: string, code: string) {
  await assert.rejects(
    promise,
    (err) => err instanceof RuntimeError && err.kind === kind && err.code === code,
  );
}

Deno.test("a submission is checked before it is queued", async () => {
  const { queue, dataset, stores, close } = await setup();
  await rejectsWith(queue.submit({ dataset: dataset.id, backbone: "nope" }), "invalid", "unknown_backbone");
  await rejectsWith(queue.submit({ dataset: newResourceId("dataset") }), "not_found", "dataset_not_found");
  const lonely = await stores.datasets.create("one label");
  await stores.datasets.add(lonely.id, await digitSamples([4], 3));
  await rejectsWith(queue.submit({ dataset: lonely.id }), "invalid", "too_few_classes");
  const thin = await stores.datasets.create("one sample of 5");
  await stores.datasets.add(thin.id, await digitSamples([4, 5], 1));
  await rejectsWith(queue.submit({ dataset: thin.id }), "invalid", "too_few_samples");
  assert.equal(queue.list().length, 0);
  await close();
});

Deno.test("a job runs in a worker and leaves a stored model with its metrics", async () => {
  const { queue, dataset, stores, close } = await setup();
  queue.start();
  const job = await queue.submit({ dataset: dataset.id, epochs: 2, minSteps: 0, seed: 1 });
  assert.equal(job.status, "queued");
  assert.equal(job.request.backbone, "tiny");
  const events: JobEvent["type"][] = [];
  const done = await untilDone(queue, job.id, events);
  assert.equal(done.status, "succeeded", JSON.stringify(done.error));
  assert.ok(events.includes("progress") && events.filter((e) => e === "epoch").length === 2);
  assert.equal(done.history.length, 2);
  assert.deepEqual(done.dataset?.counts, { "0": 8, "1": 8, "7": 8 });
  const metrics = done.metrics as JobMetrics;
  assert.deepEqual(metrics.classNames, ["0", "1", "7"]);
  assert.equal(metrics.validation.confusion.length, 3);
  assert.deepEqual(Object.keys(metrics.validation.perClassAccuracy), ["0", "1", "7"]);
  assert.ok(metrics.distortion && metrics.bnConversion, "distortion and the BN conversion report are kept");
  const model = await stores.models.get(done.modelId!);
  assert.equal(model.jobId, job.id);
  assert.deepEqual(model.classNames, ["0", "1", "7"]);
  assert.deepEqual(await stores.models.artifactFiles(done.modelId!), ["model.json", "weights.bin"]);
  const saved = await stores.jobs.get(job.id);
  assert.equal(saved.status, "succeeded");
  assert.equal(saved.modelId, done.modelId);
  await close();
});

Deno.test("a full queue refuses with busy, and cancel stops queued and running jobs", async () => {
  const { queue, dataset, stores, close } = await setup({ maxQueuedJobs: 1 });
  queue.start();
  const running = await queue.submit({ dataset: dataset.id, epochs: 1000 });
  const waiting = await queue.submit({ dataset: dataset.id, epochs: 1 });
  await assert.rejects(queue.submit({ dataset: dataset.id }), (err) => {
    assert.ok(err instanceof RuntimeError);
    assert.equal(err.kind, "busy");
    assert.equal(err.code, "queue_full");
    assert.ok(Number(err.details.retryAfterSeconds) >= 1);
    return true;
  });
  assert.equal((await queue.cancel(waiting.id)).status, "cancelled");
  assert.equal(queue.usesDataset(dataset.id), true);

  // Let it train a little, then cancel: it must stop within a step, long before 1000 epochs.
  await new Promise<void>((resolve) => {
    const unsubscribe = queue.events.subscribe(running.id, (e) => {
      if (e.type === "progress" && e.job.progress?.phase === "training") (unsubscribe(), resolve());
    });
  });
  const done = untilDone(queue, running.id);
  const asked = await queue.cancel(running.id);
  assert.equal(asked.status, "running");
  assert.equal(asked.cancelRequested, true);
  const stopped = await done;
  assert.equal(stopped.status, "cancelled");
  assert.equal(stopped.error?.code, "cancelled");
  assert.equal(stopped.modelId, undefined);
  assert.equal((await stores.models.list()).length, 0);
  await rejectsWith(queue.cancel(running.id), "conflict", "job_finished");
  assert.equal(queue.usesDataset(dataset.id), false);
  await close();
});

Deno.test("a worker that does not stop is terminated after the grace period", async () => {
  // A stand-in worker that never answers and never yields.
  const stuck = new URL(
    `data:application/javascript,${encodeURIComponent("self.onmessage = () => { for (;;) {} };")}`,
  );
  const { queue, dataset, close } = await setup({ cancelGraceMs: 200, workerUrl: stuck });
  queue.start();
  const job = await queue.submit({ dataset: dataset.id });
  const done = untilDone(queue, job.id);
  await new Promise((r) => setTimeout(r, 100));
  await queue.cancel(job.id);
  const stopped = await done;
  assert.equal(stopped.status, "cancelled");
  assert.match(stopped.error!.message, /terminating its worker after 200 ms/);
  await close();
});

Deno.test("a job left running by the last process is failed as interrupted, and can be retried", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "daft-jobs-" });
  const stores = await openAllStores(dataDir);
  const dataset = await stores.datasets.create("digits");
  await stores.datasets.add(dataset.id, await digitSamples([0, 1], 3));
  const base = {
    request: { dataset: dataset.id, backbone: "tiny", method: "daft" as const, epochs: 1 },
    history: [],
  };
  const running: JobRecord = {
    ...base,
    id: newResourceId("job"),
    status: "running",
    createdAt: "2026-01-01T00:00:00Z",
  };
  const queued: JobRecord = {
    ...base,
    id: newResourceId("job"),
    status: "queued",
    createdAt: "2026-01-01T00:00:01Z",
  };
  await stores.jobs.save(running);
  await stores.jobs.save(queued);

  const queue = await AdaptationQueue.open({
    ...stores,
    backend: "cpu",
    defaultBackbone: "tiny",
    maxQueuedJobs: 8,
    cancelGraceMs: 1000,
    maxImagePixels: 1e6,
    maxImageSide: 512,
  });
  const interrupted = queue.get(running.id);
  assert.equal(interrupted.status, "failed");
  assert.equal(interrupted.error?.code, "interrupted");
  assert.equal((await stores.jobs.get(running.id)).error?.code, "interrupted");
  assert.equal(queue.get(queued.id).status, "queued", "queued jobs wait again");
  assert.equal(queue.usesDataset(dataset.id), true);

  // Not started: the retry waits behind the re-queued job, and both can be cancelled.
  const retry = await queue.retry(running.id);
  assert.equal(retry.retryOf, running.id);
  assert.deepEqual(retry.request, running.request);
  await rejectsWith(queue.retry(retry.id), "conflict", "job_not_retryable");
  await queue.cancel(retry.id);
  await queue.cancel(queued.id);
  await queue.close();
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("runAdaptation frees every tensor it makes around the engine", async () => {
  const backend = await testBackend();
  const dataDir = await Deno.makeTempDir({ prefix: "daft-jobs-" });
  const stores = await openAllStores(dataDir);
  const dataset = await stores.datasets.create("digits");
  const samples = await digitSamples([2, 5], 6);
  await stores.datasets.add(dataset.id, samples);
  const request = { dataset: dataset.id, backbone: "tiny", method: "daft" as const, epochs: 1 };

  // What the engine alone leaves behind (it is the engine's to fix if it is not zero).
  let before = tf.memory().numTensors;
  const backbone = await loadBackbone({ name: "tiny" });
  const x = imagesToTensor(await Promise.all(samples.map((s) => decodeImage(s.bytes))), backbone.input);
  (await adapt(backbone, {
    images: x,
    labels: samples.map((s) => (s.label === "2" ? 0 : 1)),
    classNames: ["2", "5"],
  }, request))
    .dispose();
  x.dispose();
  const engineLeft = tf.memory().numTensors - before;

  before = tf.memory().numTensors;
  const phases = new Set<string>();
  const metrics = await runAdaptation({
    jobId: newResourceId("job"),
    modelId: newResourceId("model"),
    dataDir,
    backend: backend.policy,
    request,
    maxImagePixels: 1e6,
    maxImageSide: 512,
  }, { onProgress: (p) => phases.add(p.phase) });
  assert.equal(tf.memory().numTensors - before, engineLeft);
  assert.deepEqual(metrics.classNames, ["2", "5"]);
  assert.ok(phases.has("training") && phases.has("saving"));
  await Deno.remove(dataDir, { recursive: true });
});
