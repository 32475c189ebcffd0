import assert from "node:assert/strict";
import { webRoutes } from "../routes/web.ts";

const WEB = new URL("../web/", import.meta.url).pathname;

Deno.test("every module in web/ is served under /console/ as JavaScript", async () => {
  const app = webRoutes();
  const modules = [...Deno.readDirSync(WEB)].map((e) => e.name).filter((n) => n.endsWith(".js"));
  assert.ok(modules.includes("main.js"));
  for (const name of modules) {
    const res = await app.request(`/console/${name}`);
    assert.equal(res.status, 200, name);
    assert.match(res.headers.get("content-type") ?? "", /^text\/javascript/);
    assert.equal(await res.text(), await Deno.readTextFile(`${WEB}${name}`));
  }
});

Deno.test("every relative import of the console's modules names a served module", async () => {
  const app = webRoutes();
  for (const entry of Deno.readDirSync(WEB)) {
    if (!entry.name.endsWith(".js")) continue;
    const source = await Deno.readTextFile(`${WEB}${entry.name}`);
    for (const [, target] of source.matchAll(/from "\.\/([^"]+)"/g)) {
      assert.equal((await app.request(`/console/${target}`)).status, 200, `${entry.name} imports ${target}`);
    }
  }
});

Deno.test("the page, its style sheet and its icon are served, and /favicon.ico answers too", async () => {
  const app = webRoutes();
  const page = await (await app.request("/")).text();
  for (const path of ["/console.css", "/favicon.svg", "/console/main.js"]) {
    assert.ok(page.includes(path), path);
  }
  assert.match((await app.request("/console.css")).headers.get("content-type") ?? "", /^text\/css/);
  assert.equal((await app.request("/favicon.ico")).headers.get("content-type"), "image/svg+xml");
});

Deno.test("an unknown console file is a 404", async () => {
  const res = await webRoutes().request("/console/../deno.json");
  assert.equal(res.status, 404);
  assert.equal((await webRoutes().request("/console/nope.js")).status, 404);
});
