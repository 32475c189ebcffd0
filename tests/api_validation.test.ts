// Bodies are validated the same way on every route: the media type first (415 saying what to send), then the
// shape (422: unknown_field naming the field, or invalid_request), then each item's content (400, the same
// code whichever encoding carried it). URLs over the limit are 414, in the same error shape.
import assert from "node:assert/strict";
import { openTestApp } from "./_api.ts";
import { FIXTURES } from "./_setup.ts";

const digit = Deno.readFileSync(`${FIXTURES}digits/1/mnist-test-00002.png`);
const base64 = (bytes: Uint8Array) => (bytes as unknown as { toBase64(): string }).toBase64();

async function errorOf(res: Response) {
  const body = await res.json();
  assert.ok(body.error, `expected an error body, got ${JSON.stringify(body)}`);
  return body.error as { code: string; message: string; details: Record<string, unknown> };
}

Deno.test("a JSON body sent without a content type is a 415 that says to send JSON or multipart", async () => {
  const { app, dataset, close } = await openTestApp();
  const ds = await dataset([0, 1], 2);
  const routes: [string, unknown, string[]][] = [
    [`/v1/datasets/${ds}/samples`, { samples: [{ label: "1", image: base64(digit) }] }, [
      "application/json",
      "multipart/form-data",
    ]],
    ["/v1/models/active/predict", { images: [base64(digit)] }, ["application/json", "multipart/form-data"]],
    ["/v1/datasets", { name: "d" }, ["application/json"]],
    ["/v1/adaptations", { dataset: ds }, ["application/json"]],
  ];
  for (const [path, body, accepted] of routes) {
    for (const headers of [{}, { "content-type": "text/plain" }] as Record<string, string>[]) {
      const res = await app.request(path, { method: "POST", headers, body: JSON.stringify(body) });
      assert.equal(res.status, 415, path);
      const error = await errorOf(res);
      assert.equal(error.code, "unsupported_media_type");
      assert.deepEqual(error.details.accepted, accepted);
      assert.match(error.message, new RegExp(`^send ${accepted.join(" or ")}`));
    }
  }
  await close();
});

Deno.test("a field a body does not know is named as unknown_field, in JSON and in multipart alike", async () => {
  const { app, json, dataset, close } = await openTestApp();
  const ds = await dataset([0, 1], 2);
  const form = (name: string) => {
    const f = new FormData();
    f.append(name, new Blob([digit]), "1.png");
    return f;
  };
  const cases: [string, Promise<Response>, string[]][] = [
    ["predict JSON 'image'", json("POST", "/v1/models/active/predict", { image: base64(digit) }), ["image"]],
    [
      "samples JSON 'file'",
      json("POST", `/v1/datasets/${ds}/samples`, { samples: [{ label: "1", file: base64(digit) }] }),
      ["samples.0.file"],
    ],
    ["datasets 'tags'", json("POST", "/v1/datasets", { name: "d", tags: [[[[]]]] }), ["tags"]],
    ["adaptations 'colour'", json("POST", "/v1/adaptations", { dataset: ds, colour: "blue" }), ["colour"]],
    [
      "predict multipart 'file'",
      Promise.resolve(app.request("/v1/models/active/predict", { method: "POST", body: form("file") })),
      ["file"],
    ],
    [
      "samples multipart 'file'",
      Promise.resolve(app.request(`/v1/datasets/${ds}/samples`, { method: "POST", body: form("file") })),
      ["file"],
    ],
  ];
  for (const [what, pending, fields] of cases) {
    const res = await pending;
    assert.equal(res.status, 422, what);
    const error = await errorOf(res);
    assert.equal(error.code, "unknown_field", what);
    assert.deepEqual(error.details.fields, fields, what);
    assert.ok(error.message.includes(`'${fields[0].split(".").at(-1)}'`), error.message);
  }
  assert.equal((await (await app.request("/v1/datasets")).json()).datasets.length, 1, "nothing was created");
  await close();
});

Deno.test("a dataset's name is validated like every body: required, and only JSON objects", async () => {
  const { app, json, close } = await openTestApp();
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  const res = await app.request("/v1/datasets", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: deep,
  });
  assert.equal(res.status, 422);
  assert.equal((await errorOf(res)).code, "invalid_request");
  const blank = await json("POST", "/v1/datasets", { name: "  " });
  assert.equal(blank.status, 422);
  assert.match((await errorOf(blank)).message, /json\.name/);
  assert.equal((await (await app.request("/v1/datasets")).json()).datasets.length, 0);
  await close();
});

Deno.test("a URL over 16 KiB is a 414 in the error shape, before any route reads it", async () => {
  const { app, close } = await openTestApp();
  const res = await app.request(`/v1/models/active/predict?image=${"A".repeat(100_000)}`);
  assert.equal(res.status, 414);
  const error = await errorOf(res);
  assert.equal(error.code, "uri_too_long");
  assert.equal(error.details.maxUrlLength, 16 * 1024);
  await close();
});

Deno.test("the OpenAPI document lists 401 on every protected operation and 422 on predict", async () => {
  const { app, close } = await openTestApp();
  const document = await (await app.request("/openapi.json")).json();
  const operations = Object.entries(document.paths as Record<string, Record<string, any>>)
    .flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));
  const isProtected = operations.filter((o) => o.op.security);
  assert.ok(isProtected.length >= 8);
  for (const { path, method, op } of isProtected) assert.ok(op.responses["401"], `${method} ${path}`);
  assert.ok(document.paths["/v1/models/{id}/predict"].post.responses["422"]);
  await close();
});
