import assert from "node:assert/strict";
import { encodePng } from "../src/data/image.ts";
import { FIXTURES } from "./_setup.ts";
import { openTestApp } from "./_api.ts";

const digitFile = (d: number, i = 0) => {
  const names = [...Deno.readDirSync(`${FIXTURES}digits/${d}`)].map((e) => e.name).sort();
  return Deno.readFileSync(`${FIXTURES}digits/${d}/${names[i]}`);
};
const base64 = (bytes: Uint8Array) => (bytes as unknown as { toBase64(): string }).toBase64();

function digitForm(pairs: [label: string | undefined, bytes: Uint8Array | undefined][]): FormData {
  const form = new FormData();
  for (const [label, bytes] of pairs) {
    if (label !== undefined) form.append("label", label);
    if (bytes !== undefined) {
      form.append("image", new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "image/png" }), "x.png");
    }
  }
  return form;
}

async function errorOf(res: Response) {
  const body = await res.json();
  assert.ok(body.error, `expected an error body, got ${JSON.stringify(body)}`);
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "details", "message"]);
  return body.error as { code: string; message: string; details: Record<string, unknown> };
}

Deno.test("datasets are created, listed, read and deleted", async () => {
  const { app, json, close } = await openTestApp();
  const created = await json("POST", "/v1/datasets", { name: "digits" });
  assert.equal(created.status, 201);
  const { id, counts, sampleCount } = await created.json();
  assert.match(id, /^ds_/);
  assert.deepEqual([counts, sampleCount], [{}, 0]);

  const listed = await (await app.request("/v1/datasets")).json();
  assert.deepEqual(listed.datasets.map((d: { id: string }) => d.id), [id]);
  assert.equal((await (await app.request(`/v1/datasets/${id}`)).json()).name, "digits");

  assert.equal((await app.request(`/v1/datasets/${id}`, { method: "DELETE" })).status, 204);
  const gone = await app.request(`/v1/datasets/${id}`);
  assert.equal(gone.status, 404);
  assert.equal((await errorOf(gone)).code, "dataset_not_found");
  await close();
});

Deno.test("creating a dataset without a name is a 422 validation error naming the field", async () => {
  const { json, close } = await openTestApp();
  const res = await json("POST", "/v1/datasets", { nom: "x" });
  assert.equal(res.status, 422);
  const error = await errorOf(res);
  assert.equal(error.code, "invalid_request");
  assert.match(error.message, /json\.name/);
  assert.ok(Array.isArray(error.details.issues));
  await close();
});

Deno.test("malformed JSON is a 400 in the error shape", async () => {
  const { app, close } = await openTestApp();
  const res = await app.request("/v1/datasets", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{not json",
  });
  assert.equal(res.status, 400);
  assert.equal((await errorOf(res)).code, "malformed_request");
  await close();
});

Deno.test("samples upload as multipart pairs and as JSON base64, and counts add up", async () => {
  const { app, json, close } = await openTestApp();
  const { id } = await (await json("POST", "/v1/datasets", { name: "d" })).json();
  const multipart = await app.request(`/v1/datasets/${id}/samples`, {
    method: "POST",
    body: digitForm([["3", digitFile(3, 0)], ["3", digitFile(3, 1)], ["8", digitFile(8, 0)]]),
  });
  assert.equal(multipart.status, 201);
  assert.deepEqual(await multipart.json(), {
    id,
    added: 3,
    addedCounts: { "3": 2, "8": 1 },
    sampleCount: 3,
    counts: { "3": 2, "8": 1 },
    unlabelled: 0,
  });
  const photo = await Deno.readFile(`${FIXTURES}photos/chelsea.jpg`);
  const viaJson = await json("POST", `/v1/datasets/${id}/samples`, {
    samples: [{ label: "8", image: base64(digitFile(8, 1)) }, {
      label: "cat",
      image: `data:image/jpeg;base64,${base64(photo)}`,
    }],
  });
  assert.equal(viaJson.status, 201);
  assert.deepEqual((await viaJson.json()).counts, { "3": 2, "8": 2, "cat": 1 });
  assert.deepEqual((await (await app.request(`/v1/datasets/${id}`)).json()).counts, {
    "3": 2,
    "8": 2,
    "cat": 1,
  });
  await close();
});

