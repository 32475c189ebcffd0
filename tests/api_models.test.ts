import * as tf from "@tensorflow/tfjs";
import type { createApp } from "../routes/app.ts";
import assert from "node:assert/strict";
import { FIXTURES } from "./_setup.ts";
import { openTestApp } from "./_api.ts";

const DIGITS = [0, 1, 7];
const digitFiles = (d: number) => [...Deno.readDirSync(`${FIXTURES}digits/${d}`)].map((e) => e.name).sort();
const digit = (d: number, i: number) => Deno.readFileSync(`${FIXTURES}digits/${d}/${digitFiles(d)[i]}`);
const base64 = (bytes: Uint8Array, options?: { alphabet: string; omitPadding: boolean }) =>
  (bytes as unknown as { toBase64(o?: unknown): string }).toBase64(options);

async function errorOf(res: Response) {
  const body = await res.json();
  assert.ok(body.error, `expected an error body, got ${JSON.stringify(body)}`);
  return body.error as { code: string; message: string; details: Record<string, unknown> };
}

async function adaptModel(
  app: ReturnType<typeof createApp>,
  { json, dataset: newDataset }: Pick<Awaited<ReturnType<typeof openTestApp>>, "json" | "dataset">,
  seed: number,
) {
  const dataset = await newDataset(DIGITS, 8);
  const job = await (await json("POST", "/v1/adaptations", { dataset, epochs: 3, seed })).json();
  await (await app.request(`/v1/adaptations/${job.id}/events`)).text();
  const done = await (await app.request(`/v1/adaptations/${job.id}`)).json();
  assert.equal(done.status, "succeeded", JSON.stringify(done.error));
  return done.modelId as string;
}

