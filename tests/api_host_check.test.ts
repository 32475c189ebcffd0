// DNS rebinding and the token check: which requests a server answers, by the host they address and by
// method and route.
import assert from "node:assert/strict";
import { openTestApp } from "./_api.ts";

const TOKEN = "test-token-0123456789abcdef";

async function errorOf(res: Response) {
  const body = await res.json();
  assert.ok(body.error, `expected an error body, got ${JSON.stringify(body)}`);
  return body.error as { code: string; message: string; details: Record<string, unknown> };
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) => ({
  url,
  init: {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  },
});

Deno.test("without a token, a request addressed to another host is refused with host_not_allowed and changes nothing", async () => {
  const { app, json, close } = await openTestApp([], false);
  const { id } = await (await json("POST", "/v1/datasets", { name: "mine" })).json();
  const origin = { origin: "http://attacker.example" };
  const attempts = [
    post("http://attacker.example/v1/datasets", { name: "theirs" }, origin),
    { url: `http://attacker.example:8787/v1/datasets/${id}`, init: { method: "DELETE", headers: origin } },
    { url: "http://attacker.example/v1/datasets", init: { headers: origin } },
    { url: "http://127.0.0.1.nip.io/v1/datasets", init: {} },
  ];
  for (const { url, init } of attempts) {
    const res = await app.request(url, init);
    assert.equal(res.status, 403, url);
    const error = await errorOf(res);
    assert.equal(error.code, "host_not_allowed");
    assert.match(error.message, /DNS-rebinding/);
  }
  const listed = await (await json("GET", "/v1/datasets")).json();
  assert.deepEqual(listed.datasets.map((d: { name: string }) => d.name), ["mine"]);
  await close();
});

Deno.test("loopback names are answered on any port", async () => {
  const { app, close } = await openTestApp([], false);
  for (
    const base of ["http://localhost:9999", "http://127.0.0.1:8787", "http://[::1]:1234", "http://LOCALHOST."]
  ) {
    assert.equal((await app.request(`${base}/v1/datasets`)).status, 200, base);
  }
  await close();
});

Deno.test("--allowed-hosts adds names; with a token and no list any host is answered, with a list only those", async () => {
  const listed = await openTestApp(["--allowed-hosts", "box.local"], false);
  assert.equal((await listed.app.request("http://box.local:8787/v1/datasets")).status, 200);
  assert.equal((await listed.app.request("http://other.local/v1/datasets")).status, 403);
  await listed.close();

  const open = await openTestApp(["--api-token", TOKEN], false);
  assert.equal((await open.app.request("http://192.168.1.20:8787/v1/datasets")).status, 200);
  await open.close();

  const restricted = await openTestApp(["--api-token", TOKEN, "--allowed-hosts", "daft.example"], false);
  assert.equal((await restricted.app.request("http://daft.example/v1/datasets")).status, 200);
  assert.equal((await restricted.app.request("http://localhost/v1/datasets")).status, 200);
  assert.equal((await restricted.app.request("http://192.168.1.20/v1/datasets")).status, 403);
  await restricted.close();
});

Deno.test("through a real socket, the Host header a browser sends decides", async () => {
  const { app, close } = await openTestApp([], false);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  const ask = async (host: string) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await conn.write(
      new TextEncoder().encode(`GET /v1/datasets HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    const text = await new Response(conn.readable).text();
    return Number(text.split(" ")[1]);
  };
  assert.equal(await ask("attacker.example"), 403);
  assert.equal(await ask(`localhost:${server.addr.port}`), 200);
  await server.shutdown();
  await close();
});

Deno.test("the token check matches method and route: predict is public only as POST on a model, not any path ending in /predict", async () => {
  const { app, close } = await openTestApp(["--api-token", TOKEN], false);
  const unauthorized = [
    { url: "/v1/models/active/predict", init: { method: "DELETE" } },
    { url: "/v1/models/active/predict", init: { method: "PUT" } },
    post("/v1/datasets/ds_0000000000000000/samples/predict", {}),
    post("/v1/models/active/predict/extra", {}),
    post("/v1/datasets", { name: "x" }),
  ];
  for (const { url, init } of unauthorized) {
    const res = await app.request(url, init);
    assert.equal(res.status, 401, `${init.method} ${url}`);
  }
  const predict = await app.request("/v1/models/active/predict", post("", { images: ["AAAA"] }).init);
  assert.notEqual(predict.status, 401, "a prediction needs no token");
  assert.equal((await app.request("/v1/datasets")).status, 200, "reads need no token");
  await close();
});
