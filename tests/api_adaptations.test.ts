import assert from "node:assert/strict";
import { openTestApp } from "./_api.ts";

async function errorOf(res: Response) {
  const body = await res.json();
  assert.ok(body.error, `expected an error body, got ${JSON.stringify(body)}`);
  return body.error as { code: string; message: string; details: Record<string, unknown> };
}

/** Reads a server-sent event stream to its end. */
async function readEvents(res: Response): Promise<{ event: string; data: any }[]> {
  const text = await res.text();
  return text.split("\n\n").filter((block) => block.includes("data:")).map((block) => {
    const field = (name: string) =>
      block.split("\n").filter((l) => l.startsWith(`${name}: `)).map((l) => l.slice(name.length + 2)).join(
        "\n",
      );
    return { event: field("event"), data: JSON.parse(field("data")) };
  });
}

Deno.test("an adaptation is accepted as queued, streams its events and ends with a model", async () => {
  const { app, json, dataset, close } = await openTestApp();
  const ds = await dataset([0, 1, 7], 8);
  const res = await json("POST", "/v1/adaptations", { dataset: ds, epochs: 2, minSteps: 0, seed: 3 });
  assert.equal(res.status, 202);
  const job = await res.json();
  assert.equal(job.status, "queued");
  assert.match(job.id, /^job_/);
  assert.deepEqual(job.request, {
    dataset: ds,
    backbone: "tiny",
    method: "daft",
    epochs: 2,
    minSteps: 0,
    seed: 3,
  });

  const stream = await app.request(`/v1/adaptations/${job.id}/events`);
  assert.equal(stream.status, 200);
  assert.match(stream.headers.get("content-type")!, /text\/event-stream/);
  const events = await readEvents(stream);
  assert.equal(events[0].event, "status");
  assert.ok(events.some((e) => e.event === "progress" && e.data.progress.phase === "training"));
  assert.equal(events.filter((e) => e.event === "epoch").length, 2);
  const done = events.at(-1)!;
  assert.equal(done.event, "done");
  assert.equal(done.data.status, "succeeded");

  const final = await (await app.request(`/v1/adaptations/${job.id}`)).json();
  assert.equal(final.status, "succeeded");
  assert.match(final.modelId, /^mdl_/);
  assert.equal(final.progress.fraction, 1);
  const { metrics } = final;
  assert.deepEqual(Object.keys(metrics.validation.perClassAccuracy), ["0", "1", "7"]);
  assert.equal(metrics.validation.confusion.length, 3);
  assert.equal(typeof metrics.distortion.cosineMean, "number");
  assert.equal(
    metrics.bnConversion.layersConverted,
    4,
    "the BN conversion report covers the tiny net's 4 BN layers",
  );
  const list = await (await app.request("/v1/adaptations")).json();
  assert.deepEqual(list.adaptations.map((j: { id: string }) => j.id), [job.id]);

  // The stream of a finished job is its status and its end.
  const again = await readEvents(await app.request(`/v1/adaptations/${job.id}/events`));
  assert.deepEqual(again.map((e) => e.event), ["status", "done"]);
  await close();
});

