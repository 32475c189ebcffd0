import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { errorBody } from "./_error_handler.ts";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

// Requests with an unsafe method that change nothing, by method and route: a prediction only computes.
// Routes as Hono writes them (`:id`) or as OpenAPI does (`{id}`); a parameter is one path segment.
const PUBLIC_ROUTES: readonly { method: string; route: string }[] = [
  { method: "POST", route: "/v1/models/:id/predict" },
];

const EXPORT_PATTERN = /^\/v1\/models\/[^/]+\/export\/?$/;

const PUBLIC_PATTERNS = PUBLIC_ROUTES.map(({ method, route }) => ({
  method,
  pattern: new RegExp(`^${route.replace(/:[A-Za-z]+/g, "(?:[^/]+)")}$`),
}));

/**
 * Whether a request needs the API token: every method but GET, HEAD and OPTIONS, except the routes listed as
 * public for their method (`POST /v1/models/:id/predict`), and a model's export (`GET .../export`). Matched on
 * method and whole route, so a path that
 * merely ends like a public one is not public.
 *
 * @example
 * ```ts
 * import { needsToken } from "./_auth.ts";
 * console.assert(!needsToken("POST", "/v1/models/active/predict"));
 * console.assert(!needsToken("POST", "/v1/models/{id}/predict"));
 * console.assert(needsToken("DELETE", "/v1/models/active/predict"));
 * console.assert(needsToken("POST", "/v1/datasets/ds_1/samples/predict"));
 * console.assert(needsToken("GET", "/v1/models/mdl_x/export") && !needsToken("GET", "/v1/models"));
 * ```
 */
export function needsToken(method: string, path: string): boolean {
  const route = path.replace(/\{[^}/]+\}/g, ":param");
  // A model's export hands out the whole model with its training record in one piece: a read that needs the token.
  if (method === "GET" && EXPORT_PATTERN.test(route)) return true;
  if (SAFE_METHODS.has(method)) return false;
  return !PUBLIC_PATTERNS.some((p) => p.method === method && p.pattern.test(route));
}

/**
 * Hono's bearerAuth on every request that needs the token (see {@linkcode needsToken}); reads and
 * predictions pass. Failures answer in the API's error shape, with the `WWW-Authenticate` challenge
 * bearerAuth sets.
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
