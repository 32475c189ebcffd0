import { RuntimeError, scrubPaths } from "../errors.ts";
import type { JobError } from "./job_record.ts";
import { asStorageError } from "../store/storage_error.ts";

/**
 * What a job records of the error that ended it: a RuntimeError's code, message and details, a full disk
 * as `insufficient_storage`, or `internal` with the message of anything else. Absolute paths are taken out
 * of the message and details (those under `dataDir` become relative to it): a job record is shown to API
 * clients.
 *
 * @example
 * ```ts
 * import { toJobError } from "./job_error.ts";
 * console.assert(toJobError(new Error("boom")).code === "internal");
 * const missing = toJobError(new Error("No such file (os error 2): readfile '/srv/data/x.png'"), "/srv/data");
 * console.assert(missing.message.endsWith("'x.png'"));
 * ```
 */
export function toJobError(err: unknown, dataDir?: string): JobError {
  const error = asStorageError(err);
  if (error instanceof RuntimeError) {
    const details = JSON.stringify(
      error.details ?? {},
      (_key, value) => typeof value === "string" ? scrubPaths(value, dataDir) : value,
    );
    return { code: error.code, message: scrubPaths(error.message, dataDir), details: JSON.parse(details) };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: "internal", message: scrubPaths(message, dataDir), details: {} };
}
