import { createRoute, z } from "@hono/zod-openapi";
import type { AdaptationQueue } from "../src/jobs/adaptation_queue.ts";
import type { DatasetStore } from "../src/store/dataset_store.ts";
import type { SampleLimits } from "../src/store/validate_samples.ts";
import { countLabels } from "../src/store/dataset_store.ts";
import { validateSamples } from "../src/store/validate_samples.ts";
import { isMultipart, samplesFromJson, samplesFromMultipart } from "./_image_input.ts";
import { bodyRoute, newRouter } from "./_router.ts";
import {
  Base64Image,
  CorruptItemSchema,
  CountsSchema,
  DatasetSchema,
  errorResponse,
  IdParam,
  jsonResponse,
} from "./_schemas.ts";

const tags = ["datasets"];

const CreateBody = z.object({ name: z.string().trim().min(1).max(100).openapi({ example: "digits" }) })
  .strict();

// Label and image are optional here so that a sample missing one gets the same error as in multipart
// (`missing_label`, `missing_image`, with its index), from validateSamples.
const SamplesJson = z.object({
  samples: z.array(
    z.object({
      label: z.string().optional().openapi({ example: "7" }),
      image: Base64Image.optional(),
    }).strict(),
  ),
}).strict();

const SamplesAdded = z.object({
  id: z.string(),
  added: z.number().int(),
  addedCounts: CountsSchema,
  sampleCount: z.number().int(),
  counts: CountsSchema,
  unlabelled: z.number().int().openapi({ description: "unlabelled samples in the dataset after the upload" }),
}).openapi("SamplesAdded");

const SamplesQuery = z.object({
  unlabelled: z.enum(["true", "false"]).optional().openapi({
    description: "`true`: the images carry no labels (for a `bn-refresh`); a label in the upload is then " +
      "refused (`unexpected_label`). Labelled adaptations ignore unlabelled samples.",
  }),
});

const create = bodyRoute({
  method: "post",
  path: "/",
  tags,
  summary: "Create an empty dataset",
  request: { body: { content: { "application/json": { schema: CreateBody } }, required: true } },
  responses: {
    201: jsonResponse(DatasetSchema, "The new dataset"),
    415: errorResponse("Not application/json"),
    422: errorResponse("Invalid body, or a field it does not know (unknown_field)"),
  },
});

const list = createRoute({
  method: "get",
  path: "/",
  tags,
  summary: "List datasets",
  responses: {
    200: jsonResponse(
      z.object({ datasets: z.array(DatasetSchema), corrupt: z.array(CorruptItemSchema) }),
      "Every dataset, oldest first, and those whose record is corrupt (delete them)",
    ),
  },
});

const get = createRoute({
  method: "get",
  path: "/{id}",
  tags,
  summary: "One dataset, with samples per label",
  request: { params: IdParam },
  responses: { 200: jsonResponse(DatasetSchema, "The dataset"), 404: errorResponse("No such dataset") },
});

const remove = createRoute({
  method: "delete",
  path: "/{id}",
  tags,
  summary: "Delete a dataset",
  request: { params: IdParam },
  responses: {
    204: { description: "Deleted" },
    404: errorResponse("No such dataset"),
    409: errorResponse("A queued or running adaptation uses it"),
    500: errorResponse("Its record is corrupt (`dataset_corrupt`); it can still be deleted"),
  },
});

