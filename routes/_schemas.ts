import { z } from "@hono/zod-openapi";

/** `{"error": {"code", "message", "details"}}`, the body of every failure. */
export const ErrorSchema = z.object({
  error: z.object({
    code: z.string().openapi({ example: "dataset_not_found" }),
    message: z.string(),
    details: z.record(z.string(), z.unknown()),
  }),
}).openapi("Error");

/** A JSON error response, for a route's `responses`. */
export const errorResponse = (description: string) => ({
  content: { "application/json": { schema: ErrorSchema } },
  description,
});

/** A JSON success response, for a route's `responses`. */
export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

/** The `{id}` path parameter. */
export const IdParam = z.object({
  id: z.string().min(1).openapi({ param: { name: "id", in: "path" }, example: "ds_mh3k2x1q9f4a7b2c" }),
});

/** Samples per label. */
export const CountsSchema = z.record(z.string(), z.number().int()).openapi({ example: { "3": 12, "7": 12 } });

export const DatasetSchema = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  sampleCount: z.number().int(),
  counts: CountsSchema,
  unlabelled: z.number().int().openapi({
    description: "samples without a label (for bn-refresh; labelled adaptation ignores them)",
  }),
}).openapi("Dataset");

export const CorruptItemSchema = z.object({
  id: z.string(),
  file: z.string().openapi({ description: "the unreadable record, relative to the data directory" }),
  code: z.string().openapi({ example: "dataset_corrupt" }),
  message: z.string(),
}).openapi("CorruptItem", {
  description: "A stored item whose record could not be read; it was moved aside and can only be deleted",
});

export const EpochSchema = z.object({
  epoch: z.number().int(),
  trainLoss: z.number(),
  trainAccuracy: z.number(),
  valAccuracy: z.number(),
  lrHead: z.number(),
  lrBackbone: z.number(),
  seconds: z.number(),
}).openapi("Epoch");

export const JobSchema = z.object({
  id: z.string(),
  status: z.enum(["queued", "running", "succeeded", "failed", "cancelled"]),
  request: z.record(z.string(), z.unknown()).openapi({
    description: "dataset, backbone, method, and the hyperparameters given",
  }),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  cancelRequested: z.boolean().optional(),
  progress: z.object({
    phase: z.string(),
    epoch: z.number().int().optional(),
    epochs: z.number().int().optional(),
    step: z.number().int().optional(),
    steps: z.number().int().optional(),
    loss: z.number().optional(),
    fraction: z.number(),
  }).optional(),
  history: z.array(EpochSchema),
  dataset: z.object({ id: z.string(), name: z.string(), counts: CountsSchema }).optional(),
  metrics: z.record(z.string(), z.unknown()).optional().openapi({
    description: "valAccuracy, bestEpoch, history, validation {accuracy, perClassAccuracy, confusion}, " +
      "baseline (the linear probe on the same split: valAccuracy, l2, validation), guard {verdict, chance, " +
      "margin, message}, " +
      "distortion (feature distortion), parameterChange, bnConversion (the BN conversion report), classNames",
  }),
  modelId: z.string().optional(),
  activated: z.boolean().optional(),
  activationSkipped: z.object({
    code: z.enum(["at_chance", "below_baseline", "too_few_images", "collapsed"]),
    message: z.string(),
  })
    .optional()
    .openapi({ description: "why the guard kept the new model from being activated" }),
  activationError: z.object({
    code: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()),
  })
    .optional(),
  error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()) })
    .optional(),
  retryOf: z.string().optional(),
}).openapi("Adaptation");

export const ModelSchema = z.object({
  id: z.string(),
  createdAt: z.string(),
  jobId: z.string(),
  dataset: z.object({ id: z.string(), name: z.string() }),
  backbone: z.string(),
  method: z.string(),
  classNames: z.array(z.string()),
  input: z.object({
    height: z.number().int(),
    width: z.number().int(),
    channels: z.number().int(),
    range: z.array(z.number()),
  }),
  valAccuracy: z.number(),
  active: z.boolean(),
  imported: z.object({ at: z.string(), from: z.string(), runtime: z.string() }).optional().openapi({
    description: "set on a model imported from another server: when, from where (a peer URL or `upload`), " +
      "and the runtime that exported it",
  }),
}).openapi("Model");

export const ModelDetailSchema = ModelSchema.extend({
  metadata: z.record(z.string(), z.unknown()).openapi({
    description:
      "the model's metadata.json: method, hyperparameters, metrics, bnConversion, backbone provenance",
  }),
  files: z.array(z.string()),
  tfjs: z.string().openapi({ description: "URL of model.json, for tf.loadLayersModel" }),
}).openapi("ModelDetail");

export const PredictionSchema = z.object({
  label: z.string(),
  score: z.number(),
  topK: z.array(z.object({ label: z.string(), score: z.number() })),
}).openapi("Prediction");

export const PredictionResultSchema = z.object({
  model: z.string().openapi({ description: "id of the model that answered" }),
  predictions: z.array(PredictionSchema),
}).openapi("PredictionResult");

/** Base64 of an image file (JPEG, PNG, WebP, GIF, AVIF, TIFF); a `data:image/...;base64,` prefix is accepted. */
export const Base64Image = z.string().min(1).openapi({
  description:
    "base64 (or base64url) of an image file (JPEG, PNG, WebP, GIF, AVIF, TIFF); a data: URL prefix is accepted",
});

export const DriftEventSchema = z.object({
  type: z.enum(["drift", "recovered"]),
  modelId: z.string(),
  at: z.string(),
  score: z.number(),
  threshold: z.number(),
  samples: z.number().int(),
}).openapi("DriftEvent");

const TrafficSchema = z.object({
  images: z.number().int(),
  maxImages: z.number().int(),
  bytes: z.number().int(),
}).nullable().openapi({
  description:
    "served images of this model kept for a bn-refresh from traffic (`source: traffic`); null when " +
    "the server keeps none (--keep-traffic 0, the default)",
});

export const DriftSchema = z.union([
  z.object({
    modelId: z.string(),
    monitored: z.literal(true),
    score: z.number().nullable().openapi({
      description: "mean over the watched layers of the per-channel Jeffreys divergence between the window " +
        "and the adaptation images (0: same; 1: channel means moved by about one standard deviation); null " +
        "until the window holds window.minSamples images. Scale and measured values: docs/DRIFT.md",
    }),
    threshold: z.number(),
    alert: z.boolean().openapi({ description: "score at or over the threshold" }),
    window: z.object({ size: z.number().int(), samples: z.number().int(), minSamples: z.number().int() }),
    confidence: z.object({ reference: z.number(), window: z.number().nullable() }).openapi({
      description: "mean top-1 probability on the adaptation images and over the window",
    }),
    layers: z.array(z.object({
      layer: z.string(),
      score: z.number(),
      worstChannel: z.number().int(),
      worstScore: z.number(),
    })),
    history: z.array(z.object({
      at: z.string(),
      score: z.number(),
      samples: z.number().int(),
      confidence: z.number(),
    })),
    events: z.array(DriftEventSchema),
    reference: z.object({ samples: z.number().int() }),
    traffic: TrafficSchema,
  }),
  z.object({
    modelId: z.string(),
    monitored: z.literal(false),
    reason: z.enum(["monitor_off", "no_reference"]),
    message: z.string(),
    traffic: TrafficSchema,
  }),
]).openapi("Drift");
