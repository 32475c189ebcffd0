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
  | "insufficient_storage" // the data directory's disk is full (507)
  | "corrupt" // a stored record or file is unreadable; it was moved aside (500, with a code naming it)
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

// An absolute path inside a message, after a space, quote, bracket or start: '/tmp/x/y.png', file:///a/b.
const ABSOLUTE_PATH = /(?<=^|[\s'"`(=]|file:\/\/)(?:[A-Za-z]:)?[\\/][^\s'"`)]+/g;

// The API's own routes, which messages name to say what to do next ("retry with POST /v1/adaptations/...").
const API_ROUTE = /^\/(?:v1|docs|healthz|readyz|openapi\.json)(?:[/?]|$)/;

/**
 * `message` with every absolute file path replaced: a path under `root` by the part below it, any other by
 * `<path>`. The API's own routes (`/v1/...`, `/healthz`) stay. Error messages reach API clients and job
 * records, which must not learn where the data lives.
 *
 * @example
 * ```ts
 * import { scrubPaths } from "./errors.ts";
 * const message = "No such file or directory (os error 2): readfile '/srv/data/datasets/ds_1/samples/000001.png'";
 * console.assert(scrubPaths(message, "/srv/data") === "No such file or directory (os error 2): readfile 'datasets/ds_1/samples/000001.png'");
 * console.assert(scrubPaths("open '/etc/x' and/or 1/2") === "open '<path>' and/or 1/2");
 * console.assert(scrubPaths("retry with POST /v1/adaptations/job_1/retry") === "retry with POST /v1/adaptations/job_1/retry");
 * ```
 */
export function scrubPaths(message: string, root?: string): string {
  const base = root?.replace(/[\\/]+$/, "");
  return message.replace(ABSOLUTE_PATH, (path) => {
    if (base && (path.startsWith(`${base}/`) || path.startsWith(`${base}\\`))) {
      return path.slice(base.length + 1);
    }
    return API_ROUTE.test(path) ? path : "<path>";
  });
}
