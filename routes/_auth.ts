import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { errorBody } from "./_error_handler.ts";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Whether a request changes state. Predictions are POSTs that change nothing, so they are not. */
export function isMutating(method: string, path: string): boolean {
  return !SAFE_METHODS.has(method) && !/\/predict\/?$/.test(path);
}

/**
 * Hono's bearerAuth on every mutating request (see {@linkcode isMutating}); reads pass. Failures answer in
 * the API's error shape, with the `WWW-Authenticate` challenge bearerAuth sets.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { requireTokenForChanges } from "./_auth.ts";
 * const app = new Hono().use(requireTokenForChanges("a-long-enough-token"));
 * ```
 */
export function requireTokenForChanges(token: string): MiddlewareHandler {
  const auth = bearerAuth({
    token,
    noAuthenticationHeader: {
      message: errorBody("unauthorized", "this endpoint needs 'Authorization: Bearer <API token>'"),
    },
    invalidAuthenticationHeader: {
      message: errorBody("invalid_authorization", "the Authorization header is not 'Bearer <token>'"),
    },
    invalidToken: { message: errorBody("invalid_token", "the API token is wrong") },
  });
  return (c, next) => isMutating(c.req.method, c.req.path) ? auth(c, next) : next();
}