Deno.test("models: listing, artifacts, activation, predictions and deletion", async (t) => {
  const { app, json, dataset, runtime, close } = await openTestApp(["--max-predict-images", "8"]);
  const first = await adaptModel(app, { json, dataset }, 1);
  const second = await adaptModel(app, { json, dataset }, 2);
  const heldOut = DIGITS.map((d) => digit(d, 20));

  await t.step("models are listed newest first and described with metadata and metrics", async () => {
    const list = await (await app.request("/v1/models")).json();
    assert.equal(list.active, null);
    assert.deepEqual(list.models.map((m: { id: string }) => m.id), [second, first]);
    const detail = await (await app.request(`/v1/models/${first}`)).json();
    assert.deepEqual(detail.classNames, ["0", "1", "7"]);
    assert.equal(detail.backbone, "tiny");
    assert.equal(detail.method, "daft");
    assert.equal(detail.active, false);
    assert.equal(detail.metadata.metrics.validation.confusion.length, 3);
    assert.ok(detail.metadata.bnConversion);
    assert.deepEqual(detail.files, ["model.json", "weights.bin"]);
    assert.equal(detail.tfjs, `http://localhost/v1/models/${first}/tfjs/model.json`);
  });

  await t.step("a model's tfjs artifacts load with tf.loadLayersModel from its URL", async () => {
    const res = await app.request(`/v1/models/${first}/tfjs/model.json`, {
      headers: { origin: "https://elsewhere.example" },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    await res.body?.cancel();
    const fetchFunc = async (url: URL | RequestInfo, init?: RequestInit) =>
      await app.request(url as string, init);
    const model = await tf.loadLayersModel(
      tf.io.http(`http://localhost/v1/models/${first}/tfjs/model.json`, { fetchFunc }),
    );
    const x = tf.zeros([1, 28, 28, 1]);
    const y = model.predict(x) as tf.Tensor;
    assert.deepEqual(y.shape, [1, 3]);
    tf.dispose([x, y]);
    model.dispose();
    const other = await app.request(`/v1/models/${first}/tfjs/metadata.json`);
    assert.equal(other.status, 404);
    assert.equal((await errorOf(other)).code, "artifact_not_found");
  });

  await t.step("predicting from 'active' before any activation is a 503; by id it works", async () => {
    const res = await json("POST", "/v1/models/active/predict", { images: [base64(heldOut[0])] });
    assert.equal(res.status, 503);
    assert.equal((await errorOf(res)).code, "no_active_model");
    const byId = await json("POST", `/v1/models/${first}/predict`, { images: [base64(heldOut[0])] });
    assert.equal(byId.status, 200);
    assert.equal((await byId.json()).model, first);
  });

  await t.step("after activation, multipart, JSON and GET predictions agree, in input order", async () => {
    const activated = await app.request(`/v1/models/${first}/activate`, { method: "POST" });
    assert.equal(activated.status, 200);
    assert.equal((await activated.json()).modelId, first);
    assert.equal((await (await app.request("/v1/models")).json()).active, first);

    const form = new FormData();
    heldOut.forEach((bytes, i) => form.append("image", new Blob([bytes]), `${i}.png`));
    form.append("topK", "2");
    const viaForm = await (await app.request("/v1/models/active/predict", { method: "POST", body: form }))
      .json();
    const viaJson = await (await json("POST", "/v1/models/active/predict?topK=2", {
      images: heldOut.map((b) => base64(b)),
    }))
      .json();
    assert.equal(viaForm.model, first);
    assert.equal(viaForm.predictions.length, 3);
    assert.deepEqual(viaJson, viaForm);
    for (const p of viaForm.predictions) {
      assert.equal(p.topK.length, 2);
      assert.equal(p.label, p.topK[0].label);
      assert.ok(p.score >= p.topK[1].score);
    }
    for (const [i, bytes] of heldOut.entries()) {
      const image = base64(bytes, { alphabet: "base64url", omitPadding: true });
      const res = await app.request(`/v1/models/active/predict?image=${image}&topK=2`);
      assert.equal(res.status, 200);
      assert.deepEqual((await res.json()).predictions[0], viaForm.predictions[i]);
    }
  });

  await t.step("prediction errors name the offending image", async () => {
    const good = base64(heldOut[0]);
    const cases: [string, Promise<Response>, number, string][] = [
      [
        "corrupt",
        json("POST", "/v1/models/active/predict", { images: [good, base64(heldOut[1].slice(0, 50))] }),
        400,
        "invalid_image",
      ],
      [
        "bmp",
        json("POST", "/v1/models/active/predict", {
          images: [base64(new TextEncoder().encode("BM......"))],
        }),
        415,
        "unsupported_image_type",
      ],
      [
        "too many",
        json("POST", "/v1/models/active/predict", { images: Array(9).fill(good) }),
        413,
        "too_many_images",
      ],
      ["no images", json("POST", "/v1/models/active/predict", { images: [] }), 400, "no_images"],
      [
        "no images (multipart)",
        Promise.resolve(app.request("/v1/models/active/predict", {
          method: "POST",
          body: new FormData(),
        })),
        400,
        "no_images",
      ],
      [
        "bad topK",
        Promise.resolve(app.request(`/v1/models/active/predict?image=${good}&topK=0`)),
        400,
        "invalid_top_k",
      ],
      [
        "unknown model",
        json("POST", "/v1/models/mdl_0000000000000000/predict", { images: [good] }),
        404,
        "model_not_found",
      ],
    ];
    for (const [what, pending, status, code] of cases) {
      const res = await pending;
      assert.equal(res.status, status, what);
      assert.equal((await errorOf(res)).code, code, what);
    }
    const corrupt = await json("POST", "/v1/models/active/predict", {
      images: [good, base64(heldOut[1].slice(0, 50))],
    });
    assert.equal((await errorOf(corrupt)).details.index, 1);
  });

  await t.step(
    "activation is an atomic swap: predictions meanwhile see the old or the new model",
    async () => {
      const body = { images: [base64(heldOut[2])] };
      const seen: string[] = [];
      let swapping = true;
      const load = (async () => {
        while (swapping) {
          const res = await json("POST", "/v1/models/active/predict", body);
          assert.equal(res.status, 200);
          seen.push((await res.json()).model);
          // app.request and a synchronous backend resolve in microtasks; a real client's requests arrive as
          // separate tasks, which is what lets the activation's file reads interleave with them here.
          await new Promise((r) => setTimeout(r, 0));
        }
      })();
      await new Promise((r) => setTimeout(r, 20));
      for (const id of [second, first, second]) {
        assert.equal((await app.request(`/v1/models/${id}/activate`, { method: "POST" })).status, 200);
        const after = await (await json("POST", "/v1/models/active/predict", body)).json();
        assert.equal(after.model, id, "the swap is visible to the next prediction");
      }
      swapping = false;
      await load;
      assert.ok(seen.every((m) => m === first || m === second));
      assert.deepEqual(new Set(seen), new Set([first, second]), "predictions ran during the swaps");
      assert.equal(runtime.predictions.activeModelId(), second);
    },
  );

  await t.step("predictions in this thread free their tensors", async () => {
    const body = { images: heldOut.map((b) => base64(b)) };
    // The drift monitor reads a batch's watched layers after the response; a drift report waits for that.
    const observed = async () => await (await app.request("/v1/models/active/drift")).json();
    await json("POST", "/v1/models/active/predict", body);
    await observed();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      assert.equal((await json("POST", "/v1/models/active/predict", body)).status, 200);
    }
    await observed();
    assert.equal(tf.memory().numTensors, before);
  });

  await t.step("the active model cannot be deleted; another can, and is gone", async () => {
    const refused = await app.request(`/v1/models/${second}`, { method: "DELETE" });
    assert.equal(refused.status, 409);
    assert.equal((await errorOf(refused)).code, "model_active");
    assert.equal((await app.request(`/v1/models/${first}`, { method: "DELETE" })).status, 204);
    assert.equal((await app.request(`/v1/models/${first}`)).status, 404);
    assert.equal((await app.request(`/v1/models/${first}/tfjs/model.json`)).status, 404);
    assert.equal((await app.request(`/v1/models/${first}/activate`, { method: "POST" })).status, 404);
    assert.deepEqual(
      (await (await app.request("/v1/models")).json()).models.map((m: { id: string }) => m.id),
      [second],
    );
  });

  await t.step("predictions keep being served while an adaptation trains", async () => {
    const { id: dataset } = await (await json("POST", "/v1/datasets", { name: "busy" })).json();
    const form = new FormData();
    for (const d of DIGITS) {
      for (let i = 0; i < 8; i++) {
        (form.append("label", String(d)), form.append("image", new Blob([digit(d, i)]), "x.png"));
      }
    }
    await app.request(`/v1/datasets/${dataset}/samples`, { method: "POST", body: form });
    const job = await (await json("POST", "/v1/adaptations", { dataset, epochs: 1000 })).json();
    while ((await (await app.request(`/v1/adaptations/${job.id}`)).json()).progress?.phase !== "training") {
      await new Promise((r) => setTimeout(r, 20));
    }
    const body = { images: [base64(heldOut[0])] };
    const slowest = { ms: 0 };
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      assert.equal((await json("POST", "/v1/models/active/predict", body)).status, 200);
      slowest.ms = Math.max(slowest.ms, performance.now() - started);
    }
    assert.equal((await (await app.request(`/v1/adaptations/${job.id}`)).json()).status, "running");
    assert.ok(slowest.ms < 2000, `a prediction took ${slowest.ms} ms while training`);
    await app.request(`/v1/adaptations/${job.id}/cancel`, { method: "POST" });
    await (await app.request(`/v1/adaptations/${job.id}/events`)).text();
  });

  await close();
});
