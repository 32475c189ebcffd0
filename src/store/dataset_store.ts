import { join } from "node:path";
import { z } from "zod";
import { decodeImage, encodePng } from "../data/image.ts";
import { thumbnail } from "../data/thumbnail.ts";
import { RuntimeError } from "../errors.ts";
import { TEMP_PREFIX, writeFileAtomic, writeJsonAtomic } from "./atomic_write.ts";
import { KeyedLock } from "../keyed_lock.ts";
import { assertResourceId, isResourceId, newResourceId } from "./resource_id.ts";
import { asStorageError } from "./storage_error.ts";
import {
  type CorruptItem,
  corruptItemError,
  dataDirOf,
  quarantineRecord,
  readRecord,
} from "./stored_record.ts";
import { isValidLabel, MAX_LABEL_LENGTH, type ValidSample } from "./validate_samples.ts";
import type { ImageFormat } from "../data/image.ts";

/** A stored sample: its file under `samples/` and its label (null: uploaded without one). */
export interface StoredSample {
  file: string;
  label: string | null;
  /** Pixels of the stored image; absent in records written before images were bounded (counted as 0). */
  pixels?: number;
}

/** `dataset.json`: the dataset and the list of its samples, rewritten atomically on every change. */
export interface DatasetRecord {
  id: string;
  name: string;
  createdAt: string;
  updatedAt: string;
  samples: StoredSample[];
  /** The next sample file number; numbers are never reused. */
  nextSample: number;
}

/** What the API shows of a dataset. */
export interface DatasetSummary {
  id: string;
  name: string;
  createdAt: string;
  updatedAt: string;
  sampleCount: number;
  /** Labelled samples per label, labels in code-point order. */
  counts: Record<string, number>;
  /** Samples uploaded without a label (for `bn-refresh`; labelled adaptation ignores them). */
  unlabelled: number;
}

/** What the API shows of one sample: its id (the file's number) and label. */
export interface SampleSummary {
  id: string;
  /** Null for an unlabelled sample (uploaded for bn-refresh). */
  label: string | null;
}

/** A dataset's samples as the adaptation worker reads them. */
export interface DatasetContents {
  id: string;
  name: string;
  samples: { label: string | null; bytes: Uint8Array }[];
}

/** Limits of a {@linkcode DatasetStore}; each defaults to none. */
export interface DatasetStoreOptions {
  /** Most samples a dataset may hold. */
  maxSamplesPerDataset?: number;
  /** Most stored pixels (each sample's `width * height` as stored) a dataset may hold. */
  maxDatasetPixels?: number;
}

const EXTENSION: Record<ImageFormat, string> = {
  jpeg: "jpg",
  png: "png",
  webp: "webp",
  gif: "gif",
  avif: "avif",
  tiff: "tif",
};

// The format of a stored sample file, from the extension it was stored with.
function formatOfFile(file: string): ImageFormat {
  const extension = file.slice(file.lastIndexOf(".") + 1);
  const entry = Object.entries(EXTENSION).find(([, ext]) => ext === extension);
  return (entry?.[0] ?? "jpeg") as ImageFormat;
}

const RECORD = "dataset.json";
/** A sample's id: the number of its file under `samples/`. */
const SAMPLE_ID = /^[0-9]{6}$/;
const SAMPLES = "samples";

// What a readable dataset.json holds; sample files are plain names inside samples/, never paths.
const DatasetRecordSchema: z.ZodType<DatasetRecord> = z.looseObject({
  id: z.string(),
  name: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  samples: z.array(
    z.looseObject({ file: z.string().regex(/^[0-9]+\.[a-z]+$/), label: z.string().nullable() }),
  ),
  nextSample: z.number().int().min(1),
});

/** What {@linkcode DatasetStore.open}'s start-up sweep removed. */
export interface SweepReport {
  /** Temporary files of writes a crash interrupted. */
  tempFiles: number;
  /** Sample files no `dataset.json` names (an upload a crash interrupted). */
  unreferencedSamples: number;
  /** Dataset directories without a record (a create a crash interrupted). */
  incompleteDatasets: number;
}

