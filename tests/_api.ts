// Shared set-up of the API tests: an app over a fresh data directory, on the test backend, with the tiny
// backbone as default, and helpers to send JSON and to build a dataset from the digit fixtures.
import assert from "node:assert/strict";
import { createApp } from "../routes/app.ts";
import { loadConfig } from "../src/config.ts";
import { openRuntime } from "../src/runtime.ts";
import { FIXTURES, testBackend } from "./_setup.ts";

/**
 * Wraps `app.request` so that every response to an operation of the app's OpenAPI document is checked
 * against it: a status the document does not list for that operation fails the test at that request.
 * Paths no operation serves (`/docs`, `/`, unknown routes) pass unchecked.
 */
function checkResponsesAgainstSpec(app: ReturnType<typeof createApp>) {
  const request = app.request.bind(app);
  let operations:
    | Promise<{ method: string; path: RegExp; template: string; statuses: string[] }[]>
    | undefined;
  const spec = async () => {
    const document = await (await request("/openapi.json")).json();
    return Object.entries(document.paths as Record<string, Record<string, { responses: object }>>).flatMap((
      [template, item],
    ) =>
      Object.entries(item).map(([method, operation]) => ({
        method: method.toUpperCase(),
        path: new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}/?$`),
        template,
        statuses: Object.keys(operation.responses),
      }))
    );
  };
  app.request = (async (input: string | Request | URL, init?: RequestInit, ...rest: unknown[]) => {
    const res = await (request as (...a: unknown[]) => Promise<Response>)(input, init, ...rest);
    const url = new URL(input instanceof Request ? input.url : String(input), "http://localhost");
    const method = (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
    const operation = (await (operations ??= spec())).find((o) =>
      o.method === method && o.path.test(url.pathname)
    );
    assert.ok(
      !operation || operation.statuses.includes(String(res.status)),
      `${method} ${url.pathname} answered ${res.status}, which the OpenAPI document does not list for ` +
        `${method} ${operation?.template} (it lists ${operation?.statuses.join(", ")})`,
    );
    return res;
  }) as typeof app.request;
}

/**
 * `bringUp: false` leaves the runtime as it opened: no backend, not ready. A given `dataDir` is opened as it
 * is (a restart) and kept by `close`; without one a fresh directory is made and removed.
 */
export async function openTestApp(flags: string[] = [], bringUp = true, existingDataDir?: string) {
  const backend = await testBackend();
  const dataDir = existingDataDir ?? await Deno.makeTempDir({ prefix: "daft-api-" });
  const loaded = loadConfig(
    ["--data-dir", dataDir, "--default-backbone", "tiny", "--backend", backend.policy, ...flags],
    () => undefined,
  );
  if (loaded.help) throw new Error("unreachable");
  const runtime = await openRuntime(loaded.config);
  if (bringUp) await runtime.bringUp(backend);
  const app = createApp({ runtime, logRequests: false });
  checkResponsesAgainstSpec(app);
  const json = async (method: string, path: string, body?: unknown) =>
    await app.request(path, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const dataset = async (digits: number[], perDigit: number) => {
    const { id } = await (await json("POST", "/v1/datasets", { name: "digits" })).json();
    const form = new FormData();
    for (const d of digits) {
      const names = [...Deno.readDirSync(`${FIXTURES}digits/${d}`)].map((e) => e.name).sort().slice(
        0,
        perDigit,
      );
      for (const name of names) {
        form.append("label", String(d));
        form.append("image", new Blob([Deno.readFileSync(`${FIXTURES}digits/${d}/${name}`)]), name);
      }
    }
    assert.equal(
      (await app.request(`/v1/datasets/${id}/samples`, { method: "POST", body: form })).status,
      201,
    );
    return id as string;
  };
  const close = async () => {
    await runtime.close();
    if (!existingDataDir) await Deno.remove(dataDir, { recursive: true });
  };
  return { app, runtime, backend, dataDir, json, dataset, close };
}
