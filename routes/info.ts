import { createRoute, z } from "@hono/zod-openapi";
import type { Runtime } from "../src/serve/open_runtime.ts";
import { newRouter } from "./_router.ts";
import { jsonResponse } from "./_schemas.ts";

const Info = z.object({
  name: z.string(),
  version: z.string(),
  backend: z.object({
    name: z.string().optional().openapi({ description: "tfjs backend in use" }),
    policy: z.string(),
    adapter: z.string().optional().openapi({ description: "the WebGPU adapter's description, or why none" }),
    isFallbackAdapter: z.boolean().optional(),
    fellBack: z.boolean().optional(),
    fallbackReason: z.string().optional(),
    selfTest: z.record(z.string(), z.unknown()).optional(),
  }),
  backbones: z.array(z.object({ name: z.string(), description: z.string() })),
  defaultBackbone: z.string(),
  methods: z.array(z.object({ name: z.string(), description: z.string() })),
  activeModel: z.string().nullable(),
  ready: z.boolean(),
}).openapi("Info");

const info = createRoute({
  method: "get",
  path: "/",
  tags: ["info"],
  summary: "Version, backend, adapter, self-test, backbones and methods",
  responses: { 200: jsonResponse(Info, "About this server") },
});

/** `/v1/info`. */
export function infoRoutes(runtime: Runtime) {
  return newRouter().openapi(info, (c) => c.json(runtime.info() as never, 200));
}
