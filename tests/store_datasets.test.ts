import assert from "node:assert/strict";
import { encodePng } from "../src/data/image.ts";
import { RuntimeError } from "../src/errors.ts";
import { writeFileAtomic } from "../src/store/atomic_write.ts";
import { DatasetStore } from "../src/store/dataset_store.ts";
import { KeyedLock } from "../src/keyed_lock.ts";
import { isResourceId, newResourceId } from "../src/store/resource_id.ts";
import { validateSamples } from "../src/store/validate_samples.ts";
import { FIXTURES } from "./_setup.ts";

const LIMITS = {
  maxSamplesPerRequest: 4,
  maxImageBytes: 10_000,
  maxImagePixels: 64 * 64,
  maxImageSide: 512,
  maxRequestPixels: 1e6,
};
const png = (value: number, size = 2) =>
  encodePng({ width: size, height: size, data: new Uint8Array(size * size * 3).fill(value) });
const digit = (d: number) =>
  Deno.readFile(`${FIXTURES}digits/${d}/${[...Deno.readDirSync(`${FIXTURES}digits/${d}`)][0].name}`);

async function rejects(promise: Promise<unknown> | (() => unknown), kind: string, code: string) {
  await assert.rejects(async () => await (typeof promise === "function" ? promise() : promise), (err) => {
    assert.ok(err instanceof RuntimeError, `expected a RuntimeError, got ${err}`);
    assert.equal(err.kind, kind);
    assert.equal(err.code, code);
    return true;
  });
}

Deno.test("an atomic write leaves the new content and no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  await writeFileAtomic(`${dir}/a.json`, "old");
  await writeFileAtomic(`${dir}/a.json`, "new");
  assert.equal(await Deno.readTextFile(`${dir}/a.json`), "new");
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.json"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a keyed lock runs sections of one key in call order", async () => {
  const lock = new KeyedLock();
  const order: string[] = [];
  const slow = (label: string, ms: number) => () =>
    new Promise<void>((resolve) => setTimeout(() => (order.push(label), resolve()), ms));
  await Promise.all([
    lock.run("k", slow("a", 20)),
    lock.run("k", slow("b", 1)),
    lock.run("other", slow("c", 5)),
  ]);
  assert.deepEqual(order, ["c", "a", "b"]);
});

Deno.test("resource ids carry their kind and refuse path tricks", () => {
  const id = newResourceId("model");
  assert.ok(isResourceId("model", id));
  assert.ok(!isResourceId("dataset", id));
  assert.ok(!isResourceId("model", "mdl_../../etc/pass"));
});

Deno.test("validateSamples names the first bad sample", async () => {
  const good = { label: "a", bytes: png(1) };
  await rejects(() => validateSamples([], LIMITS), "invalid", "no_samples");
  await rejects(
    () => validateSamples([good, good, good, good, good], LIMITS),
    "too_large",
    "too_many_samples",
  );
  await rejects(() => validateSamples([good, { bytes: png(2) }], LIMITS), "invalid", "missing_label");
  await rejects(
    () => validateSamples([good, { label: " ", bytes: png(2) }], LIMITS),
    "invalid",
    "invalid_label",
  );
  await rejects(() => validateSamples([good, { label: "b" }], LIMITS), "invalid", "missing_image");
  await rejects(
    () => validateSamples([good, { label: "b", bytes: png(2, 65) }], LIMITS),
    "too_large",
    "image_too_large",
  );
  await rejects(
    () => validateSamples([good, { label: "b", bytes: new TextEncoder().encode("BM......") }], LIMITS),
    "unsupported",
    "unsupported_image_type",
  );
  try {
    await validateSamples([good, good, { label: "c", bytes: png(1).slice(0, 30) }], LIMITS);
    assert.fail("a truncated PNG was accepted");
  } catch (err) {
    assert.ok(err instanceof RuntimeError);
    assert.equal(err.code, "invalid_image");
    assert.equal(err.details.index, 2);
    assert.match(err.message, /^samples\[2\]:/);
  }
});

Deno.test("a dataset keeps its samples and counts them per label", async () => {
  const root = await Deno.makeTempDir();
  const store = await DatasetStore.open(root);
  const ds = await store.create("digits");
  const samples = await validateSamples([
    { label: "3", bytes: await digit(3) },
    { label: "3", bytes: await digit(3) },
    { label: "10", bytes: await Deno.readFile(`${FIXTURES}photos/coffee.jpg`) },
  ], { ...LIMITS, maxImageBytes: 1e6, maxImagePixels: 1e6 });
  const after = await store.add(ds.id, samples);
  assert.deepEqual(after.counts, { "10": 1, "3": 2 });
  assert.equal(after.sampleCount, 3);
  const contents = await store.read(ds.id);
  assert.deepEqual(contents.samples.map((s) => s.label), ["3", "3", "10"]);
  assert.deepEqual(contents.samples[2].bytes, samples[2].bytes);
  assert.deepEqual((await store.list()).map((d) => d.id), [ds.id]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("an upload that would overfill a dataset stores nothing", async () => {
  const root = await Deno.makeTempDir();
  const store = await DatasetStore.open(root, { maxSamplesPerDataset: 3 });
  const ds = await store.create("small");
  const two = await validateSamples([{ label: "a", bytes: png(1) }, { label: "b", bytes: png(2) }], LIMITS);
  await store.add(ds.id, two);
  await rejects(store.add(ds.id, two), "too_large", "too_many_samples");
  assert.equal((await store.get(ds.id)).sampleCount, 2);
  assert.equal([...Deno.readDirSync(`${root}/${ds.id}/samples`)].length, 2);
  await Deno.remove(root, { recursive: true });
});

Deno.test("a deleted dataset is gone, and unknown or malformed ids are not found", async () => {
  const root = await Deno.makeTempDir();
  const store = await DatasetStore.open(root);
  const ds = await store.create("gone");
  await store.delete(ds.id);
  await rejects(store.get(ds.id), "not_found", "dataset_not_found");
  await rejects(store.delete(ds.id), "not_found", "dataset_not_found");
  await rejects(store.get("../../etc"), "not_found", "dataset_not_found");
  assert.deepEqual([...Deno.readDirSync(root)], []);
  await Deno.remove(root, { recursive: true });
});

Deno.test("removing a sample or a class removes its files from disk, and the other files stay", async () => {
  const dir = await Deno.makeTempDir();
  const store = await DatasetStore.open(dir);
  const ds = await store.create("d");
  await store.add(
    ds.id,
    await validateSamples([1, 2, 3].map((v, i) => ({ label: i < 2 ? "a" : "b", bytes: png(v) })), LIMITS),
  );
  const files = () => [...Deno.readDirSync(`${dir}/${ds.id}/samples`)].map((e) => e.name).sort();
  await store.deleteSample(ds.id, "000001");
  assert.deepEqual(files(), ["000002.png", "000003.png"]);
  await store.deleteLabel(ds.id, "b");
  assert.deepEqual(files(), ["000002.png"]);
  assert.deepEqual(await store.samples(ds.id), [{ id: "000002", label: "a" }]);
  await rejects(store.deleteLabel(ds.id, "b"), "not_found", "label_not_found");
  await Deno.remove(dir, { recursive: true });
});
