import assert from "node:assert/strict";
import { pickFaster } from "../src/backend/backend_choice.ts";
import { openTestApp } from "./_api.ts";

const TOKEN = "test-token-0123456789abcdef";

async function errorOf(res: Response) {
  const body = await res.json();
  assert.ok(body.error, `expected an error body, got ${JSON.stringify(body)}`);
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "details", "message"]);
  return body.error as { code: string; message: string; details: Record<string, unknown> };
}

Deno.test("healthz answers at once; readyz is 503 until the backend and default backbone are up", async () => {
  const { app, runtime, backend, close } = await openTestApp([], false);
  assert.deepEqual(await (await app.request("/healthz")).json(), { status: "ok" });
  const starting = await app.request("/readyz");
  assert.equal(starting.status, 503);
  assert.deepEqual(await starting.json(), {
    ready: false,
    backend: { ready: false },
    defaultBackbone: { name: "tiny", ready: false },
  });
  const early = await app.request("/v1/models/active/predict?image=iVBORw0KGgo");
  assert.equal(early.status, 503);
  assert.equal((await errorOf(early)).code, "not_ready");

  await runtime.bringUp(backend);
  const ready = await app.request("/readyz");
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), {
    ready: true,
    backend: { ready: true, name: backend.name },
    defaultBackbone: { name: "tiny", ready: true },
  });
  await close();
});

Deno.test("readyz names the part that failed to come up", async () => {
  const { runtime, app, backend, close } = await openTestApp(["--default-backbone", "no-such-net"], false);
  await assert.rejects(runtime.bringUp(backend));
  const res = await app.request("/readyz");
  assert.equal(res.status, 503);
  const report = await res.json();
  assert.equal(report.backend.ready, true);
  assert.equal(report.defaultBackbone.ready, false);
  assert.match(report.defaultBackbone.error, /no backbone named 'no-such-net'/);
  const predict = await app.request("/v1/models/active/predict?image=iVBORw0KGgo");
  assert.equal((await errorOf(predict)).code, "no_active_model", "predictions only need the backend");
  await close();
});

Deno.test("info reports version, backend, adapter, self-test and backbones", async () => {
  const { app, backend, close } = await openTestApp();
  const info = await (await app.request("/v1/info")).json();
  assert.equal(info.version, "0.1.0");
  assert.equal(info.backend.name, backend.name);
  assert.equal(info.backend.policy, backend.policy);
  assert.equal(typeof info.backend.adapter, "string");
  assert.equal(typeof info.backend.fellBack, "boolean");
  assert.equal(info.backend.selfTest.passed, true);
  // On wasm, how many threads it computes on (the test backend's thread count).
  assert.deepEqual(info.backend.wasm, backend.wasm);
  if (backend.name === "wasm") assert.ok(info.backend.wasm.threads >= 1);
  assert.ok(info.backbones.some((b: { name: string }) => b.name === "tiny"));
  assert.ok(info.backbones.some((b: { name: string }) => b.name === "mobilenetv2-imagenet"));
  assert.ok(info.methods.some((m: { name: string }) => m.name === "daft"));
  assert.equal(info.activeModel, null);
  assert.equal(info.ready, true);
  await close();
});