/** Counts per label, labels sorted by code point. */
export function countLabels(labels: Iterable<string>): Record<string, number> {
  const counts = new Map<string, number>();
  for (const label of labels) counts.set(label, (counts.get(label) ?? 0) + 1);
  return Object.fromEntries([...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Image datasets on disk, one directory each; a sample's label is null when it was uploaded unlabelled:
 *
 * ```text
 * <root>/<id>/dataset.json          name, samples [{file, label}]  (written atomically)
 * <root>/<id>/samples/000001.png    the uploaded file, or its bounded PNG (see `validateSamples`)
 * ```
 *
 * A sample file is written before `dataset.json` names it, so a crash leaves at worst an unnamed file, never
 * a named file that is missing. Changes to one dataset are serialised.
 *
 * @example
 * ```ts
 * import { DatasetStore } from "./dataset_store.ts";
 * const store = await DatasetStore.open(await Deno.makeTempDir());
 * const ds = await store.create("pets");
 * console.assert((await store.get(ds.id)).sampleCount === 0);
 * ```
 */
export class DatasetStore {
  #lock = new KeyedLock();

  private constructor(
    readonly root: string,
    readonly maxSamplesPerDataset: number,
    readonly maxDatasetPixels: number,
  ) {}

  /**
   * Opens (creating if needed) the datasets directory and sweeps what a crash can leave: what an
   * interrupted delete left, temporary files, sample files no `dataset.json` names, and dataset directories
   * without a record. A corrupt `dataset.json` is moved aside (see {@linkcode DatasetStore.corrupt}). Only
   * the process that owns the data directory may open it; a reader in another thread uses `at`.
   */
  static async open(root: string, options: DatasetStoreOptions = {}): Promise<DatasetStore> {
    await Deno.mkdir(root, { recursive: true });
    const store = DatasetStore.at(root, options);
    const report = await store.#sweep();
    const removed = report.tempFiles + report.unreferencedSamples + report.incompleteDatasets;
    if (removed) {
      console.error(
        `[store] start-up sweep: removed ${report.tempFiles} temporary file(s), ` +
          `${report.unreferencedSamples} unreferenced sample file(s) and ${report.incompleteDatasets} ` +
          "incomplete dataset(s) a crash left in datasets/",
      );
    }
    return store;
  }

  /** The store at `root` as it is, without `open`'s clean-up (for a reader in another thread). */
  static at(root: string, options: DatasetStoreOptions = {}): DatasetStore {
    return new DatasetStore(
      root,
      options.maxSamplesPerDataset ?? Infinity,
      options.maxDatasetPixels ?? Infinity,
    );
  }

  /** Creates an empty dataset. @throws {RuntimeError} `insufficient_storage` (nothing is left behind). */
  async create(name: string): Promise<DatasetSummary> {
    const id = newResourceId("dataset");
    const now = new Date().toISOString();
    const record: DatasetRecord = { id, name, createdAt: now, updatedAt: now, samples: [], nextSample: 1 };
    try {
      await Deno.mkdir(join(this.root, id, SAMPLES), { recursive: true });
      await writeJsonAtomic(join(this.root, id, RECORD), record);
    } catch (err) {
      await Deno.remove(join(this.root, id), { recursive: true }).catch(() => {});
      throw asStorageError(err);
    }
    return summarize(record);
  }

  /** Every readable dataset, oldest first; corrupt ones are moved aside and left to {@linkcode DatasetStore.corrupt}. */
  async list(): Promise<DatasetSummary[]> {
    const out: DatasetSummary[] = [];
    for (const id of await this.#ids()) {
      const read = await this.#readRecord(id);
      if (read.state === "ok") out.push(summarize(read.value));
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** The datasets whose record is corrupt (moved aside): each can only be deleted. */
  async corrupt(): Promise<CorruptItem[]> {
    const out: CorruptItem[] = [];
    for (const id of await this.#ids()) {
      const read = await this.#readRecord(id);
      if (read.state === "corrupt" || (read.state === "missing" && read.quarantined)) {
        const { code, message, details } = this.#corruptError(id);
        out.push({ id, file: details.file as string, code, message });
      }
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** One dataset. @throws {RuntimeError} `not_found`/`dataset_not_found`. */
  async get(id: string): Promise<DatasetSummary> {
    return summarize(await this.#read(id));
  }

  /**
   * Adds validated samples, all or none: the files are written, then `dataset.json` is replaced in one
   * rename; if anything fails first, the files written so far are removed and the dataset is unchanged.
   *
   * @throws {RuntimeError} `not_found`/`dataset_not_found`; `too_large`/`too_many_samples` when the dataset
   *   would exceed its limit (naming the first sample over it); `too_large`/`pixel_budget_exceeded` when its
   *   stored pixels would exceed `maxDatasetPixels` (named in the message and details).
   */
  add(id: string, samples: ValidSample[]): Promise<DatasetSummary> {
    return this.#lock.run(id, async () => {
      const record = await this.#read(id);
      const room = this.maxSamplesPerDataset - record.samples.length;
      if (samples.length > room) {
        throw new RuntimeError(
          "too_large",
          "too_many_samples",
          `samples[${
            Math.max(room, 0)
          }]: dataset ${id} may hold at most ${this.maxSamplesPerDataset} samples; ` +
            `it has ${record.samples.length} and the upload adds ${samples.length}`,
          {
            index: Math.max(room, 0),
            maxSamplesPerDataset: this.maxSamplesPerDataset,
            existing: record.samples.length,
          },
        );
      }
      const existing = record.samples.reduce((sum, s) => sum + (s.pixels ?? 0), 0);
      let total = existing;
      samples.forEach((sample, index) => {
        total += sample.pixels;
        if (total <= this.maxDatasetPixels) return;
        throw new RuntimeError(
          "too_large",
          "pixel_budget_exceeded",
          `samples[${index}]: dataset ${id} would hold more than maxDatasetPixels (${this.maxDatasetPixels}) ` +
            `stored pixels; it has ${existing} and the upload adds ${
              samples.reduce((sum, s) => sum + s.pixels, 0)
            }`,
          { index, maxDatasetPixels: this.maxDatasetPixels, existing },
        );
      });
      const added: StoredSample[] = samples.map((sample) => ({
        file: `${String(record.nextSample++).padStart(6, "0")}.${EXTENSION[sample.format]}`,
        label: sample.label,
        pixels: sample.pixels,
      }));
      const paths = added.map(({ file }) => join(this.root, id, SAMPLES, file));
      try {
        // All at once: each write ends in an fsync, and concurrent ones share the file system's commits
        // (32 files: 10 ms instead of 220 ms here).
        const writes = await Promise.allSettled(
          paths.map((path, i) => writeFileAtomic(path, samples[i].bytes)),
        );
        const failed = writes.find((w) => w.status === "rejected");
        if (failed) throw (failed as PromiseRejectedResult).reason;
        const updated = {
          ...record,
          samples: [...record.samples, ...added],
          updatedAt: new Date().toISOString(),
        };
        await writeJsonAtomic(join(this.root, id, RECORD), updated);
        return summarize(updated);
      } catch (err) {
        await Promise.all(paths.map((path) => Deno.remove(path).catch(() => {})));
        throw err;
      }
    });
  }

  /**
   * Every sample's label and bytes, in upload order.
   * @throws {RuntimeError} `not_found`/`dataset_not_found`, `corrupt`/`dataset_corrupt`, and
   *   `corrupt`/`sample_missing` naming the first sample whose file is gone.
   */
  async read(id: string): Promise<DatasetContents> {
    const record = await this.#read(id);
    const samples = [];
    for (const [index, { file, label }] of record.samples.entries()) {
      try {
        samples.push({ label, bytes: await Deno.readFile(join(this.root, id, SAMPLES, file)) });
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
        throw new RuntimeError(
          "corrupt",
          "sample_missing",
          `dataset ${id}'s sample ${index} (label '${label}') is missing on disk: datasets/${id}/${SAMPLES}/${file}; ` +
            "delete the dataset and upload its samples again",
          { id, index, label, file: `datasets/${id}/${SAMPLES}/${file}` },
        );
      }
    }
    return { id, name: record.name, samples };
  }

  /** Every sample's id and label, in upload order. @throws {RuntimeError} `not_found`/`dataset_not_found`. */
  async samples(id: string): Promise<SampleSummary[]> {
    return (await this.#read(id)).samples.map(sampleSummary);
  }

  /**
   * One sample's image: the stored bytes as uploaded, or with `maxSide`, a PNG thumbnail whose longer side is
   * at most that many pixels.
   * @throws {RuntimeError} `not_found`/`dataset_not_found` or `sample_not_found`.
   */
  async readSample(
    id: string,
    sampleId: string,
    options: { maxSide?: number } = {},
  ): Promise<{ bytes: Uint8Array; format: ImageFormat }> {
    const sample = findSample(await this.#read(id), sampleId);
    const bytes = await Deno.readFile(join(this.root, id, SAMPLES, sample.file));
    if (options.maxSide !== undefined) {
      const image = await decodeImage(bytes, { maxSide: options.maxSide });
      return { bytes: encodePng(thumbnail(image, options.maxSide)), format: "png" };
    }
    return { bytes, format: formatOfFile(sample.file) };
  }

  /** Renames a dataset. @throws {RuntimeError} `not_found`/`dataset_not_found`. */
  rename(id: string, name: string): Promise<DatasetSummary> {
    return this.#update(id, (record) => ({ record: { ...record, name }, removed: [] }));
  }

  /**
   * Removes one sample. @throws {RuntimeError} `not_found`/`dataset_not_found` or `sample_not_found`.
   */
  deleteSample(id: string, sampleId: string): Promise<DatasetSummary> {
    return this.#update(id, (record) => {
      const sample = findSample(record, sampleId);
      return {
        record: { ...record, samples: record.samples.filter((s) => s !== sample) },
        removed: [sample],
      };
    });
  }

  /**
   * Gives every sample labelled `from` the label `to` (a class renamed; into an existing class, a merge).
   * @throws {RuntimeError} `not_found`/`dataset_not_found` or `label_not_found`; `invalid`/`invalid_label`.
   */
  relabel(id: string, from: string, to: string): Promise<DatasetSummary> {
    return this.#update(id, (record) => {
      requireLabel(record, from);
      if (!isValidLabel(to)) {
        throw new RuntimeError(
          "invalid",
          "invalid_label",
          `a label must be 1 to ${MAX_LABEL_LENGTH} characters, not blank, without control characters`,
          { label: to },
        );
      }
      const samples = record.samples.map((s) => (s.label === from ? { ...s, label: to } : s));
      return { record: { ...record, samples }, removed: [] };
    });
  }

  /**
   * Removes every sample of one label (a class deleted).
   * @throws {RuntimeError} `not_found`/`dataset_not_found` or `label_not_found`.
   */
  deleteLabel(id: string, label: string): Promise<DatasetSummary> {
    return this.#update(id, (record) => {
      requireLabel(record, label);
      return {
        record: { ...record, samples: record.samples.filter((s) => s.label !== label) },
        removed: record.samples.filter((s) => s.label === label),
      };
    });
  }

  /**
   * Removes a dataset, a corrupt one too: renamed aside in one step, then deleted.
   * @throws {RuntimeError} `not_found`/`dataset_not_found`.
   */
  delete(id: string): Promise<void> {
    return this.#lock.run(id, async () => {
      assertResourceId("dataset", id);
      const read = await this.#readRecord(id);
      if (read.state === "missing" && !read.quarantined) throw notFound(id);
      const trash = join(this.root, `.deleted-${id}`);
      await Deno.rename(join(this.root, id), trash);
      await Deno.remove(trash, { recursive: true });
    });
  }

  // One change to a dataset under its lock: the new record is written in one rename, then the files of the
  // samples it no longer names are removed (a crash in between leaves unnamed files, never missing ones).
  #update(
    id: string,
    change: (record: DatasetRecord) => { record: DatasetRecord; removed: StoredSample[] },
  ): Promise<DatasetSummary> {
    return this.#lock.run(id, async () => {
      const { record, removed } = change(await this.#read(id));
      const updated = { ...record, updatedAt: new Date().toISOString() };
      await writeJsonAtomic(join(this.root, id, RECORD), updated);
      await Promise.all(
        removed.map((s) => Deno.remove(join(this.root, id, SAMPLES, s.file)).catch(() => {})),
      );
      return summarize(updated);
    });
  }

  async #read(id: string): Promise<DatasetRecord> {
    assertResourceId("dataset", id);
    const read = await this.#readRecord(id);
    if (read.state === "ok") return read.value;
    if (read.state === "missing" && !read.quarantined) throw notFound(id);
    throw this.#corruptError(id);
  }

  // The record, with a corrupt one moved aside (and logged) as it is found.
  async #readRecord(id: string) {
    const path = join(this.root, id, RECORD);
    const read = await readRecord(path, DatasetRecordSchema);
    if (read.state === "corrupt") await quarantineRecord(dataDirOf(this.root), path, read.reason);
    return read;
  }

  #corruptError(id: string) {
    return corruptItemError("dataset", id, `datasets/${id}/${RECORD}`, `DELETE /v1/datasets/${id}`);
  }

  async #ids(): Promise<string[]> {
    const ids = [];
    for await (const entry of Deno.readDir(this.root)) {
      if (entry.isDirectory && isResourceId("dataset", entry.name)) ids.push(entry.name);
    }
    return ids;
  }

  async #sweep(): Promise<SweepReport> {
    const report: SweepReport = { tempFiles: 0, unreferencedSamples: 0, incompleteDatasets: 0 };
    for await (const entry of Deno.readDir(this.root)) {
      // What an interrupted delete left, and temporary files.
      if (entry.name.startsWith(".")) {
        await Deno.remove(join(this.root, entry.name), { recursive: true });
        if (entry.name.startsWith(TEMP_PREFIX)) report.tempFiles++;
      }
    }
    for (const id of await this.#ids()) {
      const dir = join(this.root, id);
      const read = await this.#readRecord(id);
      if (read.state === "missing" && !read.quarantined) {
        await Deno.remove(dir, { recursive: true });
        report.incompleteDatasets++;
        continue;
      }
      for await (const entry of Deno.readDir(dir)) {
        if (entry.name.startsWith(TEMP_PREFIX)) {
          await Deno.remove(join(dir, entry.name));
          report.tempFiles++;
        }
      }
      // Without a readable record nothing says which samples are referenced: keep them all.
      if (read.state !== "ok") continue;
      const referenced = new Set(read.value.samples.map((s) => s.file));
      await Deno.mkdir(join(dir, SAMPLES), { recursive: true });
      for await (const entry of Deno.readDir(join(dir, SAMPLES))) {
        if (!entry.isFile || referenced.has(entry.name)) continue;
        await Deno.remove(join(dir, SAMPLES, entry.name));
        if (entry.name.startsWith(TEMP_PREFIX)) report.tempFiles++;
        else report.unreferencedSamples++;
      }
    }
    return report;
  }
}

