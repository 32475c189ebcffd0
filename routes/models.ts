import { createRoute, z } from "@hono/zod-openapi";
import { RuntimeError } from "../src/errors.ts";
import type { ModelTransfer } from "../src/serve/model_transfer.ts";
import type { PredictionService } from "../src/serve/prediction_service.ts";
import type { ModelStore } from "../src/store/model_store.ts";
import { streamEvents } from "./_event_stream.ts";
import { newRouter } from "./_router.ts";
import {
  CorruptItemSchema,
  DriftSchema,
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

const exportModel = createRoute({
  method: "get",
  path: "/{id}/export",
  tags,
  summary: "The model as one archive, for another server's POST /v1/models/import",
  description: "A gzipped tar: `manifest.json` (format `daft-edge-model-archive/1`, the model id, the " +
    "runtime that wrote it, and each file's size and SHA-256), then `model.json`, `weights.bin`, " +
    "`metadata.json` and `origin.json`. `tar -xzf` reads it. Needs the API token when the server has one.",
  request: { params: IdParam },
  responses: {
    200: {
      content: { "application/gzip": { schema: z.string().openapi({ format: "binary" }) } },
      description: "The archive",
    },
    401: errorResponse("The server has an API token and the request did not carry it"),
    404: errorResponse("No such model"),
  },
});

const ImportFromPeer = z.object({
  url: z.string().min(1).openapi({
    description: "the peer's export URL; its host must be in this server's --peers",
    example: "http://box-2.local:8787/v1/models/mdl_mh3k2x1q9f4a7b2c/export",
  }),
  token: z.string().min(1).optional().openapi({
    description: "the peer's API token, sent as its bearer token",
  }),
}).openapi("ImportFromPeer");

const importModel = createRoute({
  method: "post",
  path: "/import",
  tags,
  summary: "Import a model exported by another server: the archive itself, or a peer's export URL",
  description: "Either the archive as the body (`application/gzip`, or `application/x-tar` for an " +
    "uncompressed one), or JSON `{url, token?}` to pull it from a peer named in `--peers`. Every file's " +
    "SHA-256 is checked against the manifest, the model's backbone against this server's (same weights, " +
    "cut and input), and the model is loaded and run once; only then is it stored, under the id it had, " +
    "not activated. Anything else is refused and nothing is stored.",
  request: {
    body: {
      content: {
        "application/json": { schema: ImportFromPeer },
        "application/gzip": { schema: z.string().openapi({ format: "binary" }) },
        "application/x-tar": { schema: z.string().openapi({ format: "binary" }) },
      },
    },
  },
  responses: {
    201: jsonResponse(
      z.object({
        model: ModelSchema,
        manifest: z.object({
          modelId: z.string(),
          exportedAt: z.string(),
          runtime: z.object({ name: z.string(), version: z.string(), deno: z.string(), tfjs: z.string() }),
        }),
      }).openapi("ModelImported"),
      "Verified and stored",
    ),
    400: errorResponse(
      "`invalid_archive`, `unsupported_archive_format`, `archive_hash_mismatch`, `archive_file_missing`, " +
        "`archive_unexpected_file`, `incompatible_model_format`, `incompatible_backbone`, `invalid_model`, " +
        "`invalid_peer_url`",
    ),
    401: errorResponse("`unauthorized`, `invalid_token`: the server has an API token and it was not sent"),
    403: errorResponse("`peer_not_allowed`: the URL's host is not one of this server's peers"),
    409: errorResponse("`model_exists`: a model with this id is already here"),
    413: errorResponse("`archive_too_large`, `body_too_large`"),
    415: errorResponse("`unsupported_media_type`: neither an archive nor JSON"),
    422: errorResponse("`invalid_request`: the JSON is not `{url, token?}`"),
    502: errorResponse(
      "`peer_unreachable`, `peer_error`: the peer could not be reached or answered with an error",
    ),
    503: errorResponse("`not_ready`: the backend is still starting"),
  },
});

const ARCHIVE_TYPES = [
  "application/gzip",
  "application/x-gzip",
  "application/x-tar",
  "application/octet-stream",
];

/** `/v1/models`: adapted models, activation, tfjs artifacts, drift, export and import. */
export function modelRoutes(
  { models, predictions, transfer }: {
    models: ModelStore;
    predictions: PredictionService;
    transfer: ModelTransfer;
  },
) {
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
      return c.json({ ...withActive(detail), tfjs }, 200);
    })
    .openapi(activate, async (c) => c.json(await predictions.activate(c.req.valid("param").id), 200))
    .openapi(remove, async (c) => {
      await predictions.delete(c.req.valid("param").id);
      return c.body(null, 204);
    })
    .openapi(drift, async (c) => c.json(await predictions.drift(c.req.valid("param").id), 200))
    .openapi(driftEvents, async (c) => {
      const { id } = c.req.valid("param");
      await predictions.drift(id); // a missing model is a 404, before the stream starts
      return streamEvents(c, async function* (signal) {
        for await (const item of predictions.followDrift(id, signal)) {
          yield "type" in item ? { event: item.type, data: item } : { event: "report", data: item };
        }
      });
    })
    .openapi(exportModel, async (c) => {
      const { id } = c.req.valid("param");
      const archive = await transfer.exportArchive(id);
      return new Response(archive as Uint8Array<ArrayBuffer>, {
        headers: {
          "content-type": "application/gzip",
          "content-disposition": `attachment; filename="${id}.tar.gz"`,
        },
      });
    })
    .openapi(importModel, async (c) => {
      const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
      let result;
      if (type === "application/json") {
        const { url, token } = c.req.valid("json" as never) as z.infer<typeof ImportFromPeer>;
        result = await transfer.importFromPeer(url, token);
      } else if (ARCHIVE_TYPES.includes(type)) {
        result = await transfer.importArchive(new Uint8Array(await c.req.arrayBuffer()));
      } else {
        throw new RuntimeError(
          "unsupported",
          "unsupported_media_type",
          `send the archive as application/gzip (or application/x-tar), or JSON {url, token?}; got '${type}'`,
          { contentType: type, accepted: ["application/json", ...ARCHIVE_TYPES] },
        );
      }
      return c.json({ ...result, model: withActive(result.model) }, 201);
    })
    .openapi(artifact, async (c) => {
      const { id, file } = c.req.valid("param");
      const bytes = await models.readArtifact(id, file);
      const type = file.endsWith(".json") ? "application/json" : "application/octet-stream";
      return new Response(bytes as Uint8Array<ArrayBuffer>, {
        headers: {
          "content-type": type,
          "cache-control": "no-cache",
        },
      });
    });
}
