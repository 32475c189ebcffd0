import * as tf from "@tensorflow/tfjs";
import denoJson from "../../deno.json" with { type: "json" };
import { AdaptedModel, METADATA_JSON, type ModelMetadata } from "../adapt/adapted_model.ts";
import { RuntimeError } from "../errors.ts";
import { MODEL_JSON } from "../model/artifacts_io.ts";
import {
  type ModelArchiveManifest,
  packModelArchive,
  type RuntimeVersion,
  unpackModelArchive,
} from "../store/model_archive.ts";
import type { ModelOrigin, ModelStore, ModelSummary } from "../store/model_store.ts";
import { isResourceId } from "../store/resource_id.ts";
import { assertBackboneCompatible } from "./check_backbone.ts";

/** Options of {@linkcode ModelTransfer}. */
export interface ModelTransferOptions {
  /** Hosts (`host` or `host:port`, lowercase) a model may be pulled from. */
  peers: string[];
  /** Largest archive taken, packed and unpacked, in bytes. */
  maxArchiveBytes: number;
  /** Whether the tfjs backend is up: an import loads the model once to prove it runs. */
  isReady: () => boolean;
  /** How long a peer may take to send its archive, in ms. Default 60 s. */
  peerTimeoutMs?: number;
}

/** What an import returns: the stored model, and where and by which runtime it was made. */
export interface ImportResult {
  model: ModelSummary;
  manifest: Pick<ModelArchiveManifest, "modelId" | "exportedAt" | "runtime">;
}

const ORIGIN_JSON = "origin.json";

/**
 * This runtime's version, as an archive's manifest records it.
 *
 * @example
 * ```ts
 * import { runtimeVersion } from "./model_transfer.ts";
 * console.assert(runtimeVersion().deno === Deno.version.deno);
 * ```
 */
export function runtimeVersion(): RuntimeVersion {
  return { name: denoJson.name, version: denoJson.version, deno: Deno.version.deno, tfjs: tf.version_core };
}

/**
 * Moves adapted models between servers: {@linkcode ModelTransfer.exportArchive} packs a stored model into one
 * archive ({@linkcode packModelArchive}); {@linkcode ModelTransfer.importArchive} takes one in, verifying
 * every hash, the model's format and its backbone against this server's, and that the model loads and runs,
 * before it is published under its original id; {@linkcode ModelTransfer.importFromPeer} fetches the archive
 * from another server first, only from hosts named in `peers`.
 *
 * @example
 * ```ts
 * import { ModelTransfer } from "./model_transfer.ts";
 * import { ModelStore } from "../store/model_store.ts";
 * const transfer = new ModelTransfer(await ModelStore.open(await Deno.makeTempDir()), {
 *   peers: ["box-2.local:8787"], maxArchiveBytes: 1 << 20, isReady: () => true });
 * try {
 *   await transfer.importFromPeer("http://elsewhere.example/v1/models/mdl_0000000000000000/export");
 * } catch (err) {
 *   console.assert((err as { code: string }).code === "peer_not_allowed");
 * }
 * ```
 */
export class ModelTransfer {
  constructor(readonly models: ModelStore, readonly options: ModelTransferOptions) {}

  /** One model as a gzipped tar archive. @throws {RuntimeError} `not_found`/`model_not_found`. */
  async exportArchive(id: string): Promise<Uint8Array> {
    return await packModelArchive(id, await this.models.readModelFiles(id), runtimeVersion());
  }

  /**
   * Verifies an archive and stores its model under the id it had where it was made (not activated).
   * `from` is recorded in the model's origin: `upload`, or the peer URL it came from.
   *
   * @throws {RuntimeError} the archive's codes ({@linkcode unpackModelArchive}); `invalid`/`invalid_archive`
   * when the model files are not all there or the ids disagree; `invalid`/`incompatible_model_format`,
   * `invalid`/`incompatible_backbone`; `invalid`/`invalid_model` when it does not load; `conflict`/
   * `model_exists`; `unavailable`/`not_ready` before the backend is up.
   */
  async importArchive(bytes: Uint8Array, from = "upload"): Promise<ImportResult> {
    this.#assertReady();
    const { manifest, files } = await unpackModelArchive(bytes, {
      maxUnpackedBytes: this.options.maxArchiveBytes,
    });
    const id = manifest.modelId;
    const origin = parseJson<ModelOrigin>(files, ORIGIN_JSON);
    const metadata = parseJson<ModelMetadata>(files, METADATA_JSON);
    if (!isResourceId("model", id) || origin?.id !== id) {
      throw new RuntimeError(
        "invalid",
        "invalid_archive",
        `the archive's model id '${id}' is not a model id, or ${ORIGIN_JSON} names another`,
        { modelId: id },
      );
    }
    assertWeightsInArchive(files);
    await assertBackboneCompatible(metadata);
    const staged = await this.models.stage(id, files);
    try {
      await assertLoads(staged);
      const imported = {
        at: new Date().toISOString(),
        from,
        runtime: `${manifest.runtime.name}@${manifest.runtime.version} (deno ${manifest.runtime.deno}, ` +
          `tfjs ${manifest.runtime.tfjs})`,
      };
      const { imported: _, ...source } = origin;
      const model = await this.models.commit({ ...source, imported });
      const { modelId, exportedAt, runtime } = manifest;
      return { model, manifest: { modelId, exportedAt, runtime } };
    } catch (err) {
      await this.models.discard(id);
      throw err;
    }
  }

