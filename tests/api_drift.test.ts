import assert from "node:assert/strict";
import { decodeImage, encodePng } from "../src/data/image.ts";
import { openTestApp } from "./_api.ts";
import { FIXTURES } from "./_setup.ts";

const DIGITS = [0, 1, 7];
const digitFiles = (d: number) => [...Deno.readDirSync(`${FIXTURES}digits/${d}`)].map((e) => e.name).sort();
const digit = (d: number, i: number) => Deno.readFileSync(`${FIXTURES}digits/${d}/${digitFiles(d)[i]}`);
// The same digit, inverted: white background, dark ink, a shift every layer sees.
const invertedFiles = new Map<string, Uint8Array<ArrayBuffer>>();
for (const d of DIGITS) {
  for (let i = 0; i < 14; i++) {
    const image = await decodeImage(digit(d, i));
    invertedFiles.set(
      `${d}/${i}`,
      new Uint8Array(encodePng({ ...image, data: image.data.map((v) => 255 - v) })),
    );
  }
}
const inverted = (d: number, i: number) => invertedFiles.get(`${d}/${i}`)!;
// Held-out images (indices 8 to 13 of each digit: the model trains on 0 to 7).
const heldOut = (make: (d: number, i: number) => Uint8Array<ArrayBuffer>) =>
  DIGITS.flatMap((d) => [8, 9, 10, 11, 12, 13].map((i) => make(d, i)));

async function errorOf(res: Response) {
  const body = await res.json();
  assert.ok(body.error, `expected an error body, got ${JSON.stringify(body)}`);
  return body.error as { code: string; message: string };
}

