import { join } from "node:path";
import { z } from "zod";
import { METADATA_JSON, type ModelMetadata } from "../adapt/adapted_model.ts";
import { RuntimeError } from "../errors.ts";
import { MODEL_JSON } from "../model/artifacts_io.ts";
import { readJsonIfExists, TEMP_PREFIX, writeFileAtomic, writeJsonAtomic } from "./atomic_write.ts";
import { assertResourceId, isResourceId } from "./resource_id.ts";
import {
  type CorruptItem,
  corruptItemError,
  dataDirOf,
  quarantineRecord,
  readRecord,
  type RecordRead,
} from "./stored_record.ts";

/** `origin.json`: where a stored model came from. */
export interface ModelOrigin {
  id: string;
  createdAt: string;
  jobId: string;
  dataset: { id: string; name: string };
  /** Set on a model that came in through `POST /v1/models/import`: when, from where, and which runtime wrote it. */
  imported?: { at: string; from: string; runtime: string };
}

/** What the API lists of a model. */
export interface ModelSummary extends ModelOrigin {
  backbone: string;
  method: string;
  classNames: string[];
  input: ModelMetadata["input"];
  valAccuracy: number;
}

/** A model in full: its summary and its metadata (hyperparameters, metrics, BN conversion report). */
export interface ModelDetail extends ModelSummary {
  metadata: ModelMetadata;
  /** The tfjs artifact files, `model.json` first. */
  files: string[];
}

/** `active.json`: which model serves `active`. */
export interface ActiveModelRecord {
  modelId: string;
  activatedAt: string;
}

const ORIGIN = "origin.json";
const ACTIVE = "active.json";
const STAGING = ".staging-";

// What the store reads of metadata.json (the summary's fields); the rest is the model loader's business.
const MetadataSchema = z.looseObject({
  method: z.string(),
  classNames: z.array(z.string()).min(1),
  input: z.looseObject({}),
  backbone: z.looseObject({ name: z.string() }),
  metrics: z.looseObject({ valAccuracy: z.number() }),
}) as unknown as z.ZodType<ModelMetadata>;

const OriginSchema: z.ZodType<ModelOrigin> = z.looseObject({
  id: z.string(),
  createdAt: z.string(),
  jobId: z.string(),
  dataset: z.looseObject({ id: z.string(), name: z.string() }),
});

/**
 * Adapted models on disk, one directory each, holding what `AdaptedModel.save` writes (`model.json`,
 * `weights.bin`, `metadata.json`) plus `origin.json`. A model is written into a staging directory and
 * appears under its id in one rename ({@linkcode ModelStore.commit}), so a listed model is always complete.
 * `active.json` names the active model and is replaced atomically.
 *
 * @example
 * ```ts
 * import { ModelStore } from "./model_store.ts";
 * const store = await ModelStore.open(await Deno.makeTempDir());
 * console.assert((await store.list()).length === 0 && (await store.readActive()) === undefined);
 * ```
 */
export class ModelStore {
  private constructor(readonly root: string) {}

  /**
   * Opens (creating if needed) the models directory and clears what a crash can leave: staging of an
   * interrupted job, an interrupted delete, temporary files. A model whose `metadata.json` or `origin.json`
   * is corrupt has it moved aside (see {@linkcode ModelStore.corrupt}).
   */
  static async open(root: string): Promise<ModelStore> {
    await Deno.mkdir(root, { recursive: true });
    let removed = 0;
    for await (const entry of Deno.readDir(root)) {
      if (entry.name.startsWith(".")) {
        await Deno.remove(join(root, entry.name), { recursive: true });
        removed++;
      }
    }
    const store = new ModelStore(root);
    for (const id of await store.#ids()) {
      for await (const entry of Deno.readDir(join(root, id))) {
        if (entry.name.startsWith(TEMP_PREFIX)) {
          await Deno.remove(join(root, id, entry.name));
          removed++;
        }
      }
      await store.#readBoth(id);
    }
    if (removed) {
      console.error(`[store] start-up sweep: removed ${removed} staging or temporary item(s) in models/`);
    }
    return store;
  }

  /** The store at `root` as it is, without `open`'s clean-up (for a writer in another thread). */
  static at(root: string): ModelStore {
    return new ModelStore(root);
  }

  /** The directory a job saves a new model into before {@linkcode ModelStore.commit}. */
  stagingDir(id: string): string {
    assertResourceId("model", id);
    return join(this.root, `${STAGING}${id}`);
  }

