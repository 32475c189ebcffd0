/**
 * The kinds of failure the runtime reports. Each maps to one HTTP status in `routes/`, and nowhere else.
 */
export type ErrorKind =
  | "invalid" // the caller sent something unusable (400 / 422)
  | "not_found" // a named thing does not exist (404)
  | "forbidden" // the request is understood but this server refuses it by policy (403)
  | "conflict" // the request clashes with current state (409)
  | "too_large" // a body, image or count exceeds a limit (413)
  | "unsupported" // a media type or format the runtime cannot read (415)
  | "busy" // a bounded queue is full (429)
  | "unavailable" // the backend or model is not ready (503)
  | "upstream" // another server this one called failed or answered badly (502)
  | "internal"; // a bug or an environment failure (500)

/**
 * An error with a stable machine-readable code, raised where the failure is detected.
 *
 * @example
 * ```ts
 * import { RuntimeError } from "./errors.ts";
 * const err = new RuntimeError("invalid", "unknown_backbone", "no backbone named 'x'", { name: "x" });
 * console.assert(err.code === "unknown_backbone");
 * ```
 */
export class RuntimeError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "RuntimeError";
  }
}
