import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { errorBody } from "./_error_handler.ts";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Whether a request changes state. Predictions are POSTs that change nothing, so they are not. */
export function isMutating(method: string, path: string): boolean {
  return !SAFE_METHODS.has(method) && !/\/predict\/?$/.test(path);
}

/**
 * Whether a request needs the API token (when the server has one): every mutating request, and a model's
 * export, which hands out the whole model with its training record in one piece.
 *
 * @example
 * ```ts
 * import { needsToken } from "./_auth.ts";
 * console.assert(needsToken("GET", "/v1/models/mdl_x/export") && !needsToken("GET", "/v1/models"));
 * ```
 */
export function needsToken(method: string, path: string): boolean {
  return isMutating(method, path) || (method === "GET" && /\/export\/?$/.test(path));
}

/**
 * Hono's bearerAuth on every request that needs the token (see {@linkcode needsToken}); other reads pass. Failures answer in
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
  return (c, next) => needsToken(c.req.method, c.req.path) ? auth(c, next) : next();
}
