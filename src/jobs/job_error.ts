import { RuntimeError } from "../errors.ts";
import type { JobError } from "../store/job_record.ts";

/**
 * What a job records of the error that ended it: a RuntimeError's code, message and details, or
 * `internal` with the message of anything else.
 *
 * @example
 * ```ts
 * import { toJobError } from "./job_error.ts";
 * console.assert(toJobError(new Error("boom")).code === "internal");
 * ```
 */
export function toJobError(err: unknown): JobError {
  if (err instanceof RuntimeError) {
    return { code: err.code, message: err.message, details: JSON.parse(JSON.stringify(err.details ?? {})) };
  }
  return { code: "internal", message: err instanceof Error ? err.message : String(err), details: {} };
}
