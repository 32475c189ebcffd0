import { createTar, parseTar } from "nanotar";
import { RuntimeError } from "../errors.ts";

/** The `format` of a model archive's manifest; an importer refuses any other. */
export const MODEL_ARCHIVE_FORMAT = "daft-edge-model-archive/1";

/** The manifest's name inside the archive. */
export const MANIFEST_JSON = "manifest.json";

/** The runtime that wrote an archive: the app's name and version, and the Deno and tfjs under it. */
export interface RuntimeVersion {
  name: string;
  version: string;
  deno: string;
  tfjs: string;
}

/** One file of an archive, as its manifest lists it. */
export interface ArchiveFileEntry {
  name: string;
  bytes: number;
  /** Lowercase hex SHA-256 of the file's bytes. */
  sha256: string;
}

/** `manifest.json`: what the archive holds, who wrote it, and each file's hash. */
export interface ModelArchiveManifest {
  format: typeof MODEL_ARCHIVE_FORMAT;
  modelId: string;
  exportedAt: string;
  runtime: RuntimeVersion;
  files: ArchiveFileEntry[];
}

/** An unpacked, verified archive: its manifest and every file it lists, by name. */
export interface ModelArchive {
  manifest: ModelArchiveManifest;
  files: Map<string, Uint8Array>;
}

/** Options of {@linkcode unpackModelArchive}. */
export interface UnpackOptions {
  /** Most bytes the archive may hold once decompressed (a guard against a gzip bomb). */
  maxUnpackedBytes: number;
}