Deno.test("an adaptation request is validated at the edge", async () => {
  const { json, dataset, close } = await openTestApp();
  const ds = await dataset([0, 1], 2);
  for (
    const [body, field] of [
      [{ dataset: ds, epochs: 0 }, "epochs"],
      [{ dataset: ds, method: "magic" }, "method"],
      [{ dataset: ds, lrHead: -1 }, "lrHead"],
      [{ dataset: ds, lrHead: 0 }, "lrHead"],
      [{ dataset: ds, lrBackbone: 0 }, "lrBackbone"],
      [{ dataset: ds, batchSize: 1.5 }, "batchSize"],
      [{}, "dataset"],
    ] as const
  ) {
    const res = await json("POST", "/v1/adaptations", body);
    assert.equal(res.status, 422, JSON.stringify(body));
    const error = await errorOf(res);
    assert.equal(error.code, "invalid_request");
    assert.match(error.message, new RegExp(`json\\.${field}:`));
  }
  const unknown = await json("POST", "/v1/adaptations", { dataset: ds, colour: "blue" });
  assert.equal(unknown.status, 422);
  const unknownError = await errorOf(unknown);
  assert.equal(unknownError.code, "unknown_field");
  assert.deepEqual(unknownError.details.fields, ["colour"]);
  const unknownBackbone = await json("POST", "/v1/adaptations", { dataset: ds, backbone: "resnet-9000" });
  assert.equal(unknownBackbone.status, 400);
  assert.equal((await errorOf(unknownBackbone)).code, "unknown_backbone");
  const missing = await json("POST", "/v1/adaptations", { dataset: "ds_0000000000000000" });
  assert.equal(missing.status, 404);
  assert.equal((await errorOf(missing)).code, "dataset_not_found");
  const oneClass = await dataset([4], 3);
  const tooFew = await json("POST", "/v1/adaptations", { dataset: oneClass });
  assert.equal(tooFew.status, 400);
  assert.equal((await errorOf(tooFew)).code, "too_few_classes");
  await close();
});

Deno.test("a full queue answers 429 with Retry-After; cancel and retry work through the API", async () => {
  const { app, json, dataset, close } = await openTestApp(["--max-queued-jobs", "1"]);
  const ds = await dataset([0, 1], 4);
  const running = await (await json("POST", "/v1/adaptations", { dataset: ds, epochs: 1000 })).json();
  const waiting = await (await json("POST", "/v1/adaptations", { dataset: ds, epochs: 1 })).json();
  const full = await json("POST", "/v1/adaptations", { dataset: ds });
  assert.equal(full.status, 429);
  assert.ok(Number(full.headers.get("retry-after")) >= 1);
  assert.equal((await errorOf(full)).code, "queue_full");

  const cancelledAtOnce = await app.request(`/v1/adaptations/${waiting.id}/cancel`, { method: "POST" });
  assert.equal(cancelledAtOnce.status, 200);
  assert.equal((await cancelledAtOnce.json()).status, "cancelled");

  const events = Promise.resolve(app.request(`/v1/adaptations/${running.id}/events`)).then(readEvents);
  const cancelling = await app.request(`/v1/adaptations/${running.id}/cancel`, { method: "POST" });
  assert.equal(cancelling.status, 202);
  assert.equal((await cancelling.json()).cancelRequested, true);
  const last = (await events).at(-1)!;
  assert.equal(last.event, "done");
  assert.equal(last.data.status, "cancelled");

  const again = await app.request(`/v1/adaptations/${running.id}/cancel`, { method: "POST" });
  assert.equal(again.status, 409);
  assert.equal((await errorOf(again)).code, "job_finished");

  const retried = await app.request(`/v1/adaptations/${waiting.id}/retry`, { method: "POST" });
  assert.equal(retried.status, 202);
  const retry = await retried.json();
  assert.equal(retry.retryOf, waiting.id);
  const done = (await readEvents(await app.request(`/v1/adaptations/${retry.id}/events`))).at(-1)!;
  assert.equal(done.data.status, "succeeded");
  const notRetryable = await app.request(`/v1/adaptations/${retry.id}/retry`, { method: "POST" });
  assert.equal(notRetryable.status, 409);
  await close();
});

Deno.test("unknown adaptations are 404 on every route", async () => {
  const { app, close } = await openTestApp();
  for (
    const [method, path] of [
      ["GET", "/v1/adaptations/job_0000000000000000"],
      ["GET", "/v1/adaptations/job_0000000000000000/events"],
      ["POST", "/v1/adaptations/job_0000000000000000/cancel"],
      ["POST", "/v1/adaptations/nonsense/retry"],
    ]
  ) {
    const res = await app.request(path, { method });
    assert.equal(res.status, 404, path);
    assert.equal((await errorOf(res)).code, "job_not_found");
  }
  await close();
});
