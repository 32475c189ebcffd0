import { join } from "node:path";
import { METADATA_JSON, type ModelMetadata } from "../adapt/adapted_model.ts";
import { RuntimeError } from "../errors.ts";
import { MODEL_JSON } from "../model/artifacts_io.ts";
import { readJsonIfExists, writeFileAtomic, writeJsonAtomic } from "./atomic_write.ts";
import { assertResourceId, isResourceId } from "./resource_id.ts";

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

  /** Opens (creating if needed) the models directory and clears staging left by an interrupted job. */
  static async open(root: string): Promise<ModelStore> {
    await Deno.mkdir(root, { recursive: true });
    for await (const entry of Deno.readDir(root)) {
      if (entry.name.startsWith(".")) await Deno.remove(join(root, entry.name), { recursive: true });
    }
    return new ModelStore(root);
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

  /** Every model, newest first. */
  async list(): Promise<ModelSummary[]> {
    const out: ModelSummary[] = [];
    for await (const entry of Deno.readDir(this.root)) {
      if (!entry.isDirectory || !isResourceId("model", entry.name)) continue;
      try {
        out.push(await this.get(entry.name));
      } catch (err) {
        if (!(err instanceof RuntimeError)) throw err;
      }
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
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

  /** Removes a model: renamed aside in one step, then deleted. @throws {RuntimeError} `not_found`. */
  async delete(id: string): Promise<void> {
    await this.#read(id);
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
    const metadata = await readJsonIfExists<ModelMetadata>(join(this.root, id, METADATA_JSON));
    if (!metadata) throw notFound(id);
    return metadata;
  }

  async #read(id: string): Promise<{ metadata: ModelMetadata; origin: ModelOrigin }> {
    assertResourceId("model", id);
    const metadata = await this.#metadata(id);
    const origin = await readJsonIfExists<ModelOrigin>(join(this.root, id, ORIGIN));
    if (!origin) throw notFound(id);
    return { metadata, origin };
  }
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
