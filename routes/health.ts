import { createRoute, z } from "@hono/zod-openapi";
import type { Readiness as ReadinessState } from "../src/serve/readiness.ts";
import { newRouter } from "./_router.ts";
import { jsonResponse } from "./_schemas.ts";

const tags = ["health"];

const Readiness = z.object({
  ready: z.boolean(),
  backend: z.object({ ready: z.boolean(), name: z.string().optional(), error: z.string().optional() }),
  defaultBackbone: z.object({ name: z.string(), ready: z.boolean(), error: z.string().optional() }),
}).openapi("Readiness");

const healthz = createRoute({
  method: "get",
  path: "/healthz",
  tags,
  summary: "Liveness: the process answers",
  responses: { 200: jsonResponse(z.object({ status: z.literal("ok") }), "Alive") },
});

const readyz = createRoute({
  method: "get",
  path: "/readyz",
  tags,
  summary: "Readiness: the backend and the default backbone are up",
  responses: {
    200: jsonResponse(Readiness, "Ready"),
    503: jsonResponse(Readiness, "Still starting, or a part failed (see its error)"),
  },
});

/** `/healthz` and `/readyz`. */
export function healthRoutes(readiness: ReadinessState) {
  return newRouter()
    .openapi(healthz, (c) => c.json({ status: "ok" as const }, 200))
    .openapi(readyz, (c) => {
      const report = readiness.report();
      return report.ready ? c.json(report, 200) : c.json(report, 503);
    });
}