Deno.test("a bad sample anywhere in an upload stores nothing and is named", async () => {
  const { app, json, close } = await openTestApp([
    "--max-samples-per-request",
    "4",
    "--max-image-bytes",
    "2000",
  ]);
  const { id } = await (await json("POST", "/v1/datasets", { name: "d" })).json();
  const good = digitFile(1);
  const upload = (form: FormData) =>
    app.request(`/v1/datasets/${id}/samples`, { method: "POST", body: form });
  const cases: [string, Response, number, string, number | undefined][] = [
    ["corrupt", await upload(digitForm([["1", good], ["1", good.slice(0, 40)]])), 400, "invalid_image", 1],
    ["no label", await upload(digitForm([["1", good], [undefined, good]])), 400, "missing_label", 1],
    ["no image", await upload(digitForm([["1", good], ["1", undefined]])), 400, "missing_image", 1],
    [
      "bmp",
      await upload(digitForm([["1", new TextEncoder().encode("BM\x01\x00\x01\x00\x00\x00")]])),
      415,
      "unsupported_image_type",
      0,
    ],
    ["too many", await upload(digitForm(Array(5).fill(["1", good]))), 413, "too_many_samples", 4],
    [
      "too big",
      await upload(
        digitForm([["1", good], [
          "1",
          encodePng({ width: 40, height: 40, data: crypto.getRandomValues(new Uint8Array(4800)) }),
        ]]),
      ),
      413,
      "image_too_large",
      1,
    ],
    [
      "bad base64",
      await json("POST", `/v1/datasets/${id}/samples`, {
        samples: [{ label: "1", image: base64(good) }, { label: "1", image: "***" }],
      }),
      400,
      "invalid_base64",
      1,
    ],
  ];
  for (const [what, res, status, code, index] of cases) {
    assert.equal(res.status, status, what);
    const error = await errorOf(res);
    assert.equal(error.code, code, what);
    assert.equal(error.details.index, index, what);
  }
  const jsonMissing = await json("POST", `/v1/datasets/${id}/samples`, {
    samples: [{ label: "1", image: base64(good) }, { image: base64(good) }],
  });
  assert.equal(jsonMissing.status, 400, "the same code as a multipart sample without a label");
  assert.deepEqual((await errorOf(jsonMissing)).details, { index: 1 });
  assert.equal(
    (await errorOf(await json("POST", `/v1/datasets/${id}/samples`, { samples: [] }))).code,
    "no_samples",
  );
  assert.equal((await (await app.request(`/v1/datasets/${id}`)).json()).sampleCount, 0, "nothing was stored");
  await close();
});

Deno.test("an upload that is neither multipart nor JSON is a 415, and one over the body limit a 413", async () => {
  const { app, json, close } = await openTestApp(["--max-body-bytes", "4096"]);
  const { id } = await (await json("POST", "/v1/datasets", { name: "d" })).json();
  const text = await app.request(`/v1/datasets/${id}/samples`, {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: "hello",
  });
  assert.equal(text.status, 415);
  assert.equal((await errorOf(text)).code, "unsupported_media_type");
  const big = await app.request(`/v1/datasets/${id}/samples`, {
    method: "POST",
    body: digitForm(Array(20).fill(["1", digitFile(1)])),
  });
  assert.equal(big.status, 413);
  assert.equal((await errorOf(big)).code, "body_too_large");
  await close();
});

Deno.test("samples cannot go to a dataset that does not exist", async () => {
  const { app, close } = await openTestApp();
  const res = await app.request("/v1/datasets/ds_0000000000000000/samples", {
    method: "POST",
    body: digitForm([["1", digitFile(1)]]),
  });
  assert.equal(res.status, 404);
  assert.equal((await errorOf(res)).code, "dataset_not_found");
  await close();
});

