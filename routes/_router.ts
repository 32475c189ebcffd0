import { OpenAPIHono } from "@hono/zod-openapi";
import { RuntimeError } from "../src/errors.ts";
import { VALIDATION_CODE } from "./_error_handler.ts";

interface Issue {
  path: PropertyKey[];
  message: string;
  code?: string;
}

/**
 * A sub-app whose request validation failures become `invalid_request` errors (422, handled by the app's one
 * `onError`), with the zod issues as details and the first issue's path and message in the message.
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
        message: i.message,
        code: i.code,
      }));
      const where = (i: { path: string[] }) =>
        `${result.target}${i.path.length ? `.${i.path.join(".")}` : ""}`;
      throw new RuntimeError(
        "invalid",
        VALIDATION_CODE,
        `invalid request: ${issues.map((i) => `${where(i)}: ${i.message}`).join("; ")}`,
        { target: result.target, issues },
      );
    },
  });
}
