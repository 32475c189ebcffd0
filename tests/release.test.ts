// The release artifact end to end: `cli/release.ts` builds the tarball, which is unpacked in an empty
// directory and started through its launcher with a clean environment (no npm cache, an empty DENO_DIR, no
// HOME, a working directory without deno.json), so it can only serve from what the tarball holds.
import assert from "node:assert/strict";
import { join } from "node:path";
import denoJson from "../deno.json" with { type: "json" };
import { freePort, startRelease } from "../cli/_release_process.ts";
import { buildRelease } from "../cli/release.ts";
import { FIXTURES } from "./_setup.ts";

const TOKEN = "release-test-token-0123456789";
const DIGITS = ["0", "1", "7"];
const ARCH = Deno.build.arch === "x86_64" ? "x64" : "arm64";
const digitFiles = (d: string) => [...Deno.readDirSync(`${FIXTURES}digits/${d}`)].map((e) => e.name).sort();

async function exec(cmd: string, args: string[], options: Deno.CommandOptions = {}) {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", ...options }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("the release tarball, unpacked in a clean directory, serves, adapts and predicts with no npm, no DENO_DIR and no checkout", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "daft-release-test-" });
  try {
    const build = await buildRelease(ARCH, join(work, "dist"));
    const unpacked = join(work, "box");
    await Deno.mkdir(unpacked);
    assert.equal((await exec("tar", ["-xzf", build.archive, "-C", unpacked])).code, 0);
    const root = join(unpacked, `daft-edge-${denoJson.version}-linux-${ARCH}`);
    console.log(`release: ${build.archive.split("/").pop()} ${(build.bytes / 2 ** 20).toFixed(1)} MiB`);

    await t.step(
      "the archive holds Deno, the launcher, the bundles, wasm, weights, unit and installer",
      async () => {
        for (const file of ["bin/deno", "bin/daft-edge", "install.sh"]) {
          assert.ok(((await Deno.stat(join(root, file))).mode! & 0o111) !== 0, `${file} is executable`);
        }
        for (
          const file of [
            "lib/server/main.js",
            "lib/server/adaptation_worker.js",
            "lib/server/doctor.js",
            "lib/server/tfjs-backend-wasm-simd.wasm",
            "lib/server/tfjs-backend-wasm-threaded-simd.wasm",
            "fixtures/tiny/weights.bin",
            "share/systemd/daft-edge.service",
            "share/daft-edge.env",
            "VERSION",
          ]
        ) {
          assert.ok((await Deno.stat(join(root, file))).isFile, file);
        }
        const version = await exec(join(root, "bin", "deno"), ["--version"]);
        assert.match(version.stdout, new RegExp(`deno ${Deno.version.deno.replaceAll(".", "\\.")}`));
      },
    );

    const dataDir = join(work, "data");
    const port = freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = {
      PORT: String(port),
      LISTEN_HOSTNAME: "127.0.0.1",
      DATA_DIR: dataDir,
      API_TOKEN: TOKEN,
      DEFAULT_BACKBONE: "tiny",
      WASM_THREADS: "2",
    };
    const server = await startRelease({ root, env });
    const send = (method: string, path: string, body?: BodyInit, type?: string) =>
      fetch(`${base}${path}`, {
        method,
        body,
        headers: { authorization: `Bearer ${TOKEN}`, ...(type ? { "content-type": type } : {}) },
      });
    try {
      await t.step("it becomes ready, and its mutating endpoints need the token", async () => {
        const ms = await server.waitFor(`${base}/readyz`);
        console.log(
          `release: ready in ${(ms / 1000).toFixed(1)} s, ${
            (server.rssBytes() / 2 ** 20).toFixed(0)
          } MiB resident`,
        );
        const anonymous = await fetch(`${base}/v1/datasets`, { method: "POST", body: "{}" });
        assert.equal(anonymous.status, 401);
        await anonymous.body?.cancel();
      });

      let jobDataset = "";
      await t.step("it adapts the tiny backbone on uploaded digits and predicts held-out ones", async () => {
        const { id: dataset } =
          await (await send("POST", "/v1/datasets", JSON.stringify({ name: "d" }), "application/json"))
            .json();
        jobDataset = dataset;
        const form = new FormData();
        for (const d of DIGITS) {
          for (const name of digitFiles(d).slice(0, 8)) {
            form.append("label", d);
            form.append("image", new Blob([Deno.readFileSync(`${FIXTURES}digits/${d}/${name}`)]), name);
          }
        }
        assert.equal(
          (await (await send("POST", `/v1/datasets/${dataset}/samples`, form)).json()).sampleCount,
          24,
        );
        const job = await (await send(
          "POST",
          "/v1/adaptations",
          JSON.stringify({ dataset, epochs: 3, seed: 1 }),
          "application/json",
        )).json();
        await (await send("GET", `/v1/adaptations/${job.id}/events`)).text();
        const done = await (await send("GET", `/v1/adaptations/${job.id}`)).json();
        assert.equal(done.status, "succeeded", JSON.stringify(done.error));
        const images = new FormData();
        for (const d of DIGITS) {
          const name = digitFiles(d)[20];
          images.append("image", new Blob([Deno.readFileSync(`${FIXTURES}digits/${d}/${name}`)]), name);
        }
        const res = await send("POST", `/v1/models/${done.modelId}/predict`, images);
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(body.model, done.modelId);
        assert.equal(body.predictions.length, DIGITS.length);
        for (const p of body.predictions) assert.ok(DIGITS.includes(p.label) && p.score > 0 && p.score <= 1);
      });

      await t.step(
        "doctor, through the launcher and its narrowed permissions, finds no problem beside it",
        async () => {
          const scratch = join(work, "doctor");
          await Deno.mkdir(scratch);
          const doctor = await exec(join(root, "bin", "daft-edge"), ["doctor", "--json"], {
            clearEnv: true,
            cwd: scratch,
            env: { PATH: "/usr/bin:/bin", HOME: scratch, DENO_DIR: scratch, ...env },
          });
          assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
          const report = JSON.parse(doctor.stdout);
          assert.equal(report.ok, true);
          const byName = Object.fromEntries(report.checks.map((c: { name: string }) => [c.name, c]));
          assert.equal(byName.permissions.status, "ok", byName.permissions.summary);
          assert.deepEqual(byName.permissions.details.unrestricted, []);
          assert.match(byName.port.summary, /running daft-edge/);
          assert.equal(byName.backend.status, "ok");
        },
      );

      await t.step("SIGTERM fails the running job as interrupted, and the process exits 0", async () => {
        const job = await (await send(
          "POST",
          "/v1/adaptations",
          JSON.stringify({ dataset: jobDataset, epochs: 1000 }),
          "application/json",
        )).json();
        for (let i = 0; i < 400; i++) {
          if ((await (await send("GET", `/v1/adaptations/${job.id}`)).json()).status === "running") break;
          await new Promise((r) => setTimeout(r, 25));
        }
        Deno.kill(server.pid, "SIGTERM");
        assert.equal(await server.exited, 0, server.output());
        const record = JSON.parse(await Deno.readTextFile(join(dataDir, "jobs", `${job.id}.json`)));
        assert.equal(record.status, "failed");
        assert.equal(record.error.code, "interrupted");
      });
    } finally {
      try {
        Deno.kill(server.pid, "SIGKILL");
      } catch { /* already ended */ }
      await server.exited;
    }

    await t.step(
      "under the unit's environment, the launcher takes the token from the credential and keeps data in the state directory",
      async () => {
        const state = join(work, "state");
        const credentials = join(work, "credentials");
        await Deno.mkdir(state);
        await Deno.mkdir(credentials);
        await Deno.writeTextFile(join(credentials, "api-token"), `${TOKEN}\n`);
        const doctor = await exec(join(root, "bin", "daft-edge"), ["doctor", "--json"], {
          clearEnv: true,
          cwd: work,
          env: {
            PATH: "/usr/bin:/bin",
            PORT: String(freePort()),
            DEFAULT_BACKBONE: "tiny",
            STATE_DIRECTORY: state,
            CACHE_DIRECTORY: join(work, "cache"),
            CREDENTIALS_DIRECTORY: credentials,
          },
        });
        assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
        const config = JSON.parse(doctor.stdout).checks[0];
        assert.match(config.summary, /API token set/);
        assert.ok(config.summary.includes(`, data ${state},`), config.summary);
        assert.match(config.summary, /^listen 0\.0\.0\.0:/);
      },
    );

    await t.step(
      "install.sh lays out the release, settings, a private token and a unit systemd accepts",
      async () => {
        const target = join(work, "installed");
        const installed = await exec(join(root, "install.sh"), [
          ...["--prefix", join(target, "opt", "daft-edge"), "--etc", join(target, "etc")],
          ...["--unit-dir", join(target, "units"), "--no-systemctl"],
        ]);
        assert.equal(installed.code, 0, installed.stderr);
        assert.ok((await Deno.lstat(join(target, "opt", "daft-edge"))).isSymlink);
        assert.ok((await Deno.stat(join(target, "opt", "daft-edge", "bin", "daft-edge"))).isFile);
        assert.equal((await Deno.stat(join(target, "etc", "api-token"))).mode! & 0o777, 0o600);
        assert.match(await Deno.readTextFile(join(target, "etc", "api-token")), /^[A-Za-z0-9]{40}$/);
        const unit = await Deno.readTextFile(join(target, "units", "daft-edge.service"));
        assert.ok(unit.includes(`ExecStart=${join(target, "opt", "daft-edge")}/bin/daft-edge serve`));
        assert.ok(!unit.includes("@PREFIX@") && !unit.includes("@ETC@"));
        const analyze = await exec("systemd-analyze", [
          "verify",
          "--man=no",
          join(target, "units", "daft-edge.service"),
        ])
          .catch(() => undefined);
        if (analyze === undefined) {
          console.log("release: systemd-analyze is not installed here; the unit was not verified");
        } else {
          assert.equal(analyze.code, 0, analyze.stderr);
          assert.equal(analyze.stderr.trim(), "", "systemd-analyze verify has no complaint about the unit");
        }
      },
    );
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
