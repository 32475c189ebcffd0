/**
 * `deno task bench:release [--archive <tar.gz>] [--runs 3]`: the figures docs/DEPLOY.md quotes, measured on
 * the release as a box runs it. Builds the release (or takes `--archive`), unpacks it, and starts it `runs`
 * times through its launcher, each time with an empty data directory and an empty DENO_DIR (a cold start),
 * on the default settings (default backbone MobileNetV2, backend auto). Reports the archive's and the
 * unpacked directory's size, the time from start to `/readyz` 200, and resident memory when idle (after
 * ready, with no request for 5 s), then the peak resident memory of one adaptation on the default backbone
 * (the 48 digit images of fixtures/digits, 12 each of 0, 1, 4, 7; 8 epochs), for sizing the unit's MemoryMax.
 * Prints a Markdown table.
 */
import { join } from "node:path";
import { freePort, type ReleaseProcess, startRelease } from "../cli/_release_process.ts";
import { commandLine, numberOption } from "../cli/_args.ts";
import { buildRelease } from "../cli/release.ts";

const USAGE = `usage: deno task bench:release [--archive FILE] [--runs N]

Measures the release as a box runs it: archive and unpacked size, cold start to ready (N starts, each with
an empty data directory and DENO_DIR), idle memory, and the peak memory of one adaptation on the default
backbone. Builds the release first unless --archive names one. Prints a Markdown table (docs/DEPLOY.md).

  --archive FILE  a daft-edge-*.tar.gz to measure instead of building one
  --runs N        cold starts to take the median of (default 3)`;

const { values } = commandLine(USAGE, {
  archive: { type: "string" },
  runs: { type: "string", default: "3" },
});
const runs = numberOption("runs", values.runs)!;
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`error: --runs must be a whole number from 1, got '${values.runs}'`);
  Deno.exit(2);
}
const work = await Deno.makeTempDir({ prefix: "daft-bench-release-" });
try {
  const arch = Deno.build.arch === "x86_64" ? "x64" : "arm64";
  const archive = values.archive ?? (await buildRelease(arch, join(work, "dist"))).archive;
  const unpacked = join(work, "box");
  await Deno.mkdir(unpacked);
  await new Deno.Command("tar", { args: ["-xzf", archive, "-C", unpacked] }).output();
  const root = join(unpacked, [...Deno.readDirSync(unpacked)][0].name);
  const du = new TextDecoder().decode(
    (await new Deno.Command("du", { args: ["-sb", root] }).output()).stdout,
  );
  const archiveBytes = (await Deno.stat(archive)).size;
  const unpackedBytes = Number(du.split(/\s/)[0]);

  const readyMs: number[] = [];
  const idleRss: number[] = [];
  let backend = "";
  for (let i = 0; i < runs; i++) {
    const dataDir = join(work, `data-${i}`);
    const port = freePort();
    const server = await startRelease({ root, env: { PORT: String(port), DATA_DIR: dataDir } });
    try {
      readyMs.push(await server.waitFor(`http://127.0.0.1:${port}/readyz`));
      const info = await (await fetch(`http://127.0.0.1:${port}/v1/info`)).json();
      backend = `${info.backend.name}${info.backend.wasm ? ` (${info.backend.wasm.threads} threads)` : ""}`;
      await new Promise((r) => setTimeout(r, 5000));
      idleRss.push(server.rssBytes());
    } finally {
      Deno.kill(server.pid, "SIGTERM");
      await server.exited;
    }
  }
  // Peak memory of one adaptation on the default backbone.
  let peakRss = 0;
  let adaptSeconds = 0;
  {
    const port = freePort();
    const server = await startRelease({
      root,
      env: { PORT: String(port), DATA_DIR: join(work, "data-adapt") },
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      await server.waitFor(`${base}/readyz`);
      const started = performance.now();
      await adaptDigits(base);
      adaptSeconds = (performance.now() - started) / 1000;
      peakRss = peakRssBytes(server);
    } finally {
      Deno.kill(server.pid, "SIGTERM");
      await server.exited;
    }
  }
  const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)];
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  console.log(`| figure | value |\n| --- | --- |`);
  console.log(`| archive (${archive.split("/").pop()}) | ${mib(archiveBytes)} |`);
  console.log(`| unpacked | ${mib(unpackedBytes)} |`);
  console.log(
    `| cold start to ready (median of ${runs}; ${
      readyMs.map((m) => (m / 1000).toFixed(1)).join(", ")
    } s) | ` +
      `${(median(readyMs) / 1000).toFixed(1)} s |`,
  );
  console.log(`| resident memory, idle after ready (median of ${runs}) | ${mib(median(idleRss))} |`);
  console.log(
    `| peak resident memory, start + one adaptation (default backbone, 48 images, 8 epochs, ` +
      `${adaptSeconds.toFixed(0)} s) | ${mib(peakRss)} |`,
  );
  console.log(
    `\nbackend ${backend}, ${navigator.hardwareConcurrency} logical cores, Deno ${Deno.version.deno}`,
  );
} finally {
  await Deno.remove(work, { recursive: true });
}

function peakRssBytes(server: ReleaseProcess): number {
  const status = Deno.readTextFileSync(`/proc/${server.pid}/status`);
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function adaptDigits(base: string): Promise<void> {
  const fixtures = new URL("../fixtures/digits/", import.meta.url);
  const json = (body: unknown) => ({
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const { id: dataset } = await (await fetch(`${base}/v1/datasets`, json({ name: "digits" }))).json();
  const form = new FormData();
  for (const d of ["0", "1", "4", "7"]) {
    const names = [...Deno.readDirSync(new URL(`${d}/`, fixtures))].map((e) => e.name).sort().slice(0, 12);
    for (const name of names) {
      form.append("label", d);
      form.append("image", new Blob([Deno.readFileSync(new URL(`${d}/${name}`, fixtures))]), name);
    }
  }
  await (await fetch(`${base}/v1/datasets/${dataset}/samples`, { method: "POST", body: form })).body
    ?.cancel();
  const job = await (await fetch(`${base}/v1/adaptations`, json({ dataset, epochs: 8 }))).json();
  await (await fetch(`${base}/v1/adaptations/${job.id}/events`)).text();
  const done = await (await fetch(`${base}/v1/adaptations/${job.id}`)).json();
  if (done.status !== "succeeded") {
    throw new Error(`the adaptation ${done.status}: ${JSON.stringify(done.error)}`);
  }
}
