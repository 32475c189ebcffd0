import { Hono } from "hono";
import page from "../web/index.html" with { type: "text" };

/** `/`: the browser console (web/index.html), which drives the same HTTP API as everyone else. */
export function webRoutes(): Hono {
  return new Hono().get("/", (c) => c.html(page));
}
