import { RuntimeError } from "../errors.ts";
import { eventBatches } from "../event_batches.ts";
import { FINAL_JOB_STATUSES, type JobRecord } from "./job_record.ts";

/** A change to a job, as subscribers see it. `done` is the last event of a job. */
export interface JobEvent {
  type: "status" | "progress" | "epoch" | "done";
  job: JobRecord;
}

/**
 * The jobs' event bus: the queue and the job it runs publish, readers subscribe per job or follow one job's
 * events as an async iterable. A listener that throws is logged and does not stop the others.
 *
 * @example
 * ```ts
 * import { JobEvents } from "./job_events.ts";
 * import type { JobRecord } from "./job_record.ts";
 * const events = new JobEvents();
 * const job = { id: "job_1", status: "queued" } as JobRecord;
 * const seen: string[] = [];
 * const stop = events.subscribe(job.id, (e) => seen.push(e.type));
 * events.emit("status", job);
 * stop();
 * events.emit("done", job);
 * console.assert(seen.join() === "status");
 * ```
 */
export class JobEvents {
  #listeners = new Map<string, Set<(event: JobEvent) => void>>();

  /** Sends `job`'s change to its subscribers. */
  emit(type: JobEvent["type"], job: JobRecord): void {
    for (const listener of this.#listeners.get(job.id) ?? []) {
      try {
        listener({ type, job });
      } catch (err) {
        console.error(`[jobs] a listener of job ${job.id} failed:`, err);
      }
    }
  }

  /** Calls `listener` with every later change to job `id`, until the returned function is called. */
  subscribe(id: string, listener: (event: JobEvent) => void): () => void {
    const set = this.#listeners.get(id) ?? new Set();
    set.add(listener);
    this.#listeners.set(id, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(id);
    };
  }

  /**
   * One job's events as they happen: first a `status` event with `job` as it is now, then every change,
   * ending after `done` (at once, for a job that has already ended) or when `signal` aborts. Progress events
   * that pile up while the reader is busy are coalesced into the latest.
   */
  async *follow(job: JobRecord, signal?: AbortSignal): AsyncGenerator<JobEvent> {
    // Subscribed before the first event is read, so no change between the two is lost.
    const batches = eventBatches<JobEvent>((listener) => this.subscribe(job.id, listener), signal);
    try {
      yield { type: "status", job };
      if (FINAL_JOB_STATUSES.includes(job.status)) {
        yield { type: "done", job };
        return;
      }
      for await (const batch of batches) {
        for (const [i, event] of batch.entries()) {
          if (event.type === "progress" && batch[i + 1]?.type === "progress") continue;
          yield event;
          if (event.type === "done") return;
        }
      }
    } finally {
      await batches.return?.();
    }
  }
}

/** The error for a job id that names no job. */
export function jobNotFound(id: string): RuntimeError {
  return new RuntimeError("not_found", "job_not_found", `no adaptation job with id '${id}'`, { id });
}