Deno.test("drift and bn-refresh over HTTP: scores, events, unlabelled uploads, the refresh guard", async (t) => {
  const { app, json, dataset: newDataset, close } = await openTestApp([
    "--drift-window",
    "16",
    "--drift-threshold",
    "0.5",
  ]);
  try {
    const dataset = await newDataset(DIGITS, 8);
    const run = async (body: Record<string, unknown>) => {
      const job = await (await json("POST", "/v1/adaptations", body)).json();
      await (await app.request(`/v1/adaptations/${job.id}/events`)).text();
      return await (await app.request(`/v1/adaptations/${job.id}`)).json();
    };
    const adapted = await run({ dataset, epochs: 3, seed: 1, activate: "force" });
    assert.equal(adapted.status, "succeeded", JSON.stringify(adapted.error));
    const model = adapted.modelId as string;
    const predict = async (id: string, images: Uint8Array<ArrayBuffer>[]) => {
      const body = new FormData();
      for (const [i, bytes] of images.entries()) body.append("image", new Blob([bytes]), `${i}.png`);
      const res = await app.request(`/v1/models/${id}/predict`, { method: "POST", body });
      assert.equal(res.status, 200);
    };
    const drift = async (id: string) => await (await app.request(`/v1/models/${id}/drift`)).json();

    await t.step("a model that has served nothing has a reference and no score yet", async () => {
      const report = await drift(model);
      assert.equal(report.monitored, true);
      assert.equal(report.score, null);
      assert.deepEqual(report.window, { size: 16, samples: 0, minSamples: 16 });
      assert.equal(report.reference.samples, 24);
      assert.equal((await drift("active")).modelId, model);
    });

    let idScore = 0;
    await t.step("a window of in-distribution digits scores low, per layer, with a history", async () => {
      await predict(model, heldOut(digit));
      const report = await drift(model);
      assert.equal(report.window.samples, 16);
      assert.deepEqual(report.layers.map((l: { layer: string }) => l.layer), [
        "relu1",
        "relu2",
        "relu3",
        "features",
      ]);
      assert.ok(report.history.length >= 1);
      idScore = report.score;
      assert.ok(idScore >= 0 && idScore < 0.5, `ID score ${idScore}`);
      assert.equal(report.alert, false);
    });

    await t.step("inverted digits cross the threshold and raise a drift event", async () => {
      await predict(model, heldOut(inverted));
      const report = await drift(model);
      assert.ok(report.score > 10 * Math.max(idScore, 0.01), `OOD ${report.score} vs ID ${idScore}`);
      assert.equal(report.alert, true);
      assert.deepEqual(report.events.map((e: { type: string }) => e.type), ["drift"]);
      const stream = await app.request(`/v1/models/${model}/drift/events`);
      const reader = stream.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      await reader.cancel();
      assert.match(first, /^event: report\ndata: \{"modelId":"mdl_/);
    });

    await t.step("drift of an unknown model is 404", async () => {
      assert.equal(
        (await errorOf(await app.request("/v1/models/mdl_nosuchmodel0000/drift"))).code,
        "model_not_found",
      );
    });

    const { id: unlabelled } = await (await json("POST", "/v1/datasets", { name: "inverted" })).json();
    await t.step(
      "unlabelled samples are stored as such, and a label in their upload is refused",
      async () => {
        const upload = new FormData();
        for (const [i, bytes] of heldOut(inverted).entries()) {
          upload.append("image", new Blob([bytes]), `${i}.png`);
        }
        const res = await app.request(`/v1/datasets/${unlabelled}/samples?unlabelled=true`, {
          method: "POST",
          body: upload,
        });
        assert.equal(res.status, 201);
        const added = await res.json();
        assert.equal(added.unlabelled, 18);
        assert.deepEqual(added.counts, {});
        const labelled = new FormData();
        labelled.append("label", "7");
        labelled.append("image", new Blob([digit(7, 0)]), "7.png");
        const refused = await app.request(`/v1/datasets/${unlabelled}/samples?unlabelled=true`, {
          method: "POST",
          body: labelled,
        });
        assert.equal(refused.status, 400);
        assert.equal((await errorOf(refused)).code, "unexpected_label");
        assert.equal((await (await app.request(`/v1/datasets/${unlabelled}`)).json()).sampleCount, 18);
      },
    );

    await t.step("a labelled adaptation refuses a dataset of unlabelled images", async () => {
      const res = await json("POST", "/v1/adaptations", { dataset: unlabelled, epochs: 1 });
      assert.equal(res.status, 400);
      const error = await errorOf(res);
      assert.equal(error.code, "too_few_classes");
      assert.match(error.message, /18 unlabelled samples/);
    });

    await t.step("bn-refresh needs a model, and an existing one", async () => {
      const missing = await json("POST", "/v1/adaptations", { dataset: unlabelled, method: "bn-refresh" });
      assert.equal((await errorOf(missing)).code, "missing_model");
      const unknown = await json("POST", "/v1/adaptations", {
        dataset: unlabelled,
        method: "bn-refresh",
        model: "mdl_nosuchmodel0000",
      });
      assert.equal(unknown.status, 404);
    });

    await t.step("bn-refresh saves a new model fitted to the unlabelled images' statistics", async () => {
      const job = await run({ dataset: unlabelled, method: "bn-refresh", model, activate: "force" });
      assert.equal(job.status, "succeeded", JSON.stringify(job.error));
      assert.equal(job.metrics.method, "bn-refresh");
      assert.equal(job.metrics.refresh.layersRefreshed, 4);
      assert.equal(job.metrics.guard.images, 18);
      const detail = await (await app.request(`/v1/models/${job.modelId}`)).json();
      assert.deepEqual(detail.metadata.refreshedFrom, { modelId: model, images: 18 });
      assert.equal(detail.metadata.driftReference.samples, 18);
      // Inverted traffic is the refreshed model's own domain: it scores far lower there than on the original.
      await predict(job.modelId, heldOut(inverted));
      const refreshed = await drift(job.modelId);
      const original = await drift(model);
      assert.ok(
        refreshed.score < original.score / 10,
        `refreshed ${refreshed.score}, original ${original.score}`,
      );
    });

    await t.step("a refresh from traffic is refused by a server that keeps no traffic", async () => {
      const res = await json("POST", "/v1/adaptations", { method: "bn-refresh", model, source: "traffic" });
      assert.equal(res.status, 403);
      const error = await errorOf(res);
      assert.equal(error.code, "traffic_not_kept");
      assert.match(error.message, /--keep-traffic/);
      assert.equal((await drift(model)).traffic, null);
    });

    await t.step("the refresh guard keeps a refresh on too few images from being activated", async () => {
      const { id: few } = await (await json("POST", "/v1/datasets", { name: "few" })).json();
      const upload = new FormData();
      for (const i of [8, 9, 10]) {
        upload.append("image", new Blob([inverted(7, i)]), `${i}.png`);
      }
      await app.request(`/v1/datasets/${few}/samples?unlabelled=true`, { method: "POST", body: upload });
      const job = await run({ dataset: few, method: "bn-refresh", model, activate: true });
      assert.equal(job.status, "succeeded", JSON.stringify(job.error));
      assert.equal(job.metrics.guard.verdict, "too_few_images");
      assert.equal(job.activated, false);
      assert.equal(job.activationSkipped.code, "too_few_images");
    });
  } finally {
    await close();
  }
});

Deno.test("bn-refresh from the served traffic: kept only when asked, bounded, refreshed into a guarded new version", async (t) => {
  const { app, json, dataset: newDataset, close } = await openTestApp([
    "--drift-window",
    "16",
    "--keep-traffic",
    "20",
  ]);
  try {
    const refreshFromTraffic = (model: string, extra: Record<string, unknown> = {}) =>
      json("POST", "/v1/adaptations", { method: "bn-refresh", model, source: "traffic", ...extra });
    const finished = async (id: string) => {
      await (await app.request(`/v1/adaptations/${id}/events`)).text();
      return await (await app.request(`/v1/adaptations/${id}`)).json();
    };
    const adapted = await finished(
      (await (await json("POST", "/v1/adaptations", {
        dataset: await newDataset(DIGITS, 8),
        epochs: 3,
        seed: 1,
        activate: "force",
      })).json()).id,
    );
    assert.equal(adapted.status, "succeeded", JSON.stringify(adapted.error));
    const model = adapted.modelId as string;
    const drift = async (id: string) => await (await app.request(`/v1/models/${id}/drift`)).json();
    const datasetsBefore = (await (await app.request("/v1/datasets")).json()).datasets.length;

    await t.step(
      "before the model serves, there is no traffic to refresh from (409 no_traffic)",
      async () => {
        const res = await refreshFromTraffic(model);
        assert.equal(res.status, 409);
        assert.equal((await errorOf(res)).code, "no_traffic");
        assert.deepEqual((await drift(model)).traffic, { images: 0, maxImages: 20, bytes: 0 });
      },
    );

    await t.step("a traffic source with a dataset, or for a labelled method, is refused (422)", async () => {
      for (const body of [{ dataset: "ds_x" }, { method: "daft" }]) {
        const res = await refreshFromTraffic(model, body);
        assert.equal(res.status, 422);
        assert.match((await errorOf(res)).message, /json\.source:/);
      }
    });

    await t.step("the window keeps the newest --keep-traffic images the model answered", async () => {
      const body = new FormData();
      // 18 shifted (inverted) digits after 6 clean ones: the window of 20 keeps the last 2 clean and all 18.
      for (const [i, bytes] of [...heldOut(digit).slice(0, 6), ...heldOut(inverted)].entries()) {
        body.append("image", new Blob([bytes]), `${i}.png`);
      }
      assert.equal((await app.request("/v1/models/active/predict", { method: "POST", body })).status, 200);
      const report = await drift(model);
      assert.equal(report.traffic.images, 20);
      assert.ok(report.alert, `score ${report.score}`);
    });

    await t.step(
      "a refresh from traffic saves a new version, with the guard's verdict, and activates it",
      async () => {
        const res = await refreshFromTraffic(model, { activate: true });
        assert.equal(res.status, 202);
        const job = await finished((await res.json()).id);
        assert.equal(job.status, "succeeded", JSON.stringify(job.error));
        assert.equal(job.request.source, "traffic");
        assert.equal(job.metrics.guard.images, 20);
        assert.equal(job.metrics.guard.verdict, "ok", job.metrics.guard.message);
        assert.equal(job.activated, true);
        const detail = await (await app.request(`/v1/models/${job.modelId}`)).json();
        assert.deepEqual(detail.metadata.refreshedFrom, { modelId: model, images: 20 });
        assert.equal((await drift("active")).modelId, job.modelId);
        // The snapshot is an ordinary unlabelled dataset the job names, which the user may delete.
        const snapshot = await (await app.request(`/v1/datasets/${job.request.dataset}`)).json();
        assert.equal(snapshot.unlabelled, 20);
        assert.match(snapshot.name, new RegExp(`^traffic of ${model} at `));
        assert.equal(
          (await app.request(`/v1/datasets/${job.request.dataset}`, { method: "DELETE" })).status,
          204,
        );
      },
    );

    await t.step("a refresh from the traffic of an unknown model is 404 and makes no dataset", async () => {
      const res = await refreshFromTraffic("mdl_nosuchmodel0000");
      assert.equal(res.status, 404);
      assert.equal((await (await app.request("/v1/datasets")).json()).datasets.length, datasetsBefore);
    });
  } finally {
    await close();
  }
});
