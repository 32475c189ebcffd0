import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import type { DriftEvent } from "../src/serve/drift_monitor.ts";
import type { Runtime } from "../src/serve/open_runtime.ts";
import { newRouter } from "./_router.ts";
import {
  DriftSchema,
  errorResponse,
  IdParam,
  jsonResponse,
  ModelDetailSchema,
  ModelSchema,
} from "./_schemas.ts";

/** Milliseconds between SSE comments that keep an idle connection open. */
const HEARTBEAT_MS = 15_000;

const tags = ["models"];

const list = createRoute({
  method: "get",
  path: "/",
  tags,
  summary: "List adapted models, newest first",
  responses: {
    200: jsonResponse(
      z.object({ active: z.string().nullable(), models: z.array(ModelSchema) }),
      "Every model, and which is active",
    ),
  },
});

const get = createRoute({
  method: "get",
  path: "/{id}",
  tags,
  summary: "One model, with its metadata and metrics",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ModelDetailSchema, "The model"), 404: errorResponse("No such model") },
});

const activate = createRoute({
  method: "post",
  path: "/{id}/activate",
  tags,
  summary: "Make a model the active one (an atomic swap)",
  description: "The model is loaded and run once before it replaces the active one, so predictions never " +
    "see a half-loaded model.",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(z.object({ modelId: z.string(), activatedAt: z.string() }), "Active"),
    404: errorResponse("No such model"),
    503: errorResponse("The backend is not ready"),
  },
});

const remove = createRoute({
  method: "delete",
  path: "/{id}",
  tags,
  summary: "Delete a model (not the active one)",
  request: { params: IdParam },
  responses: {
    204: { description: "Deleted" },
    404: errorResponse("No such model"),
    409: errorResponse("It is the active model"),
  },
});

const artifact = createRoute({
  method: "get",
  path: "/{id}/tfjs/{file}",
  tags,
  summary: "The model's tfjs artifacts, for tf.loadLayersModel(url)",
  description: "`model.json`, and the weight files it names (`weights.bin`). " +
    "`tf.loadLayersModel('<server>/v1/models/{id}/tfjs/model.json')` loads the model in a browser.",
  request: {
    params: IdParam.extend({
      file: z.string().openapi({ param: { name: "file", in: "path" }, example: "model.json" }),
    }),
  },
  responses: {
    200: {
      content: {
        "application/json": { schema: z.record(z.string(), z.unknown()) },
        "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) },
      },
      description: "The file",
    },
    404: errorResponse("No such model or file"),
  },
});

const drift = createRoute({
  method: "get",
  path: "/{id}/drift",
  tags,
  summary: "Drift: do the images served now look like those the model was adapted on?",
  description: "The drift monitor keeps a rolling window of the statistics of the images each model serves " +
    "(per-channel moments of a few layers and the pooled features, and each prediction's confidence) and " +
    "compares them with the same statistics on the model's adaptation images, saved with the model. " +
    "`{id}` may be `active`. A score at or over the threshold raises a `drift` event (in `events`, in the " +
    "server log, and on `/drift/events`). Scale and measured values: docs/DRIFT.md.",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(DriftSchema, "The score, its per-layer breakdown, history and events"),
    404: errorResponse("No such model"),
    503: errorResponse("`active` asked for and no model is active"),
  },
});

const driftEvents = createRoute({
  method: "get",
  path: "/{id}/drift/events",
  tags,
  summary: "Server-sent drift events of one model",
  description: "First a `report` event with the drift report as it is, then a `drift` or `recovered` event " +
    "(a DriftEvent) each time the model's score crosses the threshold. The stream stays open.",
  request: { params: IdParam },
  responses: {
    200: { content: { "text/event-stream": { schema: z.string() } }, description: "The event stream" },
    404: errorResponse("No such model"),
  },
});

/** `/v1/models`: adapted models, activation, tfjs artifacts and drift. */
export function modelRoutes(runtime: Runtime) {
  const { models, predictions } = runtime;
  const withActive = <T extends { id: string }>(m: T) => ({
    ...m,
    active: m.id === predictions.activeModelId(),
  });
  return newRouter()
    .openapi(
      list,
      async (c) =>
        c.json(
          { active: predictions.activeModelId() ?? null, models: (await models.list()).map(withActive) },
          200,
        ),
    )
    .openapi(get, async (c) => {
      const { id } = c.req.valid("param");
      const detail = await models.detail(id);
      const tfjs = new URL(`${c.req.path.replace(/\/$/, "")}/tfjs/model.json`, c.req.url).href;
      return c.json({ ...withActive(detail), tfjs } as never, 200);
    })
    .openapi(activate, async (c) => c.json(await predictions.activate(c.req.valid("param").id), 200))
    .openapi(remove, async (c) => {
      await predictions.delete(c.req.valid("param").id);
      return c.body(null, 204);
    })
    .openapi(drift, async (c) => c.json(await predictions.drift(c.req.valid("param").id), 200))
    .openapi(driftEvents, async (c) => {
      const first = await predictions.drift(c.req.valid("param").id);
      return streamSSE(c, async (stream) => {
        const pending: DriftEvent[] = [];
        let wake = () => {};
        const unsubscribe = predictions.onDriftEvent((event) => {
          if (event.modelId !== first.modelId) return;
          pending.push(event);
          wake();
        });
        stream.onAbort(() => wake());
        let seq = 0;
        try {
          await stream.writeSSE({ event: "report", data: JSON.stringify(first), id: String(seq++) });
          while (!stream.aborted) {
            if (pending.length === 0) {
              const woke = await new Promise<boolean>((resolve) => {
                const timer = setTimeout(() => resolve(false), HEARTBEAT_MS);
                wake = () => {
                  clearTimeout(timer);
                  resolve(true);
                };
              });
              if (!woke && !stream.aborted) await stream.write(": keep-alive\n\n");
              continue;
            }
            for (const event of pending.splice(0)) {
              await stream.writeSSE({ event: event.type, data: JSON.stringify(event), id: String(seq++) });
            }
          }
        } finally {
          unsubscribe();
        }
      });
    })
    .openapi(artifact, async (c) => {
      const { id, file } = c.req.valid("param");
      const bytes = await models.readArtifact(id, file);
      const type = file.endsWith(".json") ? "application/json" : "application/octet-stream";
      return c.body(bytes as Uint8Array<ArrayBuffer>, 200, {
        "content-type": type,
        "cache-control": "no-cache",
      }) as never;
    });
}
