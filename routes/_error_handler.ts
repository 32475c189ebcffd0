import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ErrorKind, RuntimeError, scrubPaths } from "../src/errors.ts";

/** The one place an error kind becomes an HTTP status. */
export const STATUS_OF_KIND: Record<ErrorKind, ContentfulStatusCode> = {
  invalid: 400,
  not_found: 404,
  forbidden: 403,
  conflict: 409,
  too_large: 413,
  unsupported: 415,
  busy: 429,
  unavailable: 503,
  upstream: 502,
  insufficient_storage: 507,
  corrupt: 500,
  internal: 500,
};

/** Request validation failures (zod) are 422, the other `invalid` errors 400. */
export const VALIDATION_CODE = "invalid_request";

/** A field the body's schema does not know, in JSON or multipart: also a validation failure (422). */
export const UNKNOWN_FIELD_CODE = "unknown_field";

/** URLs longer than this are refused with 414 before routing (Deno's HTTP server refuses over 64 KiB). */
export const MAX_URL_LENGTH = 16 * 1024;

// Errors Hono's own middleware raise as HTTPException, by status.
const CODE_OF_STATUS: Record<number, string> = {
  400: "malformed_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  413: "body_too_large",
  415: "unsupported_media_type",
};

/** The error body every failure answers with. */
export function errorBody(code: string, message: string, details: Record<string, unknown> = {}) {
  return { error: { code, message, details } };
}

// A runtime error's body with absolute file paths replaced (`<path>`): where the server keeps its data is
// no client's business, whichever layer's message carried it.
function scrubbedBody(err: RuntimeError) {
  const details = JSON.parse(
    JSON.stringify(err.details, (_key, value) => typeof value === "string" ? scrubPaths(value) : value),
  );
  return errorBody(err.code, scrubPaths(err.message), details);
}

/**
 * Turns any thrown error into `{"error": {"code", "message", "details"}}` with its status: a RuntimeError
 * by its kind (`busy` also sets `Retry-After`; file paths taken out), an HTTPException from Hono's middleware by its status
 * (keeping headers such as `WWW-Authenticate`), anything else as a 500 that hides the internals.
 */
export const onError: ErrorHandler = (err: Error, c: Context) => {
  if (err instanceof RuntimeError) {
    const status = err.kind === "invalid" && (err.code === VALIDATION_CODE || err.code === UNKNOWN_FIELD_CODE)
      ? 422
      : STATUS_OF_KIND[err.kind] ?? 500;
    if (err.kind === "busy") c.header("Retry-After", String(err.details.retryAfterSeconds ?? 30));
    if (err.kind === "internal") console.error(`[http] ${c.req.method} ${c.req.path}:`, err);
    return c.json(scrubbedBody(err), status);
  }
  if (err instanceof HTTPException) {
    const res = err.getResponse();
    if (res.headers.get("content-type")?.includes("application/json")) return res;
    const headers = new Headers(res.headers);
    headers.set("content-type", "application/json");
    const code = CODE_OF_STATUS[err.status] ?? `http_${err.status}`;
    return new Response(JSON.stringify(errorBody(code, err.message || res.statusText || code)), {
      status: err.status,
      headers,
    });
  }
  console.error(`[http] ${c.req.method} ${c.req.path}:`, err);
  return c.json(errorBody("internal", "internal error; the server log has the details"), 500);
};

/**
 * 414 `uri_too_long` for a URL over {@linkcode MAX_URL_LENGTH}, in the same shape, before any route reads it.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { refuseLongUrls } from "./_error_handler.ts";
 * const app = new Hono().use(refuseLongUrls).get("/", (c) => c.text("ok"));
 * console.assert((await app.request(`/?q=${"a".repeat(20000)}`)).status === 414);
 * ```
 */
export const refuseLongUrls: MiddlewareHandler = async (c, next) => {
  const length = c.req.url.length;
  if (length > MAX_URL_LENGTH) {
    return c.json(
      errorBody(
        "uri_too_long",
        `the URL is ${length} characters, over the limit of ${MAX_URL_LENGTH}; send large images in a POST body`,
        { length, maxUrlLength: MAX_URL_LENGTH },
      ),
      414,
    );
  }
  await next();
};

/** 404 for a path no route serves, in the same shape. */
export const onNotFound: NotFoundHandler = (c) =>
  c.json(
    errorBody("route_not_found", `no route for ${c.req.method} ${c.req.path}`, {
      method: c.req.method,
      path: c.req.path,
    }),
    404,
  );
