import type { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { csrf } from "hono/csrf";
import { logger } from "hono/logger";
import { secureHeaders } from "hono/secure-headers";
import { RuntimeError } from "../src/errors.ts";
import type { Runtime } from "../src/runtime.ts";
import { needsToken, requireTokenForChanges } from "./_auth.ts";
import { onError, onNotFound, refuseLongUrls } from "./_error_handler.ts";
import { allowHosts } from "./_host_check.ts";
import { completeResponses } from "./_openapi_responses.ts";
import { newRouter } from "./_router.ts";
import { adaptationRoutes } from "./adaptations.ts";
import { datasetRoutes } from "./datasets.ts";
import { docsRoutes } from "./docs.ts";
import { healthRoutes } from "./health.ts";
import { infoRoutes } from "./info.ts";
import { modelRoutes } from "./models.ts";
import { predictionRoutes } from "./predictions.ts";
import { webRoutes } from "./web.ts";

/** What the app is built from. */
export interface AppDeps {
  /** The server's state (stores, queue, predictions, readiness), from `openRuntime`. */
  runtime: Runtime;
  /** Log each request with Hono's logger; default true. */
  logRequests?: boolean;
}

/**
 * The HTTP API as one Hono app, composed of one sub-app per resource. Tests call `app.request(...)` on it;
 * `main.ts` serves `app.fetch`.
 *
 * Middleware, in order: request log, the `Host` allow-list (DNS-rebinding guard: loopback names only
 * without an API token, plus `config.allowedHosts`), secure headers, CORS for the tfjs artifacts (so a page
 * elsewhere can `tf.loadLayersModel` them), CSRF origin check for form posts, bearer token on every request
 * but reads and predictions when `config.apiToken` is set, and the body size limit.
 *
 * @example
 * ```ts
 * import { createApp } from "./app.ts";
 * import { openRuntime } from "../src/runtime.ts";
 * import { loadConfig } from "../src/config.ts";
 * const result = loadConfig(["--data-dir", await Deno.makeTempDir()], () => undefined);
 * if (!result.help) {
 *   const runtime = await openRuntime(result.config);
 *   const res = await createApp({ runtime, logRequests: false }).request("/healthz");
 *   console.assert(res.status === 200);
 *   await runtime.close();
 * }
 * ```
 */
export function createApp(deps: AppDeps): OpenAPIHono {
  const { runtime } = deps;
  const { config } = runtime;
  const app = newRouter();
  if (deps.logRequests ?? true) app.use(logger());
  app.use(allowHosts({ allowed: config.allowedHosts, anyByDefault: config.apiToken !== undefined }));
  app.use(secureHeaders());
  app.use(refuseLongUrls);
  app.use("/v1/models/:id/tfjs/*", cors({ origin: "*", allowMethods: ["GET", "HEAD"] }));
  // Hono's csrf() refuses form posts without an Origin or Sec-Fetch-Site header; curl and scripts send neither
  // and cannot be forged into sending a cross-site request, so only browser requests are checked.
  const csrfCheck = csrf();
  app.use((c, next) =>
    c.req.header("origin") || c.req.header("sec-fetch-site") ? csrfCheck(c, next) : next()
  );
  if (config.apiToken) app.use("/v1/*", requireTokenForChanges(config.apiToken));
  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: config.maxBodyBytes,
      onError: () => {
        throw new RuntimeError(
          "too_large",
          "body_too_large",
          `the request body is over the limit of ${config.maxBodyBytes} bytes`,
          { maxBodyBytes: config.maxBodyBytes },
        );
      },
    }),
  );

  const { datasets, models, queue, predictions, transfer } = runtime;
  app.route("/", healthRoutes(runtime.readiness));
  app.route("/v1/info", infoRoutes(() => runtime.info()));
  app.route("/v1/datasets", datasetRoutes({ datasets, queue, limits: config }));
  app.route("/v1/adaptations", adaptationRoutes(queue, runtime.submitAdaptation));
  app.route("/v1/models", modelRoutes({ models, predictions, transfer }));
  app.route("/v1/models", predictionRoutes(predictions));
  app.route("/docs", docsRoutes());
  app.route("/", webRoutes());

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "The server's API token. Required on mutating endpoints when the server has one.",
  });
  app.get("/openapi.json", (c) => {
    const document = app.getOpenAPIDocument({
      openapi: "3.0.3",
      info: {
        title: "daft-edge",
        version: runtime.info().version,
        description:
          "Few-shot adaptation (DAFT) of image classifiers on the edge, and predictions from the " +
          "adapted models.",
      },
    });
    completeResponses(document, needsToken);
    return c.json(document);
  });

  app.onError(onError);
  app.notFound(onNotFound);
  return app;
}
