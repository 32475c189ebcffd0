import { createRoute, z } from "@hono/zod-openapi";
import type { PredictionService } from "../src/serve/prediction_service.ts";
import { bytesFromBase64, imagesFromMultipart, isMultipart, MAX_TOP_K, parseTopK } from "./_image_input.ts";
import { bodyRoute, newRouter } from "./_router.ts";
import { Base64Image, errorResponse, jsonResponse, PredictionResultSchema } from "./_schemas.ts";

const tags = ["predictions"];

const ModelRef = z.object({
  id: z.string().min(1).openapi({
    param: { name: "id", in: "path" },
    description: "a model id, or `active`",
    example: "active",
  }),
});

const TopKQuery = z.string().optional().openapi({
  description: `how many labels to list per image, 1 to ${MAX_TOP_K} (default 3)`,
  example: "3",
});

// `images` may be absent or empty here, so that a request without images gets `no_images` (400) as in
// multipart.
const PredictJson = z.object({
  images: z.array(Base64Image).optional(),
  topK: z.number().int().min(1).max(MAX_TOP_K).optional(),
}).strict();

const errors = {
  400: errorResponse("No image, a corrupt one (details.index names it), or a bad topK"),
  404: errorResponse("No such model"),
  413: errorResponse("Body, image or image count over the limit"),
  415: errorResponse(
    "Not an image format the server decodes (JPEG, PNG, WebP, GIF, AVIF, TIFF), or a body neither JSON nor multipart",
  ),
  422: errorResponse("Invalid body, or a field it does not know (unknown_field)"),
  503: errorResponse("No model is active, or the backend is not ready"),
};

const predictPost = bodyRoute({
  method: "post",
  path: "/{id}/predict",
  tags,
  summary: "Predict labels for a batch of images",
  description:
    "multipart/form-data with repeated `image` file fields (and an optional `topK` field), or JSON " +
    "`{images: [base64, ...], topK?}`. Predictions come back in input order.",
  request: {
    params: ModelRef,
    query: z.object({ topK: TopKQuery }),
    body: {
      content: {
        "application/json": { schema: PredictJson },
        "multipart/form-data": {
          schema: {
            type: "object",
            properties: {
              image: { type: "array", items: { type: "string", format: "binary" } },
              topK: { type: "integer" },
            },
          },
        },
      },
    },
  },
  responses: { 200: jsonResponse(PredictionResultSchema, "One prediction per image"), ...errors },
});

const predictGet = createRoute({
  method: "get",
  path: "/{id}/predict",
  tags,
  summary: "Predict the label of one small image given in the URL",
  description: "For a browser address bar or curl: `?image=<base64url of an image file>&topK=3`.",
  request: {
    params: ModelRef,
    query: z.object({
      image: z.string().min(1).openapi({
        description: "base64url of an image file (JPEG, PNG, WebP, GIF, AVIF, TIFF)",
      }),
      topK: TopKQuery,
    }),
  },
  responses: {
    200: jsonResponse(PredictionResultSchema, "The prediction"),
    ...errors,
    414: errorResponse("The URL is over 16 KiB: send the image in a POST body"),
  },
});

/** `/v1/models/{id}/predict`: predictions from a model or the active one. */
export function predictionRoutes(predictions: PredictionService) {
  return newRouter()
    .openapi(predictPost, async (c) => {
      const { id } = c.req.valid("param");
      const query = c.req.valid("query");
      let images: Uint8Array[];
      let topK = query.topK === undefined ? undefined : parseTopK(query.topK);
      if (isMultipart(c)) {
        const form = await imagesFromMultipart(c);
        images = form.images;
        topK = form.topK ?? topK;
      } else {
        const body = c.req.valid("json" as never) as Partial<z.infer<typeof PredictJson>>;
        images = (body.images ?? []).map((text, i) => bytesFromBase64(text, "images", i));
        topK = body.topK ?? topK;
      }
      return c.json(await predictions.predict(id, images, topK ?? 3), 200);
    })
    .openapi(predictGet, async (c) => {
      const { id } = c.req.valid("param");
      const { image, topK } = c.req.valid("query");
      const bytes = bytesFromBase64(image, "images", 0);
      return c.json(await predictions.predict(id, [bytes], topK === undefined ? 3 : parseTopK(topK)), 200);
    });
}
