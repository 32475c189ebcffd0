// Models that travel: two servers on loopback ports, each with its own data directory and API token, as two
// edge boxes would run. A model adapted on one is exported, imported on the other (uploaded, and pulled from
// the peer by URL), and answers the same images with the same predictions.
import assert from "node:assert/strict";
import { createTar, parseTar } from "nanotar";
import { createApp } from "../routes/app.ts";
import { loadConfig } from "../src/config.ts";
import { openRuntime } from "../src/runtime.ts";
import { sha256Hex } from "../src/store/model_archive.ts";
import { FIXTURES, testBackend } from "./_setup.ts";

const TOKEN_A = "token-of-box-a-0123456789";
const TOKEN_B = "token-of-box-b-0123456789";
const DIGITS = ["0", "1", "7"];
const digitFiles = (d: string) => [...Deno.readDirSync(`${FIXTURES}digits/${d}`)].map((e) => e.name).sort();

async function startBox(token: string, peers: string[] = []) {
  const backend = await testBackend();
  const dataDir = await Deno.makeTempDir({ prefix: "daft-box-" });
  const loaded = loadConfig(
    [
      ...["--data-dir", dataDir, "--default-backbone", "tiny", "--backend", backend.policy],
      ...["--hostname", "127.0.0.1", "--api-token", token, "--peers", peers.join(",")],
    ],
    () => undefined,
  );
  if (loaded.help) throw new Error("unreachable");
  const runtime = await openRuntime(loaded.config);
  await runtime.bringUp(backend);
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    createApp({
      runtime,
      logRequests: false,
    }).fetch,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const send = (
    method: string,
    path: string,
    init: { body?: BodyInit | Uint8Array; type?: string; auth?: boolean } = {},
  ) =>
    fetch(`${base}${path}`, {
      method,
      body: init.body as BodyInit,
      headers: {
        ...(init.type ? { "content-type": init.type } : {}),
        ...(init.auth === false ? {} : { authorization: `Bearer ${token}` }),
      },
    });
  const sendJson = (method: string, path: string, body: unknown) =>
    send(method, path, { body: JSON.stringify(body), type: "application/json" });
  const stop = async () => {
    await runtime.close();
    await server.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  };
  return { base, host: `127.0.0.1:${server.addr.port}`, send, sendJson, stop };
}

type Box = Awaited<ReturnType<typeof startBox>>;

async function adaptOn(box: Box): Promise<string> {
  const { id: dataset } = await (await box.sendJson("POST", "/v1/datasets", { name: "digits" })).json();
  const form = new FormData();
  for (const d of DIGITS) {
    for (const name of digitFiles(d).slice(0, 8)) {
      form.append("label", d);
      form.append("image", new Blob([Deno.readFileSync(`${FIXTURES}digits/${d}/${name}`)]), name);
    }
  }
  assert.equal((await box.send("POST", `/v1/datasets/${dataset}/samples`, { body: form })).status, 201);
  const job = await (await box.sendJson("POST", "/v1/adaptations", { dataset, epochs: 3, seed: 3 })).json();
  await (await box.send("GET", `/v1/adaptations/${job.id}/events`)).text();
  const done = await (await box.send("GET", `/v1/adaptations/${job.id}`)).json();
  assert.equal(done.status, "succeeded", JSON.stringify(done.error));
  return done.modelId;
}

async function predict(box: Box, model: string) {
  const form = new FormData();
  for (const d of DIGITS) {
    for (const name of digitFiles(d).slice(16, 20)) {
      form.append("image", new Blob([Deno.readFileSync(`${FIXTURES}digits/${d}/${name}`)]), name);
    }
  }
  const res = await box.send("POST", `/v1/models/${model}/predict?topK=3`, { body: form });
  assert.equal(res.status, 200);
  return (await res.json()).predictions;
}

async function errorOf(res: Response) {
  const body = await res.json();
  assert.ok(body.error, `expected an error body, got ${JSON.stringify(body)}`);
  return body.error as { code: string; message: string; details: Record<string, unknown> };
}