Deno.test("the OpenAPI document covers every endpoint, and /docs serves Swagger UI offline", async () => {
  const { app, close } = await openTestApp();
  const doc = await (await app.request("/openapi.json")).json();
  assert.equal(doc.openapi, "3.0.3");
  const operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
  for (
    const op of [
      "GET /healthz",
      "GET /readyz",
      "GET /v1/info",
      "POST /v1/datasets",
      "GET /v1/datasets",
      "GET /v1/datasets/{id}",
      "DELETE /v1/datasets/{id}",
      "POST /v1/datasets/{id}/samples",
      "POST /v1/adaptations",
      "GET /v1/adaptations",
      "GET /v1/adaptations/{id}",
      "GET /v1/adaptations/{id}/events",
      "POST /v1/adaptations/{id}/cancel",
      "POST /v1/adaptations/{id}/retry",
      "GET /v1/models",
      "GET /v1/models/{id}",
      "POST /v1/models/{id}/activate",
      "DELETE /v1/models/{id}",
      "GET /v1/models/{id}/tfjs/{file}",
      "POST /v1/models/{id}/predict",
      "GET /v1/models/{id}/predict",
    ]
  ) assert.ok(operations.includes(op), `${op} is documented`);
  assert.deepEqual(doc.paths["/v1/datasets"].post.security, [{ bearerAuth: [] }]);
  assert.equal(doc.paths["/v1/models/{id}/predict"].post.security, undefined);
  assert.ok(doc.components.schemas.Error);
  assert.ok(doc.paths["/v1/datasets/{id}/samples"].post.requestBody.content["multipart/form-data"]);

  const page = await (await app.request("/docs")).text();
  assert.match(page, /swagger-ui-bundle\.js/);
  assert.doesNotMatch(page, /https?:\/\//, "no CDN");
  const bundle = await app.request("/docs/swagger-ui-bundle.js");
  assert.equal(bundle.status, 200);
  assert.ok((await bundle.text()).length > 100_000);
  assert.equal((await app.request("/docs/swagger-ui.css")).status, 200);
  assert.match(await (await app.request("/docs/init.js")).text(), /\/openapi\.json/);
  await close();
});

Deno.test("info shows auto's measured backend choice: both figures and the reason, as the OpenAPI document has it", async () => {
  const { app, runtime, backend, close } = await openTestApp([], false);
  const timing = (samplesPerSec: number) => ({
    samplesPerSec,
    stepMs: 16000 / samplesPerSec,
    batch: 16,
    steps: 3,
  });
  const choice = pickFaster(
    timing(40),
    { error: "webgpu backend failed to start: lost device" },
    "gpu; deno 2",
  )!;
  await runtime.bringUp({ ...backend, choice });
  const info = await (await app.request("/v1/info")).json();
  assert.deepEqual(info.backend.choice, choice);
  assert.equal(info.backend.choice.chosen, "webgpu");
  assert.match(
    info.backend.choice.reason,
    /only webgpu trained \(40\.0 samples\/s\); wasm failed: .*lost device/,
  );
  const doc = await (await app.request("/openapi.json")).json();
  const schema = doc.components.schemas.Info.properties.backend.properties.choice;
  assert.deepEqual(Object.keys(schema.properties).sort(), Object.keys(choice).sort());
  await close();
});

Deno.test("the browser console is served at /", async () => {
  const { app, close } = await openTestApp();
  const res = await app.request("/");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /text\/html/);
  assert.match(await res.text(), /daft-edge console/);
  await close();
});

Deno.test("unknown routes are 404 in the error shape, and responses carry secure headers", async () => {
  const { app, close } = await openTestApp();
  const res = await app.request("/v2/nothing");
  assert.equal(res.status, 404);
  assert.equal((await errorOf(res)).code, "route_not_found");
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  await close();
});

Deno.test("with an API token, mutating endpoints need it and reads do not", async () => {
  const { app, close } = await openTestApp(["--api-token", TOKEN]);
  const create = (headers: Record<string, string> = {}) =>
    app.request("/v1/datasets", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ name: "x" }),
    });
  const missing = await create();
  assert.equal(missing.status, 401);
  assert.match(missing.headers.get("www-authenticate")!, /^Bearer/);
  assert.equal((await errorOf(missing)).code, "unauthorized");
  const wrong = await create({ authorization: "Bearer not-the-token" });
  assert.equal(wrong.status, 401);
  assert.equal((await errorOf(wrong)).code, "invalid_token");
  const right = await create({ authorization: `Bearer ${TOKEN}` });
  assert.equal(right.status, 201);
  const { id } = await right.json();

  assert.equal((await app.request(`/v1/datasets/${id}`, { method: "DELETE" })).status, 401);
  assert.equal((await app.request("/v1/models/x/activate", { method: "POST" })).status, 401);
  assert.equal((await app.request("/v1/adaptations/x/cancel", { method: "POST" })).status, 401);
  assert.equal((await app.request("/v1/datasets")).status, 200, "reads are open");
  assert.equal((await app.request("/readyz")).status, 200);
  const predict = await app.request("/v1/models/active/predict", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ images: ["iVBORw0KGgo"] }),
  });
  assert.notEqual(predict.status, 401, "predictions change nothing and need no token");
  await predict.body?.cancel();
  await close();
});

Deno.test("a cross-site form post from a browser is refused", async () => {
  const { app, close } = await openTestApp();
  const form = new FormData();
  form.append("label", "x");
  const res = await app.request("http://localhost/v1/datasets/ds_0000000000000000/samples", {
    method: "POST",
    headers: { origin: "https://evil.example" },
    body: form,
  });
  assert.equal(res.status, 403);
  assert.equal((await errorOf(res)).code, "forbidden");
  await close();
});
