import { createRoute, z } from "@hono/zod-openapi";
import { DEFAULT_METHOD } from "../src/adapt/methods.ts";
import type { AdaptationQueue } from "../src/jobs/adaptation_queue.ts";
import type { JobEvent } from "../src/jobs/job_events.ts";
import { ADAPTATION_METHODS, type JobRecord } from "../src/jobs/job_record.ts";
import type { AdaptationAsked } from "../src/serve/submit_adaptation.ts";
import { streamEvents } from "./_event_stream.ts";
import { bodyRoute, newRouter } from "./_router.ts";
import { errorResponse, IdParam, JobSchema, jsonResponse } from "./_schemas.ts";

const tags = ["adaptations"];

const CreateBody = z.object({
  dataset: z.string().min(1).optional().openapi({
    description: "dataset id; required unless a bn-refresh takes its images from `source`",
    example: "ds_mh3k2x1q9f4a7b2c",
  }),
  source: z.enum(["traffic"]).optional().openapi({
    description: "with bn-refresh, instead of `dataset`: refresh on the images `model` has served, as kept " +
      "by a server started with --keep-traffic N (copied into a new unlabelled dataset the job names)",
  }),
  backbone: z.string().min(1).optional().openapi({
    description: "registered backbone; default: the server's",
  }),
  method: z.enum(ADAPTATION_METHODS).default(DEFAULT_METHOD).openapi(
    {
      description:
        "a labelled adaptation method, or `bn-refresh`: re-estimate the BN statistics of `model` on " +
        "the dataset's images (labels not needed, not read) and save the result as a new model",
    },
  ),
  model: z.string().min(1).optional().openapi({
    description: "with bn-refresh: the id of the model to refresh",
    example: "mdl_mh3k2x1q9f4a7b2c",
  }),
  epochs: z.number().int().min(1).max(1000).optional(),
  minSteps: z.number().int().min(0).max(10_000).optional().openapi({
    description: "train at least this many SGD steps: a small set gets more epochs than `epochs` " +
      "(default 60; 0 trains exactly `epochs`)",
  }),
  batchSize: z.number().int().min(2).max(1024).optional(),
  lrHead: z.number().positive().max(100).optional(),
  lrBackbone: z.number().positive().max(100).optional(),
  seed: z.number().int().min(0).max(2 ** 31 - 1).optional(),
  activate: z.union([z.boolean(), z.literal("force")]).optional().openapi({
    description: "make the new model active when the job succeeds and its validation accuracy passes the " +
      "guard (above chance, not below the linear-probe baseline by more than the validation noise; for " +
      "bn-refresh, which has no labels: at least 16 images and no collapse of its predictions onto one " +
      'class); "force" activates it regardless',
  }),
}).strict()
  .refine((body) => body.dataset !== undefined || body.source !== undefined, {
    path: ["dataset"],
    message: 'required (or, for a bn-refresh, "source")',
  })
  .refine((body) => body.dataset === undefined || body.source === undefined, {
    path: ["source"],
    message: "give 'dataset' or 'source', not both",
  })
  .refine((body) => body.source === undefined || body.method === "bn-refresh", {
    path: ["source"],
    message: "only a bn-refresh takes its images from traffic",
  })
  .openapi("AdaptationRequest");

const create = bodyRoute({
  method: "post",
  path: "/",
  tags,
  summary: "Start an adaptation (queued; one runs at a time)",
  request: { body: { content: { "application/json": { schema: CreateBody } }, required: true } },
  responses: {
    202: jsonResponse(JobSchema, "Queued"),
    400: errorResponse(
      "Unknown backbone, or the dataset has too few labels or samples; bn-refresh without a model or images",
    ),
    403: errorResponse("source traffic: this server keeps no served images (traffic_not_kept)"),
    404: errorResponse("No such dataset, or no such model to refresh"),
    409: errorResponse(
      "source traffic: the model has served no images since the server started (no_traffic)",
    ),
    415: errorResponse("Not application/json"),
    422: errorResponse("Invalid body, or a field it does not know (unknown_field)"),
    429: errorResponse("The queue is full; see Retry-After"),
  },
});

const list = createRoute({
  method: "get",
  path: "/",
  tags,
  summary: "List adaptations, newest first",
  responses: { 200: jsonResponse(z.object({ adaptations: z.array(JobSchema) }), "Every job") },
});

const get = createRoute({
  method: "get",
  path: "/{id}",
  tags,
  summary: "One adaptation: status, progress, metrics, modelId",
  request: { params: IdParam },
  responses: { 200: jsonResponse(JobSchema, "The job"), 404: errorResponse("No such job") },
});

const events = createRoute({
  method: "get",
  path: "/{id}/events",
  tags,
  summary: "Server-sent events of one adaptation",
  description: "First a `status` event with the job as it is, then `status`, `progress` (`{id, status, " +
    "progress}`) and `epoch` (`{id, record}`) events as it runs, and a final `done` event with the whole job; " +
    "then the stream ends.",
  request: { params: IdParam },
  responses: {
    200: { content: { "text/event-stream": { schema: z.string() } }, description: "The event stream" },
    404: errorResponse("No such job"),
  },
});

const cancel = createRoute({
  method: "post",
  path: "/{id}/cancel",
  tags,
  summary: "Cancel an adaptation",
  description:
    "A queued job is cancelled at once (200). A running one stops within one training step (202, " +
    "`cancelRequested: true`; watch the job or its events for `cancelled`).",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(JobSchema, "Cancelled"),
    202: jsonResponse(JobSchema, "Cancellation under way"),
    404: errorResponse("No such job"),
    409: errorResponse("The job has already finished"),
  },
});

const retry = createRoute({
  method: "post",
  path: "/{id}/retry",
  tags,
  summary: "Run a failed, cancelled or interrupted adaptation again, as a new job",
  request: { params: IdParam },
  responses: {
    202: jsonResponse(JobSchema, "The new job, queued"),
    404: errorResponse("No such job"),
    409: errorResponse("The job has not failed or been cancelled"),
    429: errorResponse("The queue is full; see Retry-After"),
  },
});

/**
 * `/v1/adaptations`: adaptation jobs, over the queue; `submit` queues one (a `bn-refresh` from the kept
 * traffic first copies it into a dataset).
 */
export function adaptationRoutes(
  queue: AdaptationQueue,
  submit: (asked: AdaptationAsked) => Promise<JobRecord>,
) {
  return newRouter()
    .openapi(create, async (c) => c.json(await submit(c.req.valid("json")), 202))
    .openapi(list, (c) => c.json({ adaptations: queue.list() }, 200))
    .openapi(get, (c) => c.json(queue.get(c.req.valid("param").id), 200))
    .openapi(cancel, async (c) => {
      const job = await queue.cancel(c.req.valid("param").id);
      return job.status === "cancelled" ? c.json(job, 200) : c.json(job, 202);
    })
    .openapi(retry, async (c) => c.json(await queue.retry(c.req.valid("param").id), 202))
    .openapi(events, (c) => {
      const { id } = c.req.valid("param");
      queue.get(id);
      return streamEvents(c, async function* (signal) {
        for await (const event of queue.follow(id, signal)) yield { event: event.type, data: shape(event) };
      });
    });
}

function shape({ type, job }: JobEvent): unknown {
  if (type === "progress") return { id: job.id, status: job.status, progress: job.progress };
  if (type === "epoch") return { id: job.id, record: job.history.at(-1) };
  return job;
}