function notFound(id: string) {
  return new RuntimeError("not_found", "dataset_not_found", `no dataset with id '${id}'`, { id });
}

function summarize(record: DatasetRecord): DatasetSummary {
  return {
    id: record.id,
    name: record.name,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    sampleCount: record.samples.length,
    counts: countLabels(record.samples.flatMap((s) => (s.label === null ? [] : [s.label]))),
    unlabelled: record.samples.filter((s) => s.label === null).length,
  };
}

function sampleSummary(sample: StoredSample): SampleSummary {
  return { id: sample.file.replace(/\.[a-z]+$/, ""), label: sample.label };
}

function findSample(record: DatasetRecord, sampleId: string): StoredSample {
  const sample = SAMPLE_ID.test(sampleId)
    ? record.samples.find((s) => sampleSummary(s).id === sampleId)
    : undefined;
  if (!sample) {
    throw new RuntimeError(
      "not_found",
      "sample_not_found",
      `dataset ${record.id} has no sample '${sampleId}'`,
      { id: record.id, sample: sampleId },
    );
  }
  return sample;
}

function requireLabel(record: DatasetRecord, label: string): void {
  if (!record.samples.some((s) => s.label === label)) {
    throw new RuntimeError(
      "not_found",
      "label_not_found",
      `dataset ${record.id} has no samples labelled '${label}'`,
      { id: record.id, label },
    );
  }
}
