// Decompression bombs (issue 11, rows 1 and 2): all-zero 4096 x 4096 PNGs, 16 kB each and 48 MB decoded.
// Before the pixel budgets and bounded decoding, eight of them in one predict took the process from 0.7 to
// 4.7 GB, and training on eight took ~550 MB per image. The bounds stated here are the ones docs/API.md
// promises: a refused request costs no decoding, and a decoded one holds at most `maxImageSide` squared
// pixels per image, never the file's full size.
import assert from "node:assert/strict";
import { encode as encodeRawPng } from "fast-png";
import { openTestApp } from "./_api.ts";
import { FIXTURES } from "./_setup.ts";

const SIDE = 4096;
const bomb = (value: number) =>
  encodeRawPng({
    width: SIDE,
    height: SIDE,
    data: new Uint8Array(SIDE * SIDE).fill(value),
    channels: 1,
    depth: 8,
  });
const ZERO = bomb(0);
const WHITE = bomb(255);

/** A server in its own process (the test runner's RSS holds the other test files' too), on a fresh data dir. */
async function startServer(flags: string[] = []) {
  const dataDir = await Deno.makeTempDir({ prefix: "daft-bombs-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--no-liftoff",
      "main.ts",
      "--port",
      "0",
      "--data-dir",
      dataDir,
      "--default-backbone",
      "tiny",
      "--backend",
      "cpu",
      ...flags,
    ],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening on (http:\/\/[^ ]+)/.test(text)) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`the server stopped: ${text}`);
    text += value;
  }
  const url = text.match(/listening on (http:\/\/[^ ]+)/)![1];
  // Keep reading stdout so the server never blocks on a full pipe.
  const drained = (async () => {
    while (!(await lines.read()).done) { /* discard */ }
  })();
  for (let i = 0; i < 600 && (await fetch(`${url}/readyz`)).status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const request = (path: string, init?: RequestInit) => fetch(`${url}${path}`, init);
  const json = (method: string, path: string, body: unknown) =>
    request(path, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const rssMiB = () => {
    const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
    return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]) / 1024;
  };
  /** Runs `fn` while sampling the server's RSS every 10 ms; returns its result and the peak growth in MiB. */
  const peakRssGrowth = async <T>(fn: () => Promise<T>) => {
    const before = rssMiB();
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, rssMiB())), 10);
    try {
      const result = await fn();
      peak = Math.max(peak, rssMiB());
      return { result, growthMiB: peak - before };
    } finally {
      clearInterval(timer);
    }
  };
  const stop = async () => {
    child.kill("SIGTERM");
    await child.status;
    await drained;
    await Deno.remove(dataDir, { recursive: true });
  };
  return { request, json, peakRssGrowth, stop, dataDir };
}

type Server = Awaited<ReturnType<typeof startServer>>;

/** Uploads six fixture digits of 0 and 1, trains one epoch on them, and activates the model. */
async function activeModel(server: Server) {
  const { id } = await (await server.json("POST", "/v1/datasets", { name: "digits" })).json();
  const form = new FormData();
  for (const d of [0, 1]) {
    const names = [...Deno.readDirSync(`${FIXTURES}digits/${d}`)].map((e) => e.name).sort().slice(0, 6);
    for (const name of names) {
      form.append("label", String(d));
      form.append("image", new Blob([Deno.readFileSync(`${FIXTURES}digits/${d}/${name}`)]), name);
    }
  }
  assert.equal(
    (await server.request(`/v1/datasets/${id}/samples`, { method: "POST", body: form })).status,
    201,
  );
  // Activated by hand: a one-epoch model may be held back by the activation guard, which is not the point here.
  const job = await finished(server, { dataset: id, epochs: 1, minSteps: 0 });
  assert.equal(job.status, "succeeded", JSON.stringify(job.error));
  assert.equal((await server.request(`/v1/models/${job.modelId}/activate`, { method: "POST" })).status, 200);
}