  /** Publishes a staged model under its id, in one rename. */
  async commit(origin: ModelOrigin): Promise<ModelSummary> {
    const staged = this.stagingDir(origin.id);
    await writeJsonAtomic(join(staged, ORIGIN), origin);
    await Deno.rename(staged, join(this.root, origin.id));
    return summarize(await this.#metadata(origin.id), origin);
  }

  /**
   * The files that make up a model, by name, for an export: the tfjs artifacts, `metadata.json` and
   * `origin.json`. @throws {RuntimeError} `not_found`/`model_not_found`.
   */
  async readModelFiles(id: string): Promise<Map<string, Uint8Array>> {
    await this.#read(id);
    const files = new Map<string, Uint8Array>();
    for (const name of [...await this.artifactFiles(id), METADATA_JSON, ORIGIN]) {
      files.set(name, await Deno.readFile(join(this.root, id, name)));
    }
    return files;
  }

  /**
   * Writes an imported model's files into its staging directory, to be checked and then published with
   * {@linkcode ModelStore.commit} (which writes `origin.json`) or dropped with {@linkcode ModelStore.discard}.
   * @throws {RuntimeError} `conflict`/`model_exists` when a model with this id is stored or being imported.
   */
  async stage(id: string, files: Map<string, Uint8Array>): Promise<string> {
    const staged = this.stagingDir(id);
    const exists = () =>
      new RuntimeError("conflict", "model_exists", `a model with id '${id}' is already on this server`, {
        id,
      });
    const published = () => Deno.stat(join(this.root, id)).then(() => true, () => false);
    if (await published()) throw exists();
    try {
      await Deno.mkdir(staged);
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) throw exists();
      throw err;
    }
    // Another import of this id may have been published between the check and the mkdir.
    if (await published()) {
      await this.discard(id);
      throw exists();
    }
    try {
      for (const [name, data] of files) {
        if (name === ORIGIN) continue;
        await writeFileAtomic(join(staged, name), data);
      }
    } catch (err) {
      await this.discard(id);
      throw err;
    }
    return staged;
  }

  /** Removes a staged model that will not be committed. */
  async discard(id: string): Promise<void> {
    await Deno.remove(this.stagingDir(id), { recursive: true }).catch(() => {});
  }

