import { Hono } from "hono";
import adaptPanel from "../web/adapt_panel.js" with { type: "text" };
import api from "../web/api.js" with { type: "text" };
import camera from "../web/camera.js" with { type: "text" };
import charts from "../web/charts.js" with { type: "text" };
import comparePanel from "../web/compare_panel.js" with { type: "text" };
import css from "../web/console.css" with { type: "text" };
import dataPanel from "../web/data_panel.js" with { type: "text" };
import dom from "../web/dom.js" with { type: "text" };
import driftPanel from "../web/drift_panel.js" with { type: "text" };
import favicon from "../web/favicon.svg" with { type: "text" };
import page from "../web/index.html" with { type: "text" };
import main from "../web/main.js" with { type: "text" };
import modelsPanel from "../web/models_panel.js" with { type: "text" };
import resultsPanel from "../web/results_panel.js" with { type: "text" };
import state from "../web/state.js" with { type: "text" };
import verdict from "../web/verdict.js" with { type: "text" };

const JS = "text/javascript; charset=utf-8";

/** The console's modules, by file name under `/console/`. They are part of the binary: nothing is fetched. */
const MODULES: Record<string, string> = {
  "adapt_panel.js": adaptPanel,
  "api.js": api,
  "camera.js": camera,
  "charts.js": charts,
  "compare_panel.js": comparePanel,
  "data_panel.js": dataPanel,
  "dom.js": dom,
  "drift_panel.js": driftPanel,
  "main.js": main,
  "models_panel.js": modelsPanel,
  "results_panel.js": resultsPanel,
  "state.js": state,
  "verdict.js": verdict,
};

/**
 * `/`: the browser console (web/), which drives the same HTTP API as everyone else. Every asset it uses is
 * served here, so it works offline; `/favicon.ico` answers too, so a browser's guess logs no 404.
 *
 * @example
 * ```ts
 * import { webRoutes } from "./web.ts";
 * const res = await webRoutes().request("/console/main.js");
 * console.assert(res.headers.get("content-type")?.startsWith("text/javascript"));
 * ```
 */
export function webRoutes(): Hono {
  const asset = (body: string, type: string) => () =>
    new Response(body, { headers: { "content-type": type, "cache-control": "no-cache" } });
  const svg = asset(favicon, "image/svg+xml");
  return new Hono()
    .get("/", (c) => c.html(page))
    .get("/console.css", asset(css, "text/css; charset=utf-8"))
    .get("/favicon.svg", svg)
    .get("/favicon.ico", svg)
    .get("/console/:file", (c) => {
      const body = MODULES[c.req.param("file")];
      return body === undefined ? c.notFound() : asset(body, JS)();
    });
}
