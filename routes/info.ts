import { createRoute, z } from "@hono/zod-openapi";
import type { RuntimeInfo } from "../src/runtime.ts";
import { newRouter } from "./_router.ts";
import { jsonResponse } from "./_schemas.ts";

const TrialOutcome = z.union([
  z.object({
    samplesPerSec: z.number().openapi({ description: "training samples per second (batch / median step)" }),
    stepMs: z.number().openapi({ description: "median training step, in ms" }),
    batch: z.number().int(),
    steps: z.number().int().openapi({ description: "timed steps, after one warm-up" }),
  }),
  z.object({ error: z.string().openapi({ description: "why this backend has no figure" }) }),
]);

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
    wasm: z.object({
      threads: z.number().int().openapi({
        description: "threads the wasm backend computes on; 1 is single-threaded",
      }),
      requestedThreads: z.number().int().openapi({ description: "threads asked for (--wasm-threads)" }),
      fallbackReason: z.string().optional().openapi({
        description: "why the single-threaded build runs though more threads were asked for",
      }),
    }).optional().openapi({ description: "present when the backend is wasm" }),
    choice: z.object({
      chosen: z.enum(["webgpu", "wasm"]),
      webgpu: TrialOutcome,
      wasm: TrialOutcome,
      reason: z.string().openapi({ description: "both figures and the verdict, in words" }),
      measuredAt: z.string().openapi({ description: "when the trials ran (ISO 8601)" }),
      key: z.string().openapi({
        description: "what the measurement holds for: the adapter and the Deno version",
      }),
      cached: z.boolean().openapi({
        description: "true when read from the data dir rather than measured now",
      }),
    }).optional().openapi({
      description:
        "`auto` on a hardware adapter: a few training steps of the default backbone timed on webgpu " +
        "and on wasm, the faster taken; measured once per adapter and Deno version, then cached",
    }),
  }),
  backbones: z.array(z.object({ name: z.string(), description: z.string() })),
  defaultBackbone: z.string(),
  methods: z.array(z.object({ name: z.string(), description: z.string() })),
  activeModel: z.string().nullable(),
  ready: z.boolean(),
}).openapi("Info");

const infoRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["info"],
  summary: "Version, backend, adapter, self-test, backbones and methods",
  responses: { 200: jsonResponse(Info, "About this server") },
});

/** `/v1/info`. */
export function infoRoutes(info: () => RuntimeInfo) {
  return newRouter().openapi(infoRoute, (c) => c.json(info(), 200));
}
