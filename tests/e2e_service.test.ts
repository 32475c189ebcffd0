// End to end through a real port: the server as `main.ts` builds it (runtime + app on Deno.serve), driven by
// fetch only.
import assert from "node:assert/strict";
import { createApp } from "../routes/app.ts";
import { loadConfig } from "../src/config.ts";
import { openRuntime } from "../src/runtime.ts";
import { FIXTURES, testBackend } from "./_setup.ts";

const DIGITS = ["0", "1", "4", "7"];
const TRAIN_PER_DIGIT = 12;

function digitFiles(d: string) {
  const names = [...Deno.readDirSync(`${FIXTURES}digits/${d}`)].map((e) => e.name).sort();
  return { train: names.slice(0, TRAIN_PER_DIGIT), heldOut: names.slice(TRAIN_PER_DIGIT) };
}

/** Starts a server on a free port over `dataDir`, as main.ts does. */
async function startServer(dataDir: string) {
  const backend = await testBackend();
  const loaded = loadConfig(
    ["--data-dir", dataDir, "--port", "0", "--default-backbone", "tiny", "--backend", backend.policy],
    () => undefined,
  );
  if (loaded.help) throw new Error("unreachable");
  const runtime = await openRuntime(loaded.config);
  const app = createApp({ runtime, logRequests: false });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  const ready = runtime.bringUp(backend);
  const base = `http://127.0.0.1:${server.addr.port}`;
  const stop = async () => {
    await ready.catch(() => {});
    await runtime.close();
    await server.shutdown();
  };
  return { base, ready, stop };
}

async function call(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = res.status === 204 ? null : await res.json();
  return { status: res.status, body: payload };
}

async function waitReady(base: string) {
  for (let i = 0; i < 300; i++) {
    const res = await fetch(`${base}/readyz`);
    await res.body?.cancel();
    if (res.status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the server did not become ready");
}

/** Follows a job's server-sent events until `done`, and returns every event. */
async function streamToDone(base: string, jobId: string): Promise<{ event: string; data: any }[]> {
  const res = await fetch(`${base}/v1/adaptations/${jobId}/events`);
  assert.equal(res.status, 200);
  const events: { event: string; data: any }[] = [];
  let buffer = "";
  for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const lines = block.split("\n");
      const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (!data) continue;
      events.push({
        event: lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "message",
        data: JSON.parse(data),
      });
    }
  }
  assert.equal(events.at(-1)?.event, "done", "the stream ends with the done event");
  return events;
}

async function uploadDigits(base: string): Promise<string> {
  const created = await call("POST", `${base}/v1/datasets`, { name: "four digits" });
  assert.equal(created.status, 201);
  const form = new FormData();
  for (const d of DIGITS) {
    for (const name of digitFiles(d).train) {
      form.append("label", d);
      form.append(
        "image",
        new Blob([await Deno.readFile(`${FIXTURES}digits/${d}/${name}`)], { type: "image/png" }),
        name,
      );
    }
  }
  const res = await fetch(`${base}/v1/datasets/${created.body.id}/samples`, { method: "POST", body: form });
  assert.equal(res.status, 201);
  const added = await res.json();
  assert.deepEqual(added.counts, Object.fromEntries(DIGITS.map((d) => [d, TRAIN_PER_DIGIT])));
  return created.body.id;
}

async function predictHeldOut(base: string) {
  const form = new FormData();
  const truth: string[] = [];
  for (const d of DIGITS) {
    for (const name of digitFiles(d).heldOut) {
      form.append(
        "image",
        new Blob([await Deno.readFile(`${FIXTURES}digits/${d}/${name}`)], { type: "image/png" }),
        name,
      );
      truth.push(d);
    }
  }
  const res = await fetch(`${base}/v1/models/active/predict?topK=4`, { method: "POST", body: form });
  assert.equal(res.status, 200);
  const body = await res.json();
  const accuracy = body.predictions.filter((p: { label: string }, i: number) => p.label === truth[i]).length /
    truth.length;
  return { body, accuracy };
}