const addSamples = bodyRoute({
  method: "post",
  path: "/{id}/samples",
  tags,
  summary: "Add labelled (or, with ?unlabelled=true, unlabelled) images, all or nothing",
  description: "Either multipart/form-data with repeated `label` and `image` (file) fields, the n-th label " +
    "going with the n-th image, or JSON `{samples: [{label, image: base64}]}`. Images are JPEG, PNG, WebP, GIF, AVIF or TIFF. If any " +
    "sample is bad (corrupt or unsupported image, missing label, too large, too many), nothing is stored and " +
    "the error names the sample in `details.index`. With `?unlabelled=true` the samples have images only " +
    "(`image` fields, or `{samples: [{image}]}`), for a label-free `bn-refresh`.",
  request: {
    params: IdParam,
    query: SamplesQuery,
    body: {
      content: {
        "application/json": { schema: SamplesJson },
        "multipart/form-data": {
          schema: {
            type: "object",
            properties: {
              label: { type: "array", items: { type: "string" } },
              image: { type: "array", items: { type: "string", format: "binary" } },
            },
          },
        },
      },
    },
  },
  responses: {
    201: jsonResponse(SamplesAdded, "Stored; counts per label after the upload"),
    400: errorResponse(
      "A sample is corrupt, unlabelled, or labelled in an unlabelled upload (details.index names it)",
    ),
    404: errorResponse("No such dataset"),
    413: errorResponse("Body, image or sample count over the limit"),
    415: errorResponse(
      "Not an image format the server decodes (JPEG, PNG, WebP, GIF, AVIF, TIFF), or not multipart/JSON",
    ),
    422: errorResponse("Invalid JSON body, or a field it does not know (unknown_field)"),
  },
});

const rename = bodyRoute({
  method: "patch",
  path: "/{id}",
  tags,
  summary: "Rename a dataset",
  request: {
    params: IdParam,
    body: { content: { "application/json": { schema: CreateBody } }, required: true },
  },
  responses: {
    200: jsonResponse(DatasetSchema, "The renamed dataset"),
    404: errorResponse("No such dataset"),
    415: errorResponse("Not application/json"),
    422: errorResponse("Invalid body, or a field it does not know (unknown_field)"),
  },
});

const SampleParams = IdParam.extend({
  sample: z.string().openapi({ param: { name: "sample", in: "path" }, example: "000001" }),
});
const LabelParams = IdParam.extend({
  label: z.string().openapi({ param: { name: "label", in: "path" }, example: "7" }),
});
const inUse = errorResponse("A queued or running adaptation uses the dataset");

const listSamples = createRoute({
  method: "get",
  path: "/{id}/samples",
  tags,
  summary: "The dataset's samples: id and label, in upload order",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(
      z.object({
        samples: z.array(z.object({ id: z.string(), label: z.string().nullable() }).openapi("Sample")),
      }),
      "Every sample",
    ),
    404: errorResponse("No such dataset"),
  },
});

const sampleImage = createRoute({
  method: "get",
  path: "/{id}/samples/{sample}",
  tags,
  summary: "One sample's image, as uploaded",
  description: "A sample's bytes never change (ids are not reused), so the response may be cached. With " +
    "`size`, a PNG thumbnail whose longer side is at most that many pixels.",
  request: {
    params: SampleParams,
    query: z.object({
      size: z.coerce.number().int().min(16).max(512).optional().openapi({ example: 96 }),
    }),
  },
  responses: {
    200: {
      content: {
        "image/png": { schema: z.string().openapi({ format: "binary" }) },
        "image/jpeg": { schema: z.string().openapi({ format: "binary" }) },
        "image/webp": { schema: z.string().openapi({ format: "binary" }) },
        "image/gif": { schema: z.string().openapi({ format: "binary" }) },
        "image/avif": { schema: z.string().openapi({ format: "binary" }) },
        "image/tiff": { schema: z.string().openapi({ format: "binary" }) },
      },
      description: "The image",
    },
    404: errorResponse("No such dataset or sample"),
    422: errorResponse("size is not an integer from 16 to 512"),
  },
});

const removeSample = createRoute({
  method: "delete",
  path: "/{id}/samples/{sample}",
  tags,
  summary: "Remove one sample",
  request: { params: SampleParams },
  responses: {
    200: jsonResponse(DatasetSchema, "The dataset after the removal"),
    404: errorResponse("No such dataset or sample"),
    409: inUse,
  },
});