Deno.test("a dataset an adaptation is using cannot be deleted", async () => {
  const { app, json, runtime, close } = await openTestApp();
  const { id } = await (await json("POST", "/v1/datasets", { name: "d" })).json();
  await app.request(`/v1/datasets/${id}/samples`, {
    method: "POST",
    body: digitForm([["1", digitFile(1, 0)], ["1", digitFile(1, 1)], ["2", digitFile(2, 0)], [
      "2",
      digitFile(2, 1),
    ]]),
  });
  const job = await (await json("POST", "/v1/adaptations", { dataset: id, epochs: 500 })).json();
  const res = await app.request(`/v1/datasets/${id}`, { method: "DELETE" });
  assert.equal(res.status, 409);
  assert.equal((await errorOf(res)).code, "dataset_in_use");
  await runtime.queue.cancel(job.id);
  await close();
});

Deno.test("a dataset's samples are listed with ids, served as uploaded, and removed one at a time", async () => {
  const { app, json, close } = await openTestApp();
  const { id } = await (await json("POST", "/v1/datasets", { name: "d" })).json();
  const bytes = [digitFile(3, 0), digitFile(3, 1), digitFile(5, 0)];
  await app.request(`/v1/datasets/${id}/samples`, {
    method: "POST",
    body: digitForm([["3", bytes[0]], ["3", bytes[1]], ["5", bytes[2]]]),
  });
  const { samples } = await (await app.request(`/v1/datasets/${id}/samples`)).json();
  assert.deepEqual(samples, [{ id: "000001", label: "3" }, { id: "000002", label: "3" }, {
    id: "000003",
    label: "5",
  }]);
  const image = await app.request(`/v1/datasets/${id}/samples/000002`);
  assert.equal(image.headers.get("content-type"), "image/png");
  assert.deepEqual(new Uint8Array(await image.arrayBuffer()), bytes[1]);

  const removed = await app.request(`/v1/datasets/${id}/samples/000002`, { method: "DELETE" });
  assert.equal(removed.status, 200);
  assert.deepEqual((await removed.json()).counts, { "3": 1, "5": 1 });
  assert.equal((await app.request(`/v1/datasets/${id}/samples/000002`)).status, 404);
  await close();
});

Deno.test("an unknown or malformed sample id is a 404 sample_not_found and changes nothing", async () => {
  const { app, dataset, close } = await openTestApp();
  const id = await dataset([3, 5], 2);
  for (const sample of ["000099", "..%2Fdataset.json", "1"]) {
    const res = await app.request(`/v1/datasets/${id}/samples/${sample}`, { method: "DELETE" });
    assert.equal(res.status, 404);
    assert.equal((await errorOf(res)).code, "sample_not_found");
  }
  assert.equal((await (await app.request(`/v1/datasets/${id}`)).json()).sampleCount, 4);
  await close();
});

Deno.test("a dataset is renamed with PATCH", async () => {
  const { json, dataset, close } = await openTestApp();
  const id = await dataset([3, 5], 1);
  const res = await json("PATCH", `/v1/datasets/${id}`, { name: "renamed" });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).name, "renamed");
  assert.equal((await json("PATCH", `/v1/datasets/${id}`, { name: " " })).status, 422);
  await close();
});

