import type { MiddlewareHandler } from "hono";
import { errorBody } from "./_error_handler.ts";

/** The names that reach this machine only: a request addressed to one came from a local client. */
export const LOOPBACK_HOSTS: readonly string[] = ["localhost", "127.0.0.1", "[::1]"];

/** Options of {@linkcode allowHosts}. */
export interface AllowHostsOptions {
  /** Host names (lowercase, no port) allowed besides the loopback names; `*` allows any. */
  allowed: readonly string[];
  /** Allow any host when `allowed` is empty (a server with an API token); otherwise loopback names only. */
  anyByDefault: boolean;
}

/**
 * Refuses requests whose `Host` names a host not on the allow-list, with 403 `host_not_allowed`. This is
 * the guard against DNS rebinding: a web page on `attacker.example` that re-points its name at 127.0.0.1
 * can make the user's browser send requests to a server on localhost, same-origin, so CORS and the CSRF
 * check see nothing wrong; but the browser still sends `Host: attacker.example`, which no local client
 * would. The port is not checked (the server may sit behind a port mapping).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { allowHosts } from "./_host_check.ts";
 * const app = new Hono().use(allowHosts({ allowed: [], anyByDefault: false })).get("/", (c) => c.text("hi"));
 * console.assert((await app.request("http://localhost:8787/")).status === 200);
 * console.assert((await app.request("http://attacker.example/")).status === 403);
 * ```
 */
export function allowHosts(options: AllowHostsOptions): MiddlewareHandler {
  const allowed = new Set([...LOOPBACK_HOSTS, ...options.allowed]);
  const any = options.allowed.includes("*") || (options.allowed.length === 0 && options.anyByDefault);
  const names = [...allowed].filter((h) => h !== "*").join(", ");
  return async (c, next) => {
    // Deno.serve builds the URL from the Host header; Hono's app.request from the URL it is given.
    const host = new URL(c.req.url).hostname.replace(/\.$/, "");
    if (any || allowed.has(host)) return await next();
    return c.json(
      errorBody(
        "host_not_allowed",
        `this server answers requests addressed to ${names}, not '${host}': a page under another name ` +
          "reaching it may be a DNS-rebinding attack. To serve under that name, add it to --allowed-hosts " +
          "(ALLOWED_HOSTS)",
        { host, allowed: [...allowed] },
      ),
      403,
    );
  };
}
