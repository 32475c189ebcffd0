import assert from "node:assert/strict";
import { createTar, parseTar } from "nanotar";
import {
  MANIFEST_JSON,
  MODEL_ARCHIVE_FORMAT,
  packModelArchive,
  sha256Hex,
  unpackModelArchive,
} from "../src/store/model_archive.ts";
import { rejects } from "./_setup.ts";

const RUNTIME = { name: "@daft/edge", version: "0.1.0", deno: "2.9.6", tfjs: "4.22.0" };
const ID = "mdl_0000000000000001";
const LIMIT = { maxUnpackedBytes: 1 << 20 };
const text = (s: string) => new TextEncoder().encode(s);

function modelFiles() {
  return new Map([
    ["model.json", text('{"modelTopology":{}}')],
    ["weights.bin", new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])],
    ["metadata.json", text('{"format":"daft-edge-model/1"}')],
  ]);
}

async function gunzip(bytes: Uint8Array) {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The archive's members, to alter and pack again as a plain tar. */
async function membersOf(archive: Uint8Array) {
  return parseTar(await gunzip(archive)).map((m) => ({ name: m.name, data: m.data! }));
}

Deno.test("an archive unpacks to the files packed, with a manifest of their hashes and the runtime", async () => {
  const files = modelFiles();
  const { manifest, files: back } = await unpackModelArchive(
    await packModelArchive(ID, files, RUNTIME),
    LIMIT,
  );
  assert.equal(manifest.format, MODEL_ARCHIVE_FORMAT);
  assert.equal(manifest.modelId, ID);
  assert.deepEqual(manifest.runtime, RUNTIME);
  assert.deepEqual([...back.keys()], [...files.keys()]);
  for (const [name, data] of files) assert.deepEqual(back.get(name), data);
  const weights = manifest.files.find((f) => f.name === "weights.bin")!;
  assert.equal(weights.bytes, 8);
  assert.equal(weights.sha256, await sha256Hex(files.get("weights.bin")!));
});

Deno.test("the archive is a gzipped tar whose first member is the manifest", async () => {
  const members = await membersOf(await packModelArchive(ID, modelFiles(), RUNTIME));
  assert.deepEqual(members.map((m) => m.name), [MANIFEST_JSON, "model.json", "weights.bin", "metadata.json"]);
});

Deno.test("an uncompressed tar with the same members is read too", async () => {
  const members = await membersOf(await packModelArchive(ID, modelFiles(), RUNTIME));
  const { files } = await unpackModelArchive(createTar(members), LIMIT);
  assert.equal(files.size, 3);
});

Deno.test("a file whose bytes differ from its manifest entry is refused as a hash mismatch", async () => {
  const members = await membersOf(await packModelArchive(ID, modelFiles(), RUNTIME));
  const weights = members.find((m) => m.name === "weights.bin")!;
  weights.data = weights.data.slice();
  weights.data[3] ^= 0xff;
  const err = await rejects(
    unpackModelArchive(createTar(members), LIMIT),
    "archive_hash_mismatch",
    "invalid",
  );
  assert.equal(err.details.name, "weights.bin");
});

Deno.test("a member the manifest does not list is refused", async () => {
  const members = await membersOf(await packModelArchive(ID, modelFiles(), RUNTIME));
  members.push({ name: "extra.js", data: text("alert(1)") });
  await rejects(unpackModelArchive(createTar(members), LIMIT), "archive_unexpected_file", "invalid");
});

Deno.test("a file the manifest lists but the archive lacks is refused", async () => {
  const members = (await membersOf(await packModelArchive(ID, modelFiles(), RUNTIME)))
    .filter((m) => m.name !== "metadata.json");
  await rejects(unpackModelArchive(createTar(members), LIMIT), "archive_file_missing", "invalid");
});

Deno.test("a member with a path in its name is refused before anything is read", async () => {
  const members = await membersOf(await packModelArchive(ID, modelFiles(), RUNTIME));
  members.push({ name: "../../etc/passwd", data: text("x") });
  await rejects(unpackModelArchive(createTar(members), LIMIT), "invalid_archive", "invalid");
});

Deno.test("an archive without a manifest, or with another format's, is refused", async () => {
  const members = await membersOf(await packModelArchive(ID, modelFiles(), RUNTIME));
  const withoutManifest = members.filter((m) => m.name !== MANIFEST_JSON);
  await rejects(unpackModelArchive(createTar(withoutManifest), LIMIT), "invalid_archive");
  const manifest = JSON.parse(new TextDecoder().decode(members[0].data));
  members[0].data = text(JSON.stringify({ ...manifest, format: "daft-edge-model-archive/9" }));
  await rejects(unpackModelArchive(createTar(members), LIMIT), "unsupported_archive_format");
});

Deno.test("bytes that are neither gzip nor tar are refused as an invalid archive", async () => {
  await rejects(unpackModelArchive(text("just some text, not a tar"), LIMIT), "invalid_archive", "invalid");
  await rejects(unpackModelArchive(new Uint8Array([0x1f, 0x8b, 1, 2, 3]), LIMIT), "invalid_archive");
  const letters = await rejects(unpackModelArchive(new Uint8Array(4096).fill(65), LIMIT), "invalid_archive");
  assert.match(letters.message, /neither a gzipped tar nor a tar/);
});

Deno.test("a gzip that inflates past the limit is refused without inflating it all", async () => {
  const zeros = new Uint8Array(8 << 20);
  const bomb = new Uint8Array(
    await new Response(new Blob([zeros]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
  );
  assert.ok(bomb.byteLength < 64 << 10);
  await rejects(unpackModelArchive(bomb, LIMIT), "archive_too_large", "too_large");
});
