// Shared set-up of the API tests: an app over a fresh data directory, on the test backend, with the tiny
// backbone as default, and helpers to send JSON and to build a dataset from the digit fixtures.
import assert from "node:assert/strict";
import { createApp } from "../routes/app.ts";
import { loadConfig } from "../src/config.ts";
import { openRuntime } from "../src/serve/open_runtime.ts";
import { FIXTURES, testBackend } from "./_setup.ts";

/** `bringUp: false` leaves the runtime as it opened: no backend, not ready. */
export async function openTestApp(flags: string[] = [], bringUp = true) {
  const backend = await testBackend();
  const dataDir = await Deno.makeTempDir({ prefix: "daft-api-" });
  const loaded = loadConfig(
    ["--data-dir", dataDir, "--default-backbone", "tiny", "--backend", backend.policy, ...flags],
    () => undefined,
  );
  if (loaded.help) throw new Error("unreachable");
  const runtime = await openRuntime(loaded.config);
  if (bringUp) await runtime.bringUp(backend);
  const app = createApp({ runtime, logRequests: false });
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
    await Deno.remove(dataDir, { recursive: true });
  };
  return { app, runtime, backend, json, dataset, close };
}