const renameLabel = bodyRoute({
  method: "patch",
  path: "/{id}/labels/{label}",
  tags,
  summary: "Rename a class (every sample with this label); into an existing label, the classes merge",
  request: {
    params: LabelParams,
    body: {
      content: {
        "application/json": { schema: z.object({ name: z.string().openapi({ example: "seven" }) }) },
      },
      required: true,
    },
  },
  responses: {
    200: jsonResponse(DatasetSchema, "The dataset after the change"),
    400: errorResponse("The new label is blank, too long or has control characters"),
    404: errorResponse("No such dataset or label"),
    409: inUse,
    415: errorResponse("Not application/json"),
    422: errorResponse("Invalid body, or a field it does not know (unknown_field)"),
  },
});

const removeLabel = createRoute({
  method: "delete",
  path: "/{id}/labels/{label}",
  tags,
  summary: "Remove a class: every sample with this label",
  request: { params: LabelParams },
  responses: {
    200: jsonResponse(DatasetSchema, "The dataset after the removal"),
    404: errorResponse("No such dataset or label"),
    409: inUse,
  },
});

/** `/v1/datasets`: labelled image sets to adapt on. */
export function datasetRoutes(
  { datasets, queue, limits }: { datasets: DatasetStore; queue: AdaptationQueue; limits: SampleLimits },
) {
  // A dataset's samples change only while no job reads it (the queue's rule); a missing one is 404 first.
  const whenIdle = async <T>(id: string, change: () => Promise<T>) => {
    await datasets.get(id);
    return await queue.changeDataset(id, change);
  };
  return newRouter()
    .openapi(create, async (c) => c.json(await datasets.create(c.req.valid("json").name), 201))
    .openapi(
      list,
      async (c) => c.json({ datasets: await datasets.list(), corrupt: await datasets.corrupt() }, 200),
    )
    .openapi(get, async (c) => c.json(await datasets.get(c.req.valid("param").id), 200))
    .openapi(
      rename,
      async (c) => c.json(await datasets.rename(c.req.valid("param").id, c.req.valid("json").name), 200),
    )
    .openapi(
      listSamples,
      async (c) => c.json({ samples: await datasets.samples(c.req.valid("param").id) }, 200),
    )
    .openapi(sampleImage, async (c) => {
      const { id, sample } = c.req.valid("param");
      const { bytes, format } = await datasets.readSample(id, sample, { maxSide: c.req.valid("query").size });
      return new Response(bytes as Uint8Array<ArrayBuffer>, {
        headers: {
          "content-type": `image/${format}`,
          "cache-control": "private, max-age=86400, immutable",
        },
      });
    })
    .openapi(removeSample, async (c) => {
      const { id, sample } = c.req.valid("param");
      return c.json(await whenIdle(id, () => datasets.deleteSample(id, sample)), 200);
    })
    .openapi(renameLabel, async (c) => {
      const { id, label } = c.req.valid("param");
      const { name } = c.req.valid("json");
      return c.json(await whenIdle(id, () => datasets.relabel(id, label, name)), 200);
    })
    .openapi(removeLabel, async (c) => {
      const { id, label } = c.req.valid("param");
      return c.json(await whenIdle(id, () => datasets.deleteLabel(id, label)), 200);
    })
    .openapi(remove, async (c) => {
      const { id } = c.req.valid("param");
      // Not whenIdle: a corrupt dataset, which cannot be read, must still be deletable.
      await queue.changeDataset(id, () => datasets.delete(id));
      return c.body(null, 204);
    })
    .openapi(addSamples, async (c) => {
      const { id } = c.req.valid("param");
      await datasets.get(id);
      // The multipart half of this route's body is a plain schema, so the JSON half is typed loosely.
      const uploads = isMultipart(c)
        ? await samplesFromMultipart(c)
        : samplesFromJson(c.req.valid("json" as never) as z.infer<typeof SamplesJson>);
      const unlabelled = c.req.valid("query").unlabelled === "true";
      const valid = await validateSamples(uploads, limits, { unlabelled });
      const dataset = await datasets.add(id, valid);
      return c.json({
        id,
        added: valid.length,
        addedCounts: countLabels(valid.flatMap((s) => (s.label === null ? [] : [s.label]))),
        sampleCount: dataset.sampleCount,
        counts: dataset.counts,
        unlabelled: dataset.unlabelled,
      }, 201);
    });
}