  /**
   * Fetches an archive from another server (its `GET /v1/models/{id}/export` URL), sending `token` as its
   * bearer token, and imports it. Only `http`/`https` URLs on a host in `peers` are fetched, redirects are
   * not followed, and the body may not exceed `maxArchiveBytes`.
   *
   * @throws {RuntimeError} `invalid`/`invalid_peer_url`; `forbidden`/`peer_not_allowed`;
   * `upstream`/`peer_unreachable` (no connection, timeout, or this process may not connect there);
   * `upstream`/`peer_error` (the peer answered with an error; its status and code are in the details);
   * `too_large`/`archive_too_large`; and what {@linkcode ModelTransfer.importArchive} throws.
   */
  async importFromPeer(url: string, token?: string): Promise<ImportResult> {
    const target = this.#peerUrl(url);
    const timeoutMs = this.options.peerTimeoutMs ?? 60_000;
    let res: Response;
    try {
      res = await fetch(target, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const reason = err instanceof Deno.errors.NotCapable
        ? "this process is not allowed to connect there (the release launcher grants the hosts in PEERS)"
        : (err as Error).name === "TimeoutError"
        ? `no answer within ${timeoutMs} ms`
        : (err as Error).message;
      throw new RuntimeError("upstream", "peer_unreachable", `cannot reach peer ${target.host}: ${reason}`, {
        peer: target.host,
      });
    }
    if (res.status !== 200) {
      const body = await res.json().catch(() => undefined);
      const code = typeof body?.error?.code === "string" ? body.error.code : undefined;
      throw new RuntimeError(
        "upstream",
        "peer_error",
        `peer ${target.host} answered ${res.status}${code ? ` (${code})` : ""} for ${target.pathname}`,
        { peer: target.host, status: res.status, ...(code ? { peerCode: code } : {}) },
      );
    }
    const bytes = await readCapped(res, this.options.maxArchiveBytes, timeoutMs);
    return await this.importArchive(bytes, target.href);
  }

  #peerUrl(url: string): URL {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      throw new RuntimeError("invalid", "invalid_peer_url", `'${url}' is not a URL`, { url });
    }
    if (!["http:", "https:"].includes(target.protocol) || target.username || target.password) {
      throw new RuntimeError(
        "invalid",
        "invalid_peer_url",
        "a peer URL is http or https, without credentials (send the peer's token as `token`)",
        { url: `${target.protocol}//${target.host}${target.pathname}` },
      );
    }
    const port = target.port || (target.protocol === "https:" ? "443" : "80");
    const host = target.hostname.toLowerCase();
    const allowed = this.options.peers.some((peer) => peer === host || peer === `${host}:${port}`);
    if (!allowed) {
      throw new RuntimeError(
        "forbidden",
        "peer_not_allowed",
        `${host}:${port} is not one of this server's peers (--peers / PEERS)`,
        { peer: `${host}:${port}`, peers: this.options.peers },
      );
    }
    return target;
  }

  #assertReady() {
    if (!this.options.isReady()) {
      throw new RuntimeError("unavailable", "not_ready", "the compute backend is still starting");
    }
  }
}

function parseJson<T>(files: Map<string, Uint8Array>, name: string): T {
  const bytes = files.get(name);
  try {
    if (bytes) return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch { /* reported below */ }
  throw new RuntimeError("invalid", "invalid_archive", `the archive has no readable ${name}`, { name });
}

// model.json names its weight files, and loading reads them relative to its directory: each must be a plain
// name of a file in the archive, never a path out of it.
function assertWeightsInArchive(files: Map<string, Uint8Array>): void {
  const json = parseJson<{ weightsManifest?: { paths?: unknown[] }[] }>(files, MODEL_JSON);
  const paths = (Array.isArray(json?.weightsManifest) ? json.weightsManifest : [])
    .flatMap((group) => Array.isArray(group?.paths) ? group.paths : [undefined]);
  for (const path of paths) {
    const name = typeof path === "string" ? path.replace(/^\.\//, "") : "";
    if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name) || !files.has(name)) {
      throw new RuntimeError(
        "invalid",
        "invalid_archive",
        `${MODEL_JSON} names a weight file ${
          JSON.stringify(String(path).slice(0, 80))
        } that is not in the archive`,
        { path: String(path).slice(0, 80) },
      );
    }
  }
}

// Loads the staged model and runs it once on a blank image: files that hash right can still be no model.
async function assertLoads(dir: string): Promise<void> {
  let model: AdaptedModel;
  try {
    model = await AdaptedModel.load(dir);
  } catch (err) {
    throw new RuntimeError("invalid", "invalid_model", "the archive's model does not load", {
      cause: (err as Error).message.replaceAll(dir, "<archive>"),
    });
  }
  try {
    await model.warmUp();
  } catch (err) {
    throw new RuntimeError("invalid", "invalid_model", "the archive's model does not run", {
      cause: (err as Error).message.replaceAll(dir, "<archive>"),
    });
  } finally {
    model.dispose();
  }
}

async function readCapped(res: Response, maxBytes: number, timeoutMs: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length"));
  const tooLarge = () =>
    new RuntimeError("too_large", "archive_too_large", `the peer's archive is over ${maxBytes} bytes`, {
      maxArchiveBytes: maxBytes,
    });
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body!) {
      total += chunk.byteLength;
      if (total > maxBytes) throw tooLarge();
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof RuntimeError) throw err;
    throw new RuntimeError("upstream", "peer_unreachable", `the peer's archive did not arrive whole`, {
      cause: (err as Error).name === "TimeoutError"
        ? `no answer within ${timeoutMs} ms`
        : (err as Error).message,
    });
  }
  return new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer());
}