Deno.test("end to end: upload digits, adapt, stream to completion, predict held-out digits well above chance", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "daft-e2e-" });
  const server = await startServer(dataDir);
  try {
    assert.equal((await call("GET", `${server.base}/healthz`)).status, 200);
    await waitReady(server.base);
    const dataset = await uploadDigits(server.base);
    const job = await call("POST", `${server.base}/v1/adaptations`, {
      dataset,
      backbone: "tiny",
      epochs: 8,
      seed: 0,
    });
    assert.equal(job.status, 202);
    assert.equal(job.body.status, "queued");

    const events = await streamToDone(server.base, job.body.id);
    assert.ok(events.some((e) => e.event === "epoch"));
    const done = events.at(-1)!.data;
    assert.equal(done.status, "succeeded", JSON.stringify(done.error));
    assert.equal(Object.keys(done.metrics.validation.perClassAccuracy).length, 4);

    assert.equal((await call("POST", `${server.base}/v1/models/${done.modelId}/activate`)).status, 200);
    const { body, accuracy } = await predictHeldOut(server.base);
    assert.equal(body.model, done.modelId);
    assert.equal(body.predictions.length, 4 * (24 - TRAIN_PER_DIGIT));
    assert.equal(body.predictions[0].topK.length, 4);
    assert.ok(accuracy >= 0.5, `held-out accuracy ${accuracy} should be well above chance (0.25)`);

    const one = await Deno.readFile(`${FIXTURES}digits/4/${digitFiles("4").heldOut[0]}`);
    const image = (one as unknown as { toBase64(o: unknown): string }).toBase64({
      alphabet: "base64url",
      omitPadding: true,
    });
    const viaGet = await call("GET", `${server.base}/v1/models/active/predict?image=${image}&topK=4`);
    assert.equal(viaGet.status, 200);
    assert.deepEqual(viaGet.body.predictions[0], body.predictions[TRAIN_PER_DIGIT * 2]);
  } finally {
    await server.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("after a restart, datasets and models are there, the active model is active, predictions are identical, and an interrupted job can be retried", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "daft-e2e-" });
  let server = await startServer(dataDir);
  try {
    await waitReady(server.base);
    const dataset = await uploadDigits(server.base);
    const job = await call("POST", `${server.base}/v1/adaptations`, { dataset, epochs: 3, activate: true });
    const done = (await streamToDone(server.base, job.body.id)).at(-1)!.data;
    assert.equal(done.status, "succeeded");
    assert.equal((await call("GET", `${server.base}/v1/models`)).body.active, done.modelId, "activate: true");
    const before = await predictHeldOut(server.base);
    const activeRecord = await Deno.readTextFile(`${dataDir}/models/active.json`);
    await server.stop();

    server = await startServer(dataDir);
    // Active from the very first request, before the backend is even up.
    assert.equal((await call("GET", `${server.base}/v1/models`)).body.active, done.modelId);
    await waitReady(server.base);
    const models = (await call("GET", `${server.base}/v1/models`)).body;
    assert.equal(models.active, done.modelId);
    assert.equal(
      await Deno.readTextFile(`${dataDir}/models/active.json`),
      activeRecord,
      "a restart keeps activatedAt",
    );
    assert.deepEqual(models.models.map((m: { id: string }) => m.id), [done.modelId]);
    assert.equal((await call("GET", `${server.base}/v1/datasets/${dataset}`)).body.sampleCount, 48);
    assert.equal(
      (await call("GET", `${server.base}/v1/adaptations/${job.body.id}`)).body.status,
      "succeeded",
    );
    const after = await predictHeldOut(server.base);
    assert.deepEqual(after.body, before.body);

    // A job running when the server stops is failed as interrupted at the next start, and can run again.
    const long = await call("POST", `${server.base}/v1/adaptations`, { dataset, epochs: 1000 });
    for (let i = 0; i < 200; i++) {
      if ((await call("GET", `${server.base}/v1/adaptations/${long.body.id}`)).body.status === "running") {
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    await server.stop();
    server = await startServer(dataDir);
    await waitReady(server.base);
    const interrupted = (await call("GET", `${server.base}/v1/adaptations/${long.body.id}`)).body;
    assert.equal(interrupted.status, "failed");
    assert.equal(interrupted.error.code, "interrupted");
    const retry = await call("POST", `${server.base}/v1/adaptations/${long.body.id}/retry`);
    assert.equal(retry.status, 202);
    assert.equal(retry.body.retryOf, long.body.id);
    await call("POST", `${server.base}/v1/adaptations/${retry.body.id}/cancel`);
    assert.equal((await streamToDone(server.base, retry.body.id)).at(-1)!.data.status, "cancelled");
  } finally {
    await server.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});