async function finished(server: Server, body: unknown) {
  const job = await (await server.json("POST", "/v1/adaptations", body)).json();
  for (;;) {
    const state = await (await server.request(`/v1/adaptations/${job.id}`)).json();
    if (!["queued", "running"].includes(state.status)) return state;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const bombForm = (count: number, file: Uint8Array, label?: string) => {
  const form = new FormData();
  for (let i = 0; i < count; i++) {
    if (label) form.append("label", label);
    form.append("image", new Blob([file as Uint8Array<ArrayBuffer>]), "bomb.png");
  }
  return form;
};

Deno.test("eight 4096 x 4096 PNG bombs in one predict are refused from their headers, naming maxRequestPixels", async () => {
  const server = await startServer();
  try {
    await activeModel(server);
    const { result: res, growthMiB } = await server.peakRssGrowth(() =>
      server.request("/v1/models/active/predict", { method: "POST", body: bombForm(8, ZERO) })
    );
    assert.equal(res.status, 413);
    const { error } = await res.json();
    assert.equal(error.code, "pixel_budget_exceeded");
    assert.match(error.message, /maxRequestPixels \(67108864\)/);
    assert.equal(error.details.index, 4, "the fifth 16.7 MP image is the first over 64 Mi pixels");
    console.log(`refused bomb predict: server RSS grew ${growthMiB.toFixed(0)} MiB`);
    assert.ok(growthMiB < 64, `RSS grew ${growthMiB.toFixed(0)} MiB for a refused request`);
  } finally {
    await server.stop();
  }
});

Deno.test("with the budget raised, the same eight bombs are predicted within 256 MiB of RSS", async () => {
  const server = await startServer(["--max-request-pixels", String(2 ** 28)]);
  try {
    await activeModel(server);
    const { result: res, growthMiB } = await server.peakRssGrowth(() =>
      server.request("/v1/models/active/predict", { method: "POST", body: bombForm(8, ZERO) })
    );
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal((await res.json()).predictions.length, 8);
    // Decoded whole, the eight would be 8 x 48 MiB of RGB plus their float tensors (> 2 GiB).
    console.log(`bomb predict: server RSS grew ${growthMiB.toFixed(0)} MiB`);
    assert.ok(growthMiB < 256, `RSS grew ${growthMiB.toFixed(0)} MiB`);
  } finally {
    await server.stop();
  }
});

Deno.test("bombs are stored bounded at upload, and training on eight of them stays within 256 MiB of RSS", async () => {
  const server = await startServer();
  try {
    const { id } = await (await server.json("POST", "/v1/datasets", { name: "bombs" })).json();
    for (const [label, file] of [["zero", ZERO], ["white", WHITE]] as const) {
      const res = await server.request(`/v1/datasets/${id}/samples`, {
        method: "POST",
        body: bombForm(4, file, label),
      });
      assert.equal(res.status, 201, await res.clone().text());
    }
    const record = JSON.parse(await Deno.readTextFile(`${server.dataDir}/datasets/${id}/dataset.json`));
    assert.deepEqual(record.samples.map((s: { pixels: number }) => s.pixels), Array(8).fill(640 * 640));
    const { growthMiB, result: state } = await server.peakRssGrowth(() =>
      finished(server, { dataset: id, epochs: 1, minSteps: 0 })
    );
    assert.equal(state.status, "succeeded", JSON.stringify(state.error));
    console.log(`training on bombs: server RSS grew ${growthMiB.toFixed(0)} MiB`);
    assert.ok(growthMiB < 256, `RSS grew ${growthMiB.toFixed(0)} MiB`);
  } finally {
    await server.stop();
  }
});

Deno.test("an upload over the dataset's pixel budget stores nothing and names maxDatasetPixels", async () => {
  const t = await openTestApp(["--max-dataset-pixels", String(3 * 640 * 640)]);
  try {
    const { id } = await (await t.json("POST", "/v1/datasets", { name: "bombs" })).json();
    const form = new FormData();
    for (let i = 0; i < 4; i++) {
      form.append("label", "zero");
      form.append("image", new Blob([ZERO as Uint8Array<ArrayBuffer>]), "bomb.png");
    }
    const res = await t.app.request(`/v1/datasets/${id}/samples`, { method: "POST", body: form });
    assert.equal(res.status, 413);
    const { error } = await res.json();
    assert.equal(error.code, "pixel_budget_exceeded");
    assert.match(error.message, /maxDatasetPixels \(1228800\)/);
    assert.equal(error.details.index, 3);
    assert.equal((await (await t.app.request(`/v1/datasets/${id}`)).json()).sampleCount, 0);
  } finally {
    await t.close();
  }
});