Deno.test("a class is renamed, merged into another, and deleted with all its samples", async () => {
  const { json, app, dataset, close } = await openTestApp();
  const id = await dataset([3, 5, 7], 2);
  const renamed = await json("PATCH", `/v1/datasets/${id}/labels/3`, { name: "three" });
  assert.equal(renamed.status, 200);
  assert.deepEqual((await renamed.json()).counts, { "5": 2, "7": 2, "three": 2 });
  const merged = await json("PATCH", `/v1/datasets/${id}/labels/5`, { name: "7" });
  assert.deepEqual((await merged.json()).counts, { "7": 4, "three": 2 });
  const removed = await app.request(`/v1/datasets/${id}/labels/7`, { method: "DELETE" });
  assert.equal(removed.status, 200);
  assert.deepEqual((await removed.json()).counts, { "three": 2 });
  const { samples } = await (await app.request(`/v1/datasets/${id}/samples`)).json();
  assert.deepEqual(samples.map((s: { id: string }) => s.id), ["000001", "000002"]);
  await close();
});

Deno.test("renaming a class to a bad label or an unknown class is refused and changes nothing", async () => {
  const { json, app, dataset, close } = await openTestApp();
  const id = await dataset([3, 5], 1);
  const bad = await json("PATCH", `/v1/datasets/${id}/labels/3`, { name: "a\nb" });
  assert.equal(bad.status, 400);
  assert.equal((await errorOf(bad)).code, "invalid_label");
  const unknown = await json("PATCH", `/v1/datasets/${id}/labels/9`, { name: "nine" });
  assert.equal(unknown.status, 404);
  assert.equal((await errorOf(unknown)).code, "label_not_found");
  assert.deepEqual((await (await app.request(`/v1/datasets/${id}`)).json()).counts, { "3": 1, "5": 1 });
  await close();
});

Deno.test("a class with a space or slash in its label is addressed URL-encoded", async () => {
  const { json, app, close } = await openTestApp();
  const { id } = await (await json("POST", "/v1/datasets", { name: "d" })).json();
  await app.request(`/v1/datasets/${id}/samples`, {
    method: "POST",
    body: digitForm([["red / cat", digitFile(3)], ["dog", digitFile(5)]]),
  });
  const res = await app.request(`/v1/datasets/${id}/labels/${encodeURIComponent("red / cat")}`, {
    method: "DELETE",
  });
  assert.equal(res.status, 200);
  assert.deepEqual((await res.json()).counts, { dog: 1 });
  await close();
});

Deno.test("the samples and classes of a dataset an adaptation is using cannot be changed", async () => {
  const { app, json, runtime, dataset, close } = await openTestApp();
  const id = await dataset([1, 2], 2);
  const job = await (await json("POST", "/v1/adaptations", { dataset: id, epochs: 500 })).json();
  for (
    const res of [
      await app.request(`/v1/datasets/${id}/samples/000001`, { method: "DELETE" }),
      await app.request(`/v1/datasets/${id}/labels/1`, { method: "DELETE" }),
      await json("PATCH", `/v1/datasets/${id}/labels/1`, { name: "one" }),
    ]
  ) {
    assert.equal(res.status, 409);
    assert.equal((await errorOf(res)).code, "dataset_in_use");
  }
  await runtime.queue.cancel(job.id);
  assert.equal((await (await app.request(`/v1/datasets/${id}`)).json()).sampleCount, 4);
  await close();
});

Deno.test("a sample's thumbnail is a PNG no larger than the size asked for", async () => {
  const { app, json, close } = await openTestApp();
  const { id } = await (await json("POST", "/v1/datasets", { name: "d" })).json();
  const photo = Deno.readFileSync(`${FIXTURES}photos/chelsea.jpg`);
  await app.request(`/v1/datasets/${id}/samples`, { method: "POST", body: digitForm([["cat", photo]]) });
  const res = await app.request(`/v1/datasets/${id}/samples/000001?size=64`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "image/png");
  const { decodeImage } = await import("../src/data/image.ts");
  const thumb = await decodeImage(new Uint8Array(await res.arrayBuffer()));
  const original = await decodeImage(photo);
  assert.equal(Math.max(thumb.width, thumb.height), 64);
  assert.ok(Math.abs(thumb.width / thumb.height - original.width / original.height) < 0.05);
  const bad = await app.request(`/v1/datasets/${id}/samples/000001?size=4`);
  assert.equal(bad.status, 422);
  await close();
});
