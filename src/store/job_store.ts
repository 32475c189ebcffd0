import { join } from "node:path";
import { RuntimeError } from "../errors.ts";
import { readJsonIfExists, writeJsonAtomic } from "./atomic_write.ts";
import type { JobRecord } from "./job_record.ts";
import { KeyedLock } from "./keyed_lock.ts";
import { assertResourceId, isResourceId } from "./resource_id.ts";

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

  /** Opens (creating if needed) the jobs directory. */
  static async open(root: string): Promise<JobStore> {
    await Deno.mkdir(root, { recursive: true });
    return new JobStore(root);
  }

  /** Writes a job record (a copy of it as it is now). */
  save(job: JobRecord): Promise<void> {
    const snapshot = structuredClone(job);
    return this.#lock.run(job.id, () => writeJsonAtomic(join(this.root, `${job.id}.json`), snapshot));
  }

  /** One job. @throws {RuntimeError} `not_found`/`job_not_found`. */
  async get(id: string): Promise<JobRecord> {
    assertResourceId("job", id);
    const job = await readJsonIfExists<JobRecord>(join(this.root, `${id}.json`));
    if (!job) {
      throw new RuntimeError("not_found", "job_not_found", `no adaptation job with id '${id}'`, { id });
    }
    return job;
  }

  /** Every job, oldest first. */
  async list(): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for await (const entry of Deno.readDir(this.root)) {
      const id = entry.name.replace(/\.json$/, "");
      if (!entry.isFile || !entry.name.endsWith(".json") || !isResourceId("job", id)) continue;
      const job = await readJsonIfExists<JobRecord>(join(this.root, entry.name));
      if (job) out.push(job);
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }
}
