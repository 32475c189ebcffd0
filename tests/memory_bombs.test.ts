// Decompression bombs (issue 11, rows 1 and 2): all-zero 4096 x 4096 PNGs, 16 kB each and 48 MB decoded.
// Before the pixel budgets and bounded decoding, eight of them in one predict took the process from 0.7 to
// 4.7 GB, and training on eight took ~550 MB per image. The bounds stated here are the ones docs/API.md
// promises: a refused request costs no decoding, and a decoded one holds at most `maxImageSide` squared
// pixels per image, never the file's full size.
import assert from "node:assert/strict";
import { encode as encodeRawPng } from "fast-png";
import { openTestApp } from "./_api.ts";

const MiB = 1024 * 1024;
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

/** Runs `fn` while sampling the process's RSS every 10 ms; returns its result and the peak growth in MiB. */
async function peakRssGrowth<T>(fn: () => Promise<T>): Promise<{ result: T; growthMiB: number }> {
  const before = Deno.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, Deno.memoryUsage().rss)), 10);
  try {
    const result = await fn();
    peak = Math.max(peak, Deno.memoryUsage().rss);
    return { result, growthMiB: (peak - before) / MiB };
  } finally {
    clearInterval(timer);
  }
}

const predictBody = (files: Uint8Array[]) => {
  const form = new FormData();
  for (const f of files) form.append("image", new Blob([f as Uint8Array<ArrayBuffer>]), "bomb.png");
  return form;
};

async function activeModel(t: Awaited<ReturnType<typeof openTestApp>>) {
  const ds = await t.dataset([0, 1], 6);
  const job = await (await t.json("POST", "/v1/adaptations", { dataset: ds, epochs: 1, activate: true }))
    .json();
  for (;;) {
    const state = await (await t.app.request(`/v1/adaptations/${job.id}`)).json();
    if (state.status === "succeeded") return;
    assert.ok(["queued", "running"].includes(state.status), JSON.stringify(state));
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("eight 4096 x 4096 PNG bombs in one predict are refused from their headers, naming maxRequestPixels", async () => {
  const t = await openTestApp();
  try {
    await activeModel(t);
    const { result: res, growthMiB } = await peakRssGrowth(() =>
      Promise.resolve(
        t.app.request("/v1/models/active/predict", {
          method: "POST",
          body: predictBody(Array(8).fill(ZERO)),
        }),
      )
    );
    assert.equal(res.status, 413);
    const { error } = await res.json();
    assert.equal(error.code, "pixel_budget_exceeded");
    assert.match(error.message, /maxRequestPixels \(67108864\)/);
    assert.equal(error.details.index, 4, "the fifth 16.7 MP image is the first over 64 Mi pixels");
    console.log(`refused bomb predict: RSS grew ${growthMiB.toFixed(0)} MiB`);
    assert.ok(growthMiB < 64, `RSS grew ${growthMiB.toFixed(0)} MiB for a refused request`);
  } finally {
    await t.close();
  }
});

Deno.test("with the budget raised, the same eight bombs are predicted within 256 MiB of RSS", async () => {
  const t = await openTestApp(["--max-request-pixels", String(2 ** 28)]);
  try {
    await activeModel(t);
    const { result: res, growthMiB } = await peakRssGrowth(async () =>
      await t.app.request("/v1/models/active/predict", {
        method: "POST",
        body: predictBody(Array(8).fill(ZERO)),
      })
    );
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal((await res.json()).predictions.length, 8);
    // Decoded whole, the eight would be 8 x 48 MiB of RGB plus their float tensors (> 2 GiB).
    console.log(`bomb predict: RSS grew ${growthMiB.toFixed(0)} MiB`);
    assert.ok(growthMiB < 256, `RSS grew ${growthMiB.toFixed(0)} MiB`);
  } finally {
    await t.close();
  }
});

Deno.test("bombs are stored bounded at upload, and training on eight of them stays within 256 MiB of RSS", async () => {
  const t = await openTestApp();
  try {
    const { id } = await (await t.json("POST", "/v1/datasets", { name: "bombs" })).json();
    for (const [label, file] of [["zero", ZERO], ["white", WHITE]] as const) {
      const form = new FormData();
      for (let i = 0; i < 4; i++) {
        form.append("label", label);
        form.append("image", new Blob([file as Uint8Array<ArrayBuffer>]), "bomb.png");
      }
      const res = await t.app.request(`/v1/datasets/${id}/samples`, { method: "POST", body: form });
      assert.equal(res.status, 201, await res.clone().text());
    }
    const record = JSON.parse(
      await Deno.readTextFile(`${t.runtime.config.dataDir}/datasets/${id}/dataset.json`),
    );
    assert.deepEqual(record.samples.map((s: { pixels: number }) => s.pixels), Array(8).fill(512 * 512));
    const { growthMiB, result: state } = await peakRssGrowth(async () => {
      const job = await (await t.json("POST", "/v1/adaptations", { dataset: id, epochs: 1 })).json();
      for (;;) {
        const state = await (await t.app.request(`/v1/adaptations/${job.id}`)).json();
        if (!["queued", "running"].includes(state.status)) return state;
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    assert.equal(state.status, "succeeded", JSON.stringify(state.error));
    console.log(`training on bombs: RSS grew ${growthMiB.toFixed(0)} MiB`);
    assert.ok(growthMiB < 256, `RSS grew ${growthMiB.toFixed(0)} MiB`);
  } finally {
    await t.close();
  }
});

Deno.test("an upload over the dataset's pixel budget stores nothing and names maxDatasetPixels", async () => {
  const t = await openTestApp(["--max-dataset-pixels", String(3 * 512 * 512)]);
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
    assert.match(error.message, /maxDatasetPixels \(786432\)/);
    assert.equal(error.details.index, 3);
    assert.equal((await (await t.app.request(`/v1/datasets/${id}`)).json()).sampleCount, 0);
  } finally {
    await t.close();
  }
});
