import { MAX_URL_LENGTH } from "./_error_handler.ts";

interface Operation {
  requestBody?: unknown;
  responses?: Record<string, unknown>;
  security?: unknown;
}

const error = (description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});

/**
 * Adds to each operation of an OpenAPI document the answers the app's middleware can give before its
 * handler runs, so the document lists every status a client can get: 414 (a URL over the limit), 403 (a
 * Host not allowed, or on a protected operation a cross-site form post) and 500 (a corrupt stored item, or a
 * bug) on every operation; 400 (an unparseable body), 413 and 415 on those with a body; and on the ones
 * `isProtected` names, the bearer-token security requirement, 401 (token missing or wrong, when the server
 * has one) and 507 (the disk is full).
 *
 * @example
 * ```ts
 * import { completeResponses } from "./_openapi_responses.ts";
 * const doc = { paths: { "/v1/datasets": { post: { requestBody: {}, responses: {} } } } };
 * completeResponses(doc, (method) => method === "POST");
 * console.assert("401" in doc.paths["/v1/datasets"].post.responses);
 * ```
 */
export function completeResponses(
  document: { paths?: Record<string, unknown> },
  isProtected: (method: string, path: string) => boolean,
): void {
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(item as Record<string, Operation>)) {
      const responses = operation.responses ??= {};
      responses["414"] ??= error(`The URL is over ${MAX_URL_LENGTH} characters (uri_too_long)`);
      responses["500"] ??= error(
        "A stored item this operation reads is corrupt and was moved aside (dataset_corrupt, model_corrupt), " +
          "or a bug (internal)",
      );
      responses["403"] ??= error(
        "The request's Host names a host the server does not answer (host_not_allowed: the DNS-rebinding " +
          "guard), or, where a token protects the operation, a cross-site form post from a browser (forbidden)",
      );
      if (operation.requestBody) {
        responses["400"] ??= error("The body cannot be parsed (malformed_request, invalid_multipart)");
        responses["413"] ??= error("The body is over the server's limit (body_too_large)");
        responses["415"] ??= error("The body's Content-Type is not one this operation reads");
      }
      if (isProtected(method.toUpperCase(), path)) {
        operation.security = [{ bearerAuth: [] }];
        responses["507"] ??= error(
          "The data directory's disk is full; nothing was changed (insufficient_storage)",
        );
        responses["401"] ??= error(
          "The server has an API token and the request carries none (unauthorized), a malformed " +
            "Authorization header (invalid_authorization) or a wrong token (invalid_token)",
        );
      }
    }
  }
}
