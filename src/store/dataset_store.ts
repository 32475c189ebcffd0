import { join } from "node:path";
import { decodeImage, encodePng } from "../data/image.ts";
import { thumbnail } from "../data/thumbnail.ts";
import { RuntimeError } from "../errors.ts";
import { readJsonIfExists, writeFileAtomic, writeJsonAtomic } from "./atomic_write.ts";
import { KeyedLock } from "./keyed_lock.ts";
import { assertResourceId, newResourceId } from "./resource_id.ts";
import { isValidLabel, MAX_LABEL_LENGTH, type ValidSample } from "./validate_samples.ts";

/** A stored sample: its file under `samples/` and its label. */
export interface StoredSample {
  file: string;
  label: string;
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
  /** Samples per label, labels in code-point order. */
  counts: Record<string, number>;
}

/** What the API shows of one sample: its id (the file's number) and label. */
export interface SampleSummary {
  id: string;
  label: string;
}

/** A dataset's samples as the adaptation worker reads them. */
export interface DatasetContents {
  id: string;
  name: string;
  samples: { label: string; bytes: Uint8Array }[];
}

const RECORD = "dataset.json";
/** A sample's id: the number of its file under `samples/`. */
const SAMPLE_ID = /^[0-9]{6}$/;
const SAMPLES = "samples";

/** Counts per label, labels sorted by code point. */
export function countLabels(labels: Iterable<string>): Record<string, number> {
  const counts = new Map<string, number>();
  for (const label of labels) counts.set(label, (counts.get(label) ?? 0) + 1);
  return Object.fromEntries([...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Labelled image datasets on disk, one directory each:
 *
 * ```text
 * <root>/<id>/dataset.json          name, samples [{file, label}]  (written atomically)
 * <root>/<id>/samples/000001.png    the uploaded bytes, unchanged
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

  private constructor(readonly root: string, readonly maxSamplesPerDataset: number) {}

  /** Opens (creating if needed) the datasets directory and clears what an interrupted delete left. */
  static async open(root: string, options: { maxSamplesPerDataset?: number } = {}): Promise<DatasetStore> {
    await Deno.mkdir(root, { recursive: true });
    for await (const entry of Deno.readDir(root)) {
      if (entry.name.startsWith(".")) await Deno.remove(join(root, entry.name), { recursive: true });
    }
    return new DatasetStore(root, options.maxSamplesPerDataset ?? Infinity);
  }

  /** The store at `root` as it is, without `open`'s clean-up (for a reader in another thread). */
  static at(root: string, options: { maxSamplesPerDataset?: number } = {}): DatasetStore {
    return new DatasetStore(root, options.maxSamplesPerDataset ?? Infinity);
  }

  /** Creates an empty dataset. */
  async create(name: string): Promise<DatasetSummary> {
    const id = newResourceId("dataset");
    const now = new Date().toISOString();
    const record: DatasetRecord = { id, name, createdAt: now, updatedAt: now, samples: [], nextSample: 1 };
    await Deno.mkdir(join(this.root, id, SAMPLES), { recursive: true });
    await writeJsonAtomic(join(this.root, id, RECORD), record);
    return summarize(record);
  }

  /** Every dataset, oldest first. */
  async list(): Promise<DatasetSummary[]> {
    const out: DatasetSummary[] = [];
    for await (const entry of Deno.readDir(this.root)) {
      if (!entry.isDirectory || entry.name.startsWith(".")) continue;
      const record = await readJsonIfExists<DatasetRecord>(join(this.root, entry.name, RECORD));
      if (record) out.push(summarize(record));
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
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
   *   would exceed its limit (naming the first sample over it).
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
      const written: string[] = [];
      try {
        const added: StoredSample[] = [];
        for (const sample of samples) {
          const file = `${String(record.nextSample++).padStart(6, "0")}.${
            sample.format === "png" ? "png" : "jpg"
          }`;
          const path = join(this.root, id, SAMPLES, file);
          await writeFileAtomic(path, sample.bytes);
          written.push(path);
          added.push({ file, label: sample.label });
        }
        const updated = {
          ...record,
          samples: [...record.samples, ...added],
          updatedAt: new Date().toISOString(),
        };
        await writeJsonAtomic(join(this.root, id, RECORD), updated);
        return summarize(updated);
      } catch (err) {
        await Promise.all(written.map((path) => Deno.remove(path).catch(() => {})));
        throw err;
      }
    });
  }

  /** Every sample's label and bytes, in upload order. @throws {RuntimeError} `not_found`/`dataset_not_found`. */
  async read(id: string): Promise<DatasetContents> {
    const record = await this.#read(id);
    const samples = [];
    for (const { file, label } of record.samples) {
      samples.push({ label, bytes: await Deno.readFile(join(this.root, id, SAMPLES, file)) });
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
  ): Promise<{ bytes: Uint8Array; format: "png" | "jpeg" }> {
    const sample = findSample(await this.#read(id), sampleId);
    const bytes = await Deno.readFile(join(this.root, id, SAMPLES, sample.file));
    if (options.maxSide !== undefined) {
      return { bytes: encodePng(thumbnail(decodeImage(bytes), options.maxSide)), format: "png" };
    }
    return { bytes, format: sample.file.endsWith(".png") ? "png" : "jpeg" };
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

  /** Removes a dataset: renamed aside in one step, then deleted. @throws {RuntimeError} `not_found`. */
  delete(id: string): Promise<void> {
    return this.#lock.run(id, async () => {
      await this.#read(id);
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
    const record = await readJsonIfExists<DatasetRecord>(join(this.root, id, RECORD));
    if (!record) {
      throw new RuntimeError("not_found", "dataset_not_found", `no dataset with id '${id}'`, { id });
    }
    return record;
  }
}

function summarize(record: DatasetRecord): DatasetSummary {
  return {
    id: record.id,
    name: record.name,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    sampleCount: record.samples.length,
    counts: countLabels(record.samples.map((s) => s.label)),
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
