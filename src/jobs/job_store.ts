import { join } from "node:path";
import { z } from "zod";
import { RuntimeError } from "../errors.ts";
import { TEMP_PREFIX, writeJsonAtomic } from "../store/atomic_write.ts";
import type { JobRecord } from "./job_record.ts";
import { KeyedLock } from "../keyed_lock.ts";
import { assertResourceId, isResourceId } from "../store/resource_id.ts";
import { dataDirOf, quarantineRecord, readRecord } from "../store/stored_record.ts";

// What the queue relies on in a job record; the rest is shown as stored.
const JobRecordSchema = z.looseObject({
  id: z.string(),
  status: z.enum(["queued", "running", "succeeded", "failed", "cancelled"]),
  request: z.looseObject({ dataset: z.string(), backbone: z.string(), method: z.string() }),
  createdAt: z.string(),
  history: z.array(z.unknown()),
}) as unknown as z.ZodType<JobRecord>;

/**
 * Adaptation job records on disk, `<root>/<id>.json`, each replaced atomically. Writes of one job are
 * serialised, so a slow earlier write never lands after a later one.
 *
 * @example
 * ```ts
 * import { JobStore } from "./job_store.ts";
 * const store = await JobStore.open(await Deno.makeTempDir());
 * console.assert((await store.list()).length === 0);
 * ```
 */
export class JobStore {
  #lock = new KeyedLock();

  private constructor(readonly root: string) {}

  /** Opens (creating if needed) the jobs directory and removes temporary files a crash left. */
  static async open(root: string): Promise<JobStore> {
    await Deno.mkdir(root, { recursive: true });
    let removed = 0;
    for await (const entry of Deno.readDir(root)) {
      if (entry.name.startsWith(TEMP_PREFIX)) {
        await Deno.remove(join(root, entry.name));
        removed++;
      }
    }
    if (removed) console.error(`[store] start-up sweep: removed ${removed} temporary file(s) in jobs/`);
    return new JobStore(root);
  }

  /** Writes a job record (a copy of it as it is now). */
  save(job: JobRecord): Promise<void> {
    const snapshot = structuredClone(job);
    return this.#lock.run(job.id, () => writeJsonAtomic(join(this.root, `${job.id}.json`), snapshot));
  }

  /**
   * One job. A corrupt record is moved aside (`<id>.json.corrupt`, logged) and is then not found.
   * @throws {RuntimeError} `not_found`/`job_not_found`.
   */
  async get(id: string): Promise<JobRecord> {
    assertResourceId("job", id);
    const job = await this.#read(id);
    if (!job) {
      throw new RuntimeError("not_found", "job_not_found", `no adaptation job with id '${id}'`, { id });
    }
    return job;
  }

  /** Every readable job, oldest first; a corrupt record is moved aside with one log line naming it. */
  async list(): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for await (const entry of Deno.readDir(this.root)) {
      const id = entry.name.replace(/\.json$/, "");
      if (!entry.isFile || !entry.name.endsWith(".json") || !isResourceId("job", id)) continue;
      const job = await this.#read(id);
      if (job) out.push(job);
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async #read(id: string): Promise<JobRecord | undefined> {
    const path = join(this.root, `${id}.json`);
    const read = await readRecord(path, JobRecordSchema);
    if (read.state === "ok") return read.value;
    if (read.state === "corrupt") await quarantineRecord(dataDirOf(this.root), path, read.reason);
    return undefined;
  }
}