  /** Every readable model, newest first; corrupt ones are moved aside and left to {@linkcode ModelStore.corrupt}. */
  async list(): Promise<ModelSummary[]> {
    const out: ModelSummary[] = [];
    for (const id of await this.#ids()) {
      const { metadata, origin } = await this.#readBoth(id);
      if (metadata.state === "ok" && origin.state === "ok") out.push(summarize(metadata.value, origin.value));
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  }

  /** The models with a corrupt record (moved aside): each can only be deleted. */
  async corrupt(): Promise<CorruptItem[]> {
    const out: CorruptItem[] = [];
    for (const id of await this.#ids()) {
      const err = corruptOf(id, await this.#readBoth(id));
      if (err) out.push({ id, file: err.details.file as string, code: err.code, message: err.message });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** One model's summary. @throws {RuntimeError} `not_found`/`model_not_found`. */
  async get(id: string): Promise<ModelSummary> {
    const { metadata, origin } = await this.#read(id);
    return summarize(metadata, origin);
  }

  /** One model with its full metadata. @throws {RuntimeError} `not_found`/`model_not_found`. */
  async detail(id: string): Promise<ModelDetail> {
    const { metadata, origin } = await this.#read(id);
    return { ...summarize(metadata, origin), metadata, files: await this.artifactFiles(id) };
  }

  /** The directory `AdaptedModel.load` reads. @throws {RuntimeError} `not_found`/`model_not_found`. */
  async dir(id: string): Promise<string> {
    await this.#read(id);
    return join(this.root, id);
  }

  /** The tfjs artifact files a browser fetches: `model.json` and the weight files it names. */
  async artifactFiles(id: string): Promise<string[]> {
    assertResourceId("model", id);
    const json = await readJsonIfExists<{ weightsManifest?: { paths: string[] }[] }>(
      join(this.root, id, MODEL_JSON),
    );
    if (!json) throw notFound(id);
    const weights = (json.weightsManifest ?? []).flatMap((g) => g.paths.map((p) => p.replace(/^\.\//, "")));
    return [MODEL_JSON, ...weights.filter((p) => /^[A-Za-z0-9._-]+$/.test(p) && !p.startsWith("."))];
  }

  /**
   * The bytes of one tfjs artifact file.
   * @throws {RuntimeError} `not_found`/`artifact_not_found` for a file the model does not list.
   */
  async readArtifact(id: string, file: string): Promise<Uint8Array> {
    const files = await this.artifactFiles(id);
    if (!files.includes(file)) {
      throw new RuntimeError("not_found", "artifact_not_found", `model ${id} has no artifact '${file}'`, {
        id,
        file,
        files,
      });
    }
    return await Deno.readFile(join(this.root, id, file));
  }

  /** Removes a model, a corrupt one too: renamed aside in one step, then deleted. @throws {RuntimeError} `not_found`. */
  async delete(id: string): Promise<void> {
    assertResourceId("model", id);
    if (!(await Deno.stat(join(this.root, id)).then((s) => s.isDirectory, () => false))) throw notFound(id);
    const trash = join(this.root, `.deleted-${id}`);
    await Deno.rename(join(this.root, id), trash);
    await Deno.remove(trash, { recursive: true });
  }

  /** Which model is active, if any. */
  readActive(): Promise<ActiveModelRecord | undefined> {
    return readJsonIfExists<ActiveModelRecord>(join(this.root, ACTIVE));
  }

  /** Records the active model, atomically. */
  async writeActive(modelId: string): Promise<ActiveModelRecord> {
    const record = { modelId, activatedAt: new Date().toISOString() };
    await writeJsonAtomic(join(this.root, ACTIVE), record);
    return record;
  }

  async #metadata(id: string): Promise<ModelMetadata> {
    const metadata = await this.#readFile(id, METADATA_JSON, MetadataSchema);
    if (metadata.state === "ok") return metadata.value;
    throw corruptOf(id, { metadata, origin: { state: "ok", value: undefined } }) ?? notFound(id);
  }

  /** @throws {RuntimeError} `not_found`/`model_not_found`, `corrupt`/`model_corrupt`. */
  async #read(id: string): Promise<{ metadata: ModelMetadata; origin: ModelOrigin }> {
    assertResourceId("model", id);
    const both = await this.#readBoth(id);
    if (both.metadata.state === "ok" && both.origin.state === "ok") {
      return { metadata: both.metadata.value, origin: both.origin.value };
    }
    throw corruptOf(id, both) ?? notFound(id);
  }

  async #readBoth(id: string) {
    return {
      metadata: await this.#readFile(id, METADATA_JSON, MetadataSchema),
      origin: await this.#readFile(id, ORIGIN, OriginSchema),
    };
  }

  // One record of a model, with a corrupt one moved aside (and logged) as it is found.
  async #readFile<T>(id: string, file: string, schema: z.ZodType<T>): Promise<RecordRead<T>> {
    const path = join(this.root, id, file);
    const read = await readRecord(path, schema);
    if (read.state === "corrupt") await quarantineRecord(dataDirOf(this.root), path, read.reason);
    return read;
  }

  async #ids(): Promise<string[]> {
    const ids = [];
    for await (const entry of Deno.readDir(this.root)) {
      if (entry.isDirectory && isResourceId("model", entry.name)) ids.push(entry.name);
    }
    return ids;
  }
}

// The model_corrupt error when either record is corrupt or was moved aside earlier.
function corruptOf(
  id: string,
  records: { metadata: RecordRead<unknown>; origin: RecordRead<unknown> },
): RuntimeError | undefined {
  for (const [file, read] of [[METADATA_JSON, records.metadata], [ORIGIN, records.origin]] as const) {
    if (read.state === "corrupt" || (read.state === "missing" && read.quarantined)) {
      return corruptItemError("model", id, `models/${id}/${file}`, `DELETE /v1/models/${id}`);
    }
  }
  return undefined;
}

function notFound(id: string) {
  return new RuntimeError("not_found", "model_not_found", `no model with id '${id}'`, { id });
}

function summarize(metadata: ModelMetadata, origin: ModelOrigin): ModelSummary {
  return {
    ...origin,
    backbone: metadata.backbone.name,
    method: metadata.method,
    classNames: metadata.classNames,
    input: metadata.input,
    valAccuracy: metadata.metrics.valAccuracy,
  };
}
