// A full disk, for real: the data directory sits on a small tmpfs (mounting one needs root; without it
// these tests are skipped, saying why). Uploads, dataset creation, job submission and the save of an
// adapted model each answer `507 insufficient_storage`, and nothing on disk is half-written or lost.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openTestApp } from "./_api.ts";
import { FIXTURES } from "./_setup.ts";

const MOUNT_SIZE = "30m";

/** Mounts a tmpfs of MOUNT_SIZE on a fresh directory, or says why it cannot. */
async function mountSmallDisk(): Promise<{ dir: string } | { reason: string }> {
  const dir = await Deno.makeTempDir({ prefix: "daft-full-" });
  try {
    const out = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${MOUNT_SIZE}`, "tmpfs", dir],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (out.success) return { dir };
    await Deno.remove(dir);
    return { reason: new TextDecoder().decode(out.stderr).trim() || `mount exited ${out.code}` };
  } catch (err) {
    await Deno.remove(dir);
    return { reason: (err as Error).message };
  }
}

async function unmount(dir: string) {
  await new Deno.Command("umount", { args: [dir] }).output();
  await Deno.remove(dir, { recursive: true });
}

/** Fills the disk under `dir` with one file, then frees `leaveBytes` of it; returns the file. */
async function fillDisk(dir: string, leaveBytes: number): Promise<string> {
  const path = join(dir, "filler");
  const file = await Deno.open(path, { write: true, create: true });
  const chunk = new Uint8Array(256 * 1024);
  let size = 0;
  try {
    for (;;) size += await file.write(chunk);
  } catch (err) {
    assert.equal((err as { code?: string }).code, "ENOSPC");
  }
  await file.truncate(Math.max(0, size - leaveBytes));
  file.close();
  return path;
}

function digitForm(digits: number[], perDigit: number) {
  const form = new FormData();
  for (const d of digits) {
    const names = [...Deno.readDirSync(`${FIXTURES}digits/${d}`)].map((e) => e.name).sort();
    for (const name of names.slice(0, perDigit)) {
      form.append("label", String(d));
      form.append("image", new Blob([Deno.readFileSync(`${FIXTURES}digits/${d}/${name}`)]), name);
    }
  }
  return form;
}

function listTree(dir: string): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    out.push(path);
    if (entry.isDirectory) out.push(...listTree(path));
  }
  return out.sort();
}

const mounted = await mountSmallDisk();
const skip = "reason" in mounted;
if (skip) {
  console.warn(
    `[disk-full tests skipped] cannot mount a ${MOUNT_SIZE} tmpfs (${mounted.reason}); run them as root`,
  );
}

Deno.test({
  name:
    "on a full disk, uploads, dataset creation, job submission and model saves answer 507 and leave the data as it was",
  ignore: skip,
  sanitizeResources: false,
  async fn() {
    const disk = (mounted as { dir: string }).dir;
    const dataDir = join(disk, "data");
    const api = await openTestApp([], true, dataDir);
    try {
      const { app, runtime, json } = api;
      const ds = (await (await json("POST", "/v1/datasets", { name: "digits" })).json()).id;
      const upload = () =>
        app.request(`/v1/datasets/${ds}/samples`, { method: "POST", body: digitForm([0, 1], 4) });
      assert.equal((await upload()).status, 201);
      const runJob = async () => {
        const res = await json("POST", "/v1/adaptations", { dataset: ds, epochs: 1 });
        if (res.status !== 202) return { status: res.status, body: await res.json() };
        const job = await res.json();
        await new Promise<void>((resolve) => {
          const stop = runtime.queue.events.subscribe(
            job.id,
            (e) => e.type === "done" && (stop(), resolve()),
          );
        });
        return { status: 202, body: runtime.queue.get(job.id) };
      };
      const first = await runJob();
      assert.equal(first.body.status, "succeeded");
      const weights = Deno.statSync(join(dataDir, "models", first.body.modelId!, "weights.bin")).size;
      const before = listTree(dataDir);

      // Full to the last byte: every write fails.
      const filler = await fillDisk(disk, 0);
      const refused = await upload();
      assert.equal(refused.status, 507);
      const error = (await refused.json()).error;
      assert.equal(error.code, "insufficient_storage");
      assert.ok(!error.message.includes(disk), error.message);
      const created = await json("POST", "/v1/datasets", { name: "more" });
      assert.equal(created.status, 507);
      const submitted = await runJob();
      assert.deepEqual([submitted.status, submitted.body.error.code], [507, "insufficient_storage"]);
      assert.deepEqual(listTree(dataDir), before, "nothing was added, nothing half-written");
      assert.equal(runtime.queue.list().length, 1, "the refused job was not queued");

      // Room for the job's records but not for its model's weights: the job fails, its staging goes.
      await Deno.remove(filler);
      await fillDisk(disk, Math.floor(weights / 2));
      const starved = await runJob();
      assert.equal(starved.body.status, "failed");
      assert.equal(starved.body.error!.code, "insufficient_storage");
      assert.ok(!JSON.stringify(starved.body.error).includes(disk));
      assert.equal(starved.body.modelId, undefined);
      assert.deepEqual(
        [...Deno.readDirSync(join(dataDir, "models"))].filter((e) => e.isDirectory).map((e) => e.name),
        [first.body.modelId],
      );

      // Space again: everything works, and the data is whole.
      await Deno.remove(join(disk, "filler"));
      assert.equal((await upload()).status, 201);
      assert.equal((await (await app.request(`/v1/datasets/${ds}`)).json()).sampleCount, 16);
      assert.equal((await runJob()).body.status, "succeeded");
    } finally {
      await api.close();
      await unmount(disk);
    }
  },
});
