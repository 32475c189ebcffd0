import { createRoute, z } from "@hono/zod-openapi";
import type { Runtime } from "../src/serve/open_runtime.ts";
import { newRouter } from "./_router.ts";
import {
  CorruptItemSchema,
  errorResponse,
  IdParam,
  jsonResponse,
  ModelDetailSchema,
  ModelSchema,
} from "./_schemas.ts";

const tags = ["models"];

const list = createRoute({
  method: "get",
  path: "/",
  tags,
  summary: "List adapted models, newest first",
  responses: {
    200: jsonResponse(
      z.object({
        active: z.string().nullable(),
        models: z.array(ModelSchema),
        corrupt: z.array(CorruptItemSchema),
      }),
      "Every model, which is active, and those whose record is corrupt (delete them)",
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

/** `/v1/models`: adapted models, activation and tfjs artifacts. */
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
          {
            active: predictions.activeModelId() ?? null,
            models: (await models.list()).map(withActive),
            corrupt: await models.corrupt(),
          },
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
