import { Hono } from "hono";
import swaggerUiBundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import swaggerUiCss from "swagger-ui-dist/swagger-ui.css" with { type: "text" };

// Swagger UI's assets come from the npm package through the import map, embedded as text at load time: the
// docs work with no network and need no file-system permission.
const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>daft-edge API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>`;

const INIT = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#ui",
  deepLinking: true,
  persistAuthorization: true,
});`;

const js = { "content-type": "text/javascript; charset=utf-8", "cache-control": "public, max-age=3600" };

/** `/docs`: interactive API documentation (Swagger UI, served offline) of `/openapi.json`. */
export function docsRoutes(): Hono {
  return new Hono()
    .get("/", (c) => c.html(PAGE))
    .get("/init.js", (c) => c.body(INIT, 200, js))
    .get("/swagger-ui-bundle.js", (c) => c.body(swaggerUiBundle, 200, js))
    .get(
      "/swagger-ui.css",
      (c) =>
        c.body(swaggerUiCss, 200, {
          "content-type": "text/css; charset=utf-8",
          "cache-control": "public, max-age=3600",
        }),
    );
}
