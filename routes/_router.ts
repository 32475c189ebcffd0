import { createRoute, OpenAPIHono, type RouteConfig } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { RuntimeError } from "../src/errors.ts";
import { UNKNOWN_FIELD_CODE, VALIDATION_CODE } from "./_error_handler.ts";

interface Issue {
  path: PropertyKey[];
  message: string;
  code?: string;
  keys?: string[];
}

/**
 * A sub-app whose request validation failures become errors the app's one `onError` answers with 422:
 * `unknown_field` when every issue is a field the schema does not know (named in the message and in
 * `details.fields`), else `invalid_request`; the zod issues are in `details.issues` and the message names
 * each issue's path.
 *
 * @example
 * ```ts
 * import { newRouter } from "./_router.ts";
 * const app = newRouter();
 * app.get("/ping", (c) => c.text("pong"));
 * ```
 */
export function newRouter(): OpenAPIHono {
  return new OpenAPIHono({
    defaultHook: (result) => {
      if (result.success) return;
      const issues = (result.error as unknown as { issues: Issue[] }).issues.map((i) => ({
        path: i.path.map(String),
        message: i.code === "unrecognized_keys" && i.keys
          ? `unknown field${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `'${k}'`).join(", ")}`
          : i.message,
        code: i.code,
        ...(i.keys ? { keys: i.keys } : {}),
      }));
      const where = (i: { path: string[] }) =>
        `${result.target}${i.path.length ? `.${i.path.join(".")}` : ""}`;
      const unknown = issues.every((i) => i.code === "unrecognized_keys");
      throw new RuntimeError(
        "invalid",
        unknown ? UNKNOWN_FIELD_CODE : VALIDATION_CODE,
        `invalid request: ${issues.map((i) => `${where(i)}: ${i.message}`).join("; ")}`,
        {
          target: result.target,
          issues,
          ...(unknown ? { fields: issues.flatMap((i) => i.keys!.map((k) => [...i.path, k].join("."))) } : {}),
        },
      );
    },
  });
}

/**
 * `createRoute` for an operation with a request body, plus a gate in front of its validators: a body whose
 * Content-Type is none of the route's declared media types is refused with 415 `unsupported_media_type`,
 * saying which to send (`details.accepted`), before anything reads it.
 *
 * @example
 * ```ts
 * import { z } from "@hono/zod-openapi";
 * import { bodyRoute } from "./_router.ts";
 * const route = bodyRoute({
 *   method: "post", path: "/", responses: {},
 *   request: { body: { content: { "application/json": { schema: z.object({}) } } } },
 * });
 * console.assert(route.path === "/");
 * ```
 */
export function bodyRoute<R extends RouteConfig>(config: R): R & { getRoutingPath(): string } {
  const accepted = Object.keys(config.request?.body?.content ?? {});
  const gate: MiddlewareHandler = async (c, next) => {
    const contentType = c.req.header("content-type");
    const essence = contentType?.split(";")[0].trim().toLowerCase();
    if (!essence || !accepted.includes(essence)) {
      throw new RuntimeError(
        "unsupported",
        "unsupported_media_type",
        `send ${accepted.join(" or ")}; the request's Content-Type is ${
          contentType ? `'${contentType.slice(0, 100)}'` : "missing"
        }`,
        { contentType: contentType?.slice(0, 100) ?? null, accepted },
      );
    }
    await next();
  };
  return createRoute({ ...config, middleware: [gate] }) as R & { getRoutingPath(): string };
}