/** The archive's members as a plain tar after `change`, with the manifest's hashes brought up to date. */
async function rewritten(archive: Uint8Array, change: (name: string, data: Uint8Array) => Uint8Array) {
  const tar = new Uint8Array(
    await new Response(
      new Blob([archive as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
        new DecompressionStream("gzip"),
      ),
    ).arrayBuffer(),
  );
  const members = parseTar(tar).map((m) => ({ name: m.name, data: change(m.name, m.data!) }));
  const manifest = JSON.parse(new TextDecoder().decode(members[0].data));
  for (const entry of manifest.files) {
    const data = members.find((m) => m.name === entry.name)!.data;
    Object.assign(entry, { bytes: data.byteLength, sha256: await sha256Hex(data) });
  }
  members[0].data = new TextEncoder().encode(JSON.stringify(manifest));
  return createTar(members);
}

Deno.test("a model adapted on one box, imported on another, gives identical predictions; bad imports are refused", async (t) => {
  const a = await startBox(TOKEN_A);
  const b = await startBox(TOKEN_B, [] as string[]);
  const peerB = await startBox(TOKEN_B, [a.host]);
  try {
    const model = await adaptOn(a);
    let archive = new Uint8Array();

    await t.step("the export needs the box's token, and is a gzipped tar named after the model", async () => {
      assert.equal(
        (await errorOf(await a.send("GET", `/v1/models/${model}/export`, { auth: false }))).code,
        "unauthorized",
      );
      const res = await a.send("GET", `/v1/models/${model}/export`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/gzip");
      assert.match(res.headers.get("content-disposition")!, new RegExp(`${model}\\.tar\\.gz`));
      archive = new Uint8Array(await res.arrayBuffer());
      assert.deepEqual([...archive.subarray(0, 2)], [0x1f, 0x8b]);
    });

    await t.step(
      "an uploaded archive is stored under its id, not active, and predicts as on its own box",
      async () => {
        const res = await b.send("POST", "/v1/models/import", { body: archive, type: "application/gzip" });
        assert.equal(res.status, 201, JSON.stringify(await res.clone().json()));
        const imported = await res.json();
        assert.equal(imported.model.id, model);
        assert.equal(imported.model.active, false);
        assert.equal(imported.model.imported.from, "upload");
        assert.equal(imported.manifest.runtime.name, "@daft/edge");
        assert.deepEqual(await predict(b, model), await predict(a, model));
      },
    );

    await t.step("importing a model that is already there is a conflict", async () => {
      const res = await b.send("POST", "/v1/models/import", { body: archive, type: "application/gzip" });
      assert.equal(res.status, 409);
      assert.equal((await errorOf(res)).code, "model_exists");
    });

    await t.step("a box pulls the model from a peer's export URL with that peer's token", async () => {
      const url = `${a.base}/v1/models/${model}/export`;
      const denied = await peerB.sendJson("POST", "/v1/models/import", { url });
      assert.equal(denied.status, 502);
      assert.deepEqual([(await errorOf(denied)).code], ["peer_error"]);
      const res = await peerB.sendJson("POST", "/v1/models/import", { url, token: TOKEN_A });
      assert.equal(res.status, 201, JSON.stringify(await res.clone().json()));
      assert.equal((await res.json()).model.imported.from, url);
      assert.deepEqual(await predict(peerB, model), await predict(a, model));
    });

    await t.step("a URL on a host that is not a peer is refused before any connection", async () => {
      const res = await b.sendJson("POST", "/v1/models/import", {
        url: `${a.base}/v1/models/${model}/export`,
      });
      assert.equal(res.status, 403);
      const error = await errorOf(res);
      assert.equal(error.code, "peer_not_allowed");
      const notHttp = await peerB.sendJson("POST", "/v1/models/import", { url: `file:///etc/passwd` });
      assert.equal((await errorOf(notHttp)).code, "invalid_peer_url");
    });

    await t.step(
      "an archive whose weights were altered is refused as a hash mismatch, and nothing is stored",
      async () => {
        const c = await startBox(TOKEN_B);
        try {
          const tar = await rewritten(archive, (_name, data) => data);
          const members = parseTar(tar).map((m) => ({ name: m.name, data: m.data! }));
          const weights = members.find((m) => m.name === "weights.bin")!;
          weights.data = weights.data.slice();
          weights.data[100] ^= 0x40;
          const res = await c.send("POST", "/v1/models/import", {
            body: createTar(members),
            type: "application/x-tar",
          });
          assert.equal(res.status, 400);
          const error = await errorOf(res);
          assert.equal(error.code, "archive_hash_mismatch");
          assert.equal(error.details.name, "weights.bin");
          assert.deepEqual((await (await c.send("GET", "/v1/models")).json()).models, []);
        } finally {
          await c.stop();
        }
      },
    );

    await t.step(
      "a model whose backbone differs from this box's is refused, even with matching hashes",
      async () => {
        const c = await startBox(TOKEN_B);
        try {
          const tar = await rewritten(archive, (name, data) => {
            if (name !== "metadata.json") return data;
            const metadata = JSON.parse(new TextDecoder().decode(data));
            metadata.backbone.provenance.layersKept += 1;
            return new TextEncoder().encode(JSON.stringify(metadata));
          });
          const res = await c.send("POST", "/v1/models/import", { body: tar, type: "application/x-tar" });
          assert.equal(res.status, 400);
          const error = await errorOf(res);
          assert.equal(error.code, "incompatible_backbone");
          assert.deepEqual(error.details.differs, ["layersKept"]);
          assert.deepEqual((await (await c.send("GET", "/v1/models")).json()).models, []);
        } finally {
          await c.stop();
        }
      },
    );

    await t.step(
      "a model.json whose weights point out of the archive is refused before anything is read",
      async () => {
        const c = await startBox(TOKEN_B);
        try {
          const tar = await rewritten(archive, (name, data) => {
            if (name !== "model.json") return data;
            const json = JSON.parse(new TextDecoder().decode(data));
            json.weightsManifest[0].paths = ["../../../../etc/hostname"];
            return new TextEncoder().encode(JSON.stringify(json));
          });
          const res = await c.send("POST", "/v1/models/import", { body: tar, type: "application/x-tar" });
          assert.equal(res.status, 400);
          const error = await errorOf(res);
          assert.equal(error.code, "invalid_archive");
          assert.match(error.message, /weight file/);
          assert.deepEqual((await (await c.send("GET", "/v1/models")).json()).models, []);
        } finally {
          await c.stop();
        }
      },
    );

    await t.step("a body that is no archive, or of another type, is refused with its code", async () => {
      const junk = await b.send("POST", "/v1/models/import", {
        body: "not an archive",
        type: "application/gzip",
      });
      assert.equal(junk.status, 400);
      assert.equal((await errorOf(junk)).code, "invalid_archive");
      const text = await b.send("POST", "/v1/models/import", { body: "x", type: "text/plain" });
      assert.equal(text.status, 415);
      assert.equal((await errorOf(text)).code, "unsupported_media_type");
      const anonymous = await b.send("POST", "/v1/models/import", { body: archive, auth: false });
      assert.equal(anonymous.status, 401);
    });
  } finally {
    await a.stop();
    await b.stop();
    await peerB.stop();
  }
});
