// Corrupt and half-written state on disk: what a crash, a bad disk or a stray edit can leave. Each broken
// item is moved aside and reported on its own (one log line naming the file relative to the data
// directory, and a `corrupt` entry or error code in the API); the rest of the data directory keeps serving.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openTestApp } from "./_api.ts";
import { FIXTURES } from "./_setup.ts";

type Api = Awaited<ReturnType<typeof openTestApp>>;

interface Restart<T> {
  /** Builds state with a first server. */
  before: (api: Api) => Promise<T>;
  /** Damages the data directory while no server runs. */
  damage: (dataDir: string, state: T) => Promise<void>;
  /** Checks a second server over the damaged directory; `logs` is what it logged while opening. */
  after: (api: Api, state: T, logs: string[]) => Promise<void>;
  bringUp?: boolean;
}

async function withRestart<T>({ before, damage, after, bringUp = false }: Restart<T>) {
  const dataDir = await Deno.makeTempDir({ prefix: "daft-state-" });
  try {
    const first = await openTestApp([], bringUp, dataDir);
    let state: T;
    try {
      state = await before(first);
    } finally {
      await first.close();
    }
    await damage(dataDir, state);
    const logs: string[] = [];
    const error = console.error;
    console.error = (...args: unknown[]) => logs.push(args.map(String).join(" "));
    let second;
    try {
      second = await openTestApp([], bringUp, dataDir);
    } finally {
      console.error = error;
    }
    try {
      await after(second, state, logs);
    } finally {
      await second.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

async function errorOf(res: Response) {
  const body = await res.json();
  assert.ok(body.error, `expected an error body, got ${JSON.stringify(body)}`);
  return body.error as { code: string; message: string; details: Record<string, unknown> };
}

function assertNoHostPath(text: string, dataDir: string) {
  assert.ok(!text.includes(dataDir), `a host path leaked: ${text}`);
  assert.ok(!/(^|[\s'"(])\/(tmp|home|root|srv|var|usr|work)\//.test(text), `a host path leaked: ${text}`);
}

async function truncate(path: string) {
  const text = await Deno.readTextFile(path);
  await Deno.writeTextFile(path, text.slice(0, Math.floor(text.length / 2)));
}

function onlyLine(logs: string[], file: string) {
  const lines = logs.filter((l) => l.includes(file));
  assert.equal(lines.length, 1, `one log line names ${file}:\n${logs.join("\n")}`);
  return lines[0];
}

Deno.test("a truncated job record is moved aside with one log line, and the server starts with the other jobs", async () => {
  await withRestart({
    before: async ({ runtime, json, dataset }) => {
      const ds = await dataset([0, 1], 2);
      // Not brought up, so the queue does not run: both jobs stay queued on disk.
      for (let i = 0; i < 2; i++) {
        assert.equal((await json("POST", "/v1/adaptations", { dataset: ds, epochs: 1 })).status, 202);
      }
      return runtime.queue.list().map((j) => j.id);
    },
    damage: (dataDir, [broken]) => truncate(join(dataDir, "jobs", `${broken}.json`)),
    after: async ({ app, dataDir }, [broken, kept], logs) => {
      const listed = await (await app.request("/v1/adaptations")).json();
      assert.deepEqual(listed.adaptations.map((j: { id: string }) => j.id), [kept]);
      const line = onlyLine(logs, `jobs/${broken}.json`);
      assert.match(line, /is corrupt \(not JSON/);
      assertNoHostPath(line, dataDir);
      assert.ok(Deno.statSync(join(dataDir, "jobs", `${broken}.json.corrupt`)).isFile);
      assert.equal((await app.request(`/v1/adaptations/${broken}`)).status, 404);
    },
  });
});

Deno.test("a garbled dataset.json is listed as corrupt beside the good datasets, answers dataset_corrupt, and can be deleted", async () => {
  await withRestart({
    before: async ({ dataset }) => [await dataset([0], 2), await dataset([1], 2)],
    damage: (dataDir, [broken]) =>
      Deno.writeTextFile(join(dataDir, "datasets", broken, "dataset.json"), '{"id": 3, "samples": "x"}'),
    after: async ({ app, dataDir }, [broken, kept], logs) => {
      onlyLine(logs, `datasets/${broken}/dataset.json`);
      const listed = await app.request("/v1/datasets");
      assert.equal(listed.status, 200);
      const body = await listed.json();
      assert.deepEqual(body.datasets.map((d: { id: string }) => d.id), [kept]);
      assert.deepEqual(body.corrupt.map((d: { id: string; code: string }) => [d.id, d.code]), [
        [broken, "dataset_corrupt"],
      ]);
      assert.equal(body.corrupt[0].file, `datasets/${broken}/dataset.json`);

      const get = await app.request(`/v1/datasets/${broken}`);
      assert.equal(get.status, 500);
      const error = await errorOf(get);
      assert.equal(error.code, "dataset_corrupt");
      assertNoHostPath(error.message, dataDir);

      assert.equal((await app.request(`/v1/datasets/${broken}`, { method: "DELETE" })).status, 204);
      const after = await (await app.request("/v1/datasets")).json();
      assert.deepEqual([after.datasets.length, after.corrupt.length], [1, 0]);
    },
  });
});

Deno.test("a garbled model metadata.json is listed as corrupt beside the good models, and can be deleted", async () => {
  await withRestart({
    bringUp: true,
    before: async ({ runtime, json, dataset }) => {
      const ds = await dataset([0, 1], 4);
      const ids = [];
      for (let i = 0; i < 2; i++) {
        const job = await (await json("POST", "/v1/adaptations", { dataset: ds, epochs: 1 })).json();
        await new Promise<void>((resolve) => {
          const stop = runtime.queue.events.subscribe(
            job.id,
            (e) => e.type === "done" && (stop(), resolve()),
          );
        });
        ids.push(runtime.queue.get(job.id).modelId!);
      }
      return ids;
    },
    damage: (dataDir, [broken]) => truncate(join(dataDir, "models", broken, "metadata.json")),
    after: async ({ app, dataDir }, [broken, kept], logs) => {
      assertNoHostPath(onlyLine(logs, `models/${broken}/metadata.json`), dataDir);
      const body = await (await app.request("/v1/models")).json();
      assert.deepEqual(body.models.map((m: { id: string }) => m.id), [kept]);
      assert.deepEqual(body.corrupt.map((m: { id: string; code: string }) => [m.id, m.code]), [
        [broken, "model_corrupt"],
      ]);
      const digit = Deno.readFileSync(
        `${FIXTURES}digits/0/${[...Deno.readDirSync(`${FIXTURES}digits/0`)][0].name}`,
      );
      const image = (digit as unknown as { toBase64(o: unknown): string }).toBase64({
        alphabet: "base64url",
      });
      const predict = await app.request(`/v1/models/${broken}/predict?image=${image}`);
      assert.equal((await errorOf(predict)).code, "model_corrupt");
      assert.equal((await app.request(`/v1/models/${broken}`, { method: "DELETE" })).status, 204);
      assert.equal((await (await app.request("/v1/models")).json()).corrupt.length, 0);
    },
  });
});

Deno.test("start-up sweeps temporary files, unreferenced sample files and datasets a crash left half-made", async () => {
  await withRestart({
    before: async ({ dataset }) => await dataset([0, 1], 2),
    damage: async (dataDir, ds) => {
      const samples = join(dataDir, "datasets", ds, "samples");
      await Deno.writeTextFile(join(samples, ".tmp-1234"), "half a png");
      await Deno.writeTextFile(join(samples, "000099.png"), "an upload a crash cut short");
      await Deno.writeTextFile(join(dataDir, "datasets", ds, ".tmp-5678"), "{");
      await Deno.writeTextFile(join(dataDir, "jobs", ".tmp-9"), "{");
      await Deno.mkdir(join(dataDir, "datasets", "ds_00000000000000aa", "samples"), { recursive: true });
    },
    after: async ({ app, dataDir }, ds, logs) => {
      const samples = [...Deno.readDirSync(join(dataDir, "datasets", ds, "samples"))].map((e) => e.name)
        .sort();
      assert.deepEqual(samples, ["000001.png", "000002.png", "000003.png", "000004.png"]);
      assert.deepEqual([...Deno.readDirSync(join(dataDir, "datasets"))].map((e) => e.name), [ds]);
      assert.equal([...Deno.readDirSync(join(dataDir, "datasets", ds))].length, 2);
      assert.equal([...Deno.readDirSync(join(dataDir, "jobs"))].length, 0);
      assert.match(
        logs.join("\n"),
        /removed 2 temporary file\(s\), 1 unreferenced sample file\(s\) and 1 incomplete dataset/,
      );
      assert.equal((await (await app.request(`/v1/datasets/${ds}`)).json()).sampleCount, 4);
    },
  });
});

Deno.test("a sample file missing on disk fails the job with sample_missing, naming the sample without a host path", async () => {
  await withRestart({
    bringUp: true,
    before: async ({ dataset }) => await dataset([0, 1], 2),
    damage: (dataDir, ds) => Deno.remove(join(dataDir, "datasets", ds, "samples", "000003.png")),
    after: async ({ runtime, json, dataDir }, ds) => {
      const job = await (await json("POST", "/v1/adaptations", { dataset: ds, epochs: 1 })).json();
      await new Promise<void>((resolve) => {
        const stop = runtime.queue.events.subscribe(job.id, (e) => e.type === "done" && (stop(), resolve()));
      });
      const done = await (await json("GET", `/v1/adaptations/${job.id}`)).json();
      assert.equal(done.status, "failed");
      assert.equal(done.error.code, "sample_missing");
      assert.deepEqual([done.error.details.index, done.error.details.label], [2, "1"]);
      assert.equal(done.error.details.file, `datasets/${ds}/samples/000003.png`);
      assertNoHostPath(JSON.stringify(done.error), dataDir);
    },
  });
});