// Archive members are plain file names: no directories, no dot files, nothing a path could be made of.
const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * The lowercase hex SHA-256 of `bytes`.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./model_archive.ts";
 * console.assert((await sha256Hex(new Uint8Array())).startsWith("e3b0c442"));
 * ```
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Packs a model's files into one gzipped tar: `manifest.json` first, listing every file with its size and
 * SHA-256 and the runtime that wrote it, then the files in the order given. Any tar tool reads it
 * (`tar -xzf`); {@linkcode unpackModelArchive} reads it back and checks it.
 *
 * @example
 * ```ts
 * import { packModelArchive, unpackModelArchive } from "./model_archive.ts";
 * const files = new Map([["model.json", new TextEncoder().encode("{}")]]);
 * const runtime = { name: "@daft/edge", version: "0.1.0", deno: Deno.version.deno, tfjs: "4.22.0" };
 * const archive = await packModelArchive("mdl_0000000000000000", files, runtime);
 * const back = await unpackModelArchive(archive, { maxUnpackedBytes: 1 << 20 });
 * console.assert(back.manifest.files[0].name === "model.json");
 * ```
 */
export async function packModelArchive(
  modelId: string,
  files: Map<string, Uint8Array>,
  runtime: RuntimeVersion,
): Promise<Uint8Array> {
  const entries: ArchiveFileEntry[] = [];
  for (const [name, data] of files) {
    if (!SAFE_NAME.test(name) || name === MANIFEST_JSON) {
      throw new Error(`cannot archive a file named '${name}'`);
    }
    entries.push({ name, bytes: data.byteLength, sha256: await sha256Hex(data) });
  }
  const manifest: ModelArchiveManifest = {
    format: MODEL_ARCHIVE_FORMAT,
    modelId,
    exportedAt: new Date().toISOString(),
    runtime,
    files: entries,
  };
  const mtime = Date.parse(manifest.exportedAt);
  const tar = createTar(
    [
      { name: MANIFEST_JSON, data: JSON.stringify(manifest, null, 2) },
      ...[...files].map(([name, data]) => ({ name, data })),
    ],
    { attrs: { mode: "644", uid: 0, gid: 0, mtime } },
  );
  return new Uint8Array(
    await new Response(
      new Blob([tar as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
}

/**
 * Reads an archive written by {@linkcode packModelArchive} (gzipped, or a plain tar) and verifies it: the
 * manifest is there and of a known format, every file it lists is present with its size and SHA-256, and
 * nothing else is. Only then are the files returned.
 *
 * @throws {RuntimeError} `invalid`/`invalid_archive` (not a tar, no or bad manifest, an unsafe or repeated
 * name, a member that is not a file), `invalid`/`unsupported_archive_format`, `invalid`/`archive_file_missing`,
 * `invalid`/`archive_unexpected_file`, `invalid`/`archive_hash_mismatch`, `too_large`/`archive_too_large`.
 *
 * @example
 * ```ts
 * import { unpackModelArchive } from "./model_archive.ts";
 * try {
 *   await unpackModelArchive(new TextEncoder().encode("not a tar"), { maxUnpackedBytes: 1024 });
 * } catch (err) {
 *   console.assert((err as { code: string }).code === "invalid_archive");
 * }
 * ```
 */
export async function unpackModelArchive(bytes: Uint8Array, options: UnpackOptions): Promise<ModelArchive> {
  const tar = isGzip(bytes) ? await gunzip(bytes, options.maxUnpackedBytes) : bytes;
  if (tar.byteLength > options.maxUnpackedBytes) throw tooLarge(options.maxUnpackedBytes);
  if (!hasUstarMagic(tar)) throw invalid("the body is neither a gzipped tar nor a tar (no ustar header)");
  let members;
  try {
    members = parseTar(tar);
  } catch (err) {
    throw invalid(`the archive is not a readable tar: ${(err as Error).message}`);
  }
  const found = new Map<string, Uint8Array>();
  for (const member of members) {
    // Names come from the caller: quoted and cut short before they go into a message.
    const name = JSON.stringify(member.name.slice(0, 80));
    if (member.type !== undefined && member.type !== "file") {
      throw invalid(`the archive holds ${name}, which is not a plain file`, {
        name: member.name.slice(0, 80),
      });
    }
    if (!SAFE_NAME.test(member.name)) {
      throw invalid(`the archive holds a member named ${name}; only plain file names are allowed`, {
        name: member.name.slice(0, 80),
      });
    }
    if (found.has(member.name)) {
      throw invalid(`the archive holds '${member.name}' twice`, { name: member.name });
    }
    found.set(member.name, member.data ?? new Uint8Array());
  }
  if (found.size === 0) throw invalid("the archive is empty or not a tar");
  const manifest = parseManifest(found.get(MANIFEST_JSON));
  found.delete(MANIFEST_JSON);

  const listed = new Set(manifest.files.map((f) => f.name));
  for (const name of found.keys()) {
    if (!listed.has(name)) {
      throw new RuntimeError(
        "invalid",
        "archive_unexpected_file",
        `the archive holds '${name}', which its manifest does not list`,
        { name },
      );
    }
  }
  const files = new Map<string, Uint8Array>();
  for (const entry of manifest.files) {
    const data = found.get(entry.name);
    if (!data) {
      throw new RuntimeError(
        "invalid",
        "archive_file_missing",
        `the manifest lists '${entry.name}', which the archive does not hold`,
        { name: entry.name },
      );
    }
    const sha256 = await sha256Hex(data);
    if (data.byteLength !== entry.bytes || sha256 !== entry.sha256) {
      throw new RuntimeError(
        "invalid",
        "archive_hash_mismatch",
        `'${entry.name}' does not match its manifest entry (the archive is corrupt or was altered)`,
        {
          name: entry.name,
          expected: { bytes: entry.bytes, sha256: entry.sha256 },
          got: { bytes: data.byteLength, sha256 },
        },
      );
    }
    files.set(entry.name, data);
  }
  return { manifest, files };
}

function parseManifest(bytes: Uint8Array | undefined): ModelArchiveManifest {
  if (!bytes) throw invalid(`the archive has no ${MANIFEST_JSON}`);
  let value: any;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw invalid(`${MANIFEST_JSON} is not JSON: ${(err as Error).message}`);
  }
  if (value?.format !== MODEL_ARCHIVE_FORMAT) {
    throw new RuntimeError(
      "invalid",
      "unsupported_archive_format",
      `the archive's format is '${String(value?.format)}'; this server reads ${MODEL_ARCHIVE_FORMAT}`,
      { format: value?.format ?? null, supported: [MODEL_ARCHIVE_FORMAT] },
    );
  }
  const fileOk = (f: any) =>
    typeof f?.name === "string" && SAFE_NAME.test(f.name) && f.name !== MANIFEST_JSON &&
    Number.isInteger(f.bytes) && f.bytes >= 0 && typeof f.sha256 === "string" && SHA256_HEX.test(f.sha256);
  const runtimeOk = (r: any) => ["name", "version", "deno", "tfjs"].every((k) => typeof r?.[k] === "string");
  if (
    typeof value.modelId !== "string" || typeof value.exportedAt !== "string" || !runtimeOk(value.runtime) ||
    !Array.isArray(value.files) || !value.files.every(fileOk) ||
    new Set(value.files.map((f: ArchiveFileEntry) => f.name)).size !== value.files.length
  ) {
    throw invalid(
      `${MANIFEST_JSON} lacks modelId, exportedAt, runtime {name, version, deno, tfjs} or files ` +
        "[{name, bytes, sha256}] (each name once)",
    );
  }
  return value as ModelArchiveManifest;
}

// POSIX ustar and GNU tar both write "ustar" at offset 257 of each header.
function hasUstarMagic(tar: Uint8Array): boolean {
  return tar.byteLength >= 512 && new TextDecoder().decode(tar.subarray(257, 262)) === "ustar";
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1];
}

async function gunzip(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
      new DecompressionStream("gzip"),
    );
    for await (const chunk of stream) {
      total += chunk.byteLength;
      // Leaving the loop by a throw cancels the stream.
      if (total > maxBytes) throw tooLarge(maxBytes);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof RuntimeError) throw err;
    throw invalid(`the archive is not valid gzip: ${(err as Error).message}`);
  }
  return new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer());
}

function invalid(message: string, details: Record<string, unknown> = {}) {
  return new RuntimeError("invalid", "invalid_archive", message, details);
}

function tooLarge(maxBytes: number) {
  return new RuntimeError(
    "too_large",
    "archive_too_large",
    `the archive unpacks to more than ${maxBytes} bytes`,
    { maxUnpackedBytes: maxBytes },
  );
}
