/// <reference lib="dom" />
// The web console in a real browser: Debian's Chromium, driven by playwright-core, against a real server
// (main.ts in its own process, tiny backbone, fresh data directory, free port). One user's whole loop:
// create, upload, capture from a (fake) webcam, adapt, watch the curves move, read the results, compare two
// jobs, activate, predict, roll back; and no console errors on the way.
//
// CONSOLE_SCREENSHOTS=docs/console deno test -A tests/web_console.test.ts   rewrites the README's screenshots.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { chromium, type Page } from "playwright-core";
import { decodeImage, encodePng } from "../src/data/image.ts";
import { FIXTURES } from "./_setup.ts";

const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";
const SCREENSHOTS = Deno.env.get("CONSOLE_SCREENSHOTS");
const ROOT = new URL("../", import.meta.url).pathname;
const DIGITS = ["0", "1", "7"];
// Generous: the suite runs in parallel with other training tests on small machines, where a job can take minutes.
const JOB_TIMEOUT_MS = 900_000;

const digitPaths = (d: string, from: number, count: number) =>
  [...Deno.readDirSync(`${FIXTURES}digits/${d}`)].map((e) => e.name).sort().slice(from, from + count)
    .map((name) => `${FIXTURES}digits/${d}/${name}`);

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** `deno task serve`'s main.ts in a child process; resolves when /readyz answers 200. */
async function startServer(dataDir: string, flags: string[] = []) {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--no-liftoff",
      `${ROOT}main.ts`,
      "--port",
      String(port),
      "--data-dir",
      dataDir,
      "--default-backbone",
      "tiny",
      ...flags,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const errors: string[] = [];
  (async () => {
    for (let r = await stderr.read(); !r.done; r = await stderr.read()) errors.push(r.value);
  })();
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0;; i++) {
    const res = await fetch(`${base}/readyz`).catch(() => undefined);
    await res?.body?.cancel();
    if (res?.status === 200) break;
    if (i > 3000) throw new Error(`the server did not become ready: ${errors.join("")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async () => {
    child.kill("SIGTERM");
    await child.status;
  };
  return { base, stop };
}

/** Chromium on a fresh profile, with the fake camera; every console error and page error is collected. */
async function openBrowser(profile: string) {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
    ],
  });
  // Generous waits, as for the jobs: a loaded machine slows everything.
  context.setDefaultTimeout(300_000);
  const page = context.pages()[0] ?? await context.newPage();
  const consoleErrors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`page error: ${e.message}`));
  page.on("dialog", (d) => d.accept());
  return { context, page, consoleErrors };
}

async function requireChromium() {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `${CHROMIUM} is missing: apt-get install chromium (or set CHROMIUM to a Chromium binary)`,
    );
  }
}

async function shot(page: Page, selector: string, name: string) {
  if (!SCREENSHOTS) return;
  // The sticky header would cover the top of an element scrolled into view.
  await page.addStyleTag({ content: ".top { position: static; }" });
  await page.locator(selector).screenshot({ path: `${SCREENSHOTS}/${name}.png`, animations: "disabled" });
}

/** The count of points in one chart series (the charts carry it as data-count). */
const points = (page: Page, series: string) =>
  page.locator(`polyline[data-series^="${series}"]`).getAttribute("data-count").then((n) => Number(n ?? 0));

Deno.test({
  name: "the web console runs the whole loop in Chromium, from an empty dataset to a rolled-back model",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    try {
      await Deno.stat(CHROMIUM);
    } catch {
      throw new Error(
        `${CHROMIUM} is missing: apt-get install chromium (or set CHROMIUM to a Chromium binary)`,
      );
    }
    const dataDir = await Deno.makeTempDir({ prefix: "daft-web-" });
    const profile = await Deno.makeTempDir({ prefix: "daft-chromium-" });
    const server = await startServer(dataDir);
    const { context, page, consoleErrors } = await openBrowser(profile);
    const api = (path: string) => fetch(`${server.base}${path}`).then((r) => r.json());
    try {
      await t.step("the page loads with every asset from the server and no errors", async () => {
        const outside: string[] = [];
        page.on("request", (r) => {
          if (!r.url().startsWith(server.base) && !r.url().startsWith("blob:")) outside.push(r.url());
        });
        await page.goto(server.base);
        await page.locator("body[data-ready=true]").waitFor();
        assert.deepEqual(outside, []);
        assert.deepEqual(consoleErrors, []);
      });

      await t.step("a dataset is created and digits uploaded into class cards", async () => {
        await page.fill("#newDatasetName", "digits");
        await page.click("#newDatasetForm button");
        await page.locator("#datasetSelect option", { hasText: "digits" }).waitFor({ state: "attached" });
        for (const d of DIGITS) {
          await page.fill("#newClassName", d);
          await page.press("#newClassName", "Enter");
          await page.locator(`[data-label="${d}"] input[type=file]`).setInputFiles(digitPaths(d, 0, 11));
          await page.locator(`[data-label="${d}"] .count`, { hasText: "11 images" }).waitFor();
        }
        assert.equal(await page.locator(`[data-label="0"] .thumb img`).count(), 11);
      });

      await t.step("an image dropped on a card lands in that class", async () => {
        const bytes = [...await Deno.readFile(digitPaths("7", 11, 1)[0])];
        const transfer = await page.evaluateHandle((b) => {
          const dt = new DataTransfer();
          dt.items.add(new File([new Uint8Array(b)], "dropped.png", { type: "image/png" }));
          return dt;
        }, bytes);
        await page.locator(`[data-label="7"]`).dispatchEvent("drop", { dataTransfer: transfer });
        await page.locator(`[data-label="7"] .count`, { hasText: "12 images" }).waitFor();
      });

      await t.step("a file that is not an image is refused by name while the others land", async () => {
        const before = consoleErrors.length;
        await page.locator(`[data-label="1"] input[type=file]`).setInputFiles([
          `${ROOT}README.md`,
          ...digitPaths("1", 11, 1),
        ]);
        await page.locator("#uploadErrors li", { hasText: "README.md" }).waitFor();
        await page.locator(`[data-label="1"] .count`, { hasText: "12 images" }).waitFor();
        // The browser logs the refused request's 400; that one is expected.
        const logged = consoleErrors.splice(before);
        assert.ok(logged.every((e) => /status of 415|status of 400/.test(e)), logged.join("\n"));
      });

      await t.step("holding the record button captures webcam frames into a class", async () => {
        await page.fill("#newClassName", "webcam");
        await page.press("#newClassName", "Enter");
        await page.click("#cameraToggle");
        await page.waitForFunction(() =>
          (document.getElementById("cameraVideo") as HTMLVideoElement).videoWidth > 0
        );
        const hold = page.locator(`[data-label="webcam"] .hold`);
        await hold.hover();
        await page.mouse.down();
        await page.waitForTimeout(1500);
        await page.mouse.up();
        await page.locator(`[data-label="webcam"] .thumb img`).first().waitFor();
        const frames = await page.locator(`[data-label="webcam"] .thumb`).count();
        assert.ok(frames >= 2, `${frames} frames`);
        await shot(page, "#dataSection", "1-data");

        await page.locator(`[data-label="webcam"] .thumb .remove`).first().click();
        await page.locator(`[data-label="webcam"] .count`, { hasText: `${frames - 1} image` }).waitFor();
        await page.click(`[data-label="webcam"] header button:text("Rename")`);
        await page.fill(".inline-edit", "camera");
        await page.press(".inline-edit", "Enter");
        await page.locator(`[data-label="camera"]`).waitFor();
        await page.click(`[data-label="camera"] header button:text("Delete")`);
        await page.locator(`[data-label="camera"]`).waitFor({ state: "detached" });
        await page.click("#cameraToggle");
      });

      await t.step("an adaptation runs with its loss and accuracy curves moving live", async () => {
        await page.check("input[name=method][value=daft]");
        await page.fill("#epochs", "8");
        await page.click("#startJob");
        await page.waitForFunction(
          () =>
            Number(
              document.querySelector('polyline[data-series^="validation"]')?.getAttribute("data-count"),
            ) >=
              2,
          null,
          { timeout: JOB_TIMEOUT_MS },
        );
        const early = await points(page, "validation");
        await page.waitForFunction(
          (n) =>
            Number(
              document.querySelector('polyline[data-series^="validation"]')?.getAttribute("data-count"),
            ) > n,
          early,
          { timeout: JOB_TIMEOUT_MS },
        );
        assert.ok(await points(page, "loss per step") > 0, "step losses arrive between epochs");
        assert.match(await page.textContent("#jobEta") ?? "", /left|took/);
        await page.locator("#jobPhase", { hasText: "succeeded" }).waitFor({ timeout: JOB_TIMEOUT_MS });
        // One point per epoch the job trained: the 8 asked for, or more when the set is too small to make the
        // engine's 60-step floor in 8 (minSteps).
        const [job] = (await api("/v1/adaptations")).adaptations;
        assert.ok(job.history.length >= 8);
        assert.equal(await points(page, "validation"), job.history.length);
        await shot(page, "#adaptSection", "2-adapt");
      });

      await t.step("the results show the verdict, the per-class bars and the confusion matrix", async () => {
        await page.locator("#results .verdict").waitFor();
        // The model's matrix comes first; the linear probe's, when the server reports one, folded below it.
        const matrix = page.locator("#results .heatmap").first();
        const cells = matrix.locator("tbody td");
        assert.equal(await cells.count(), DIGITS.length * DIGITS.length);
        const diagonal = await matrix.locator("tbody tr").evaluateAll((rows) =>
          rows.reduce((sum, row, i) => sum + Number(row.querySelectorAll("td")[i].textContent), 0)
        );
        const total = (await cells.allTextContents()).reduce((a, b) => a + Number(b), 0);
        const [job] = (await api("/v1/adaptations")).adaptations;
        assert.equal(diagonal / total, job.metrics.validation.accuracy);
        assert.match(await page.textContent("#results .verdict") ?? "", /held-out|chance|baseline/);
        if (job.metrics.baseline) {
          assert.equal(
            await page.locator("#results .bar.baseline .bar-label").first().textContent(),
            "linear probe",
          );
          assert.equal(await page.locator("#results .heatmap").count(), 2);
        }
        await shot(page, "#resultsSection", "3-results");
      });

      await t.step("a second job on the same dataset is compared side by side with the first", async () => {
        await page.check("input[name=method][value=lp]");
        await page.fill("#epochs", "4");
        await page.selectOption("#activateMode", "false");
        await page.click("#startJob");
        await page.locator("#jobPhase", { hasText: "succeeded" }).waitFor({ timeout: JOB_TIMEOUT_MS });
        await page.locator("#comparison .compare-column").nth(1).waitFor();
        const methods = await page.locator("#comparison .compare-column h3").allTextContents();
        assert.deepEqual(methods.map((m) => m.split(" ")[0]).sort(), ["daft", "lp"]);
        const rows = await page.locator("#comparison .compare-column").first().locator("dt")
          .allTextContents();
        assert.ok(
          rows.includes("validation accuracy") && rows.includes("feature distortion (cosine)"),
          rows.join(),
        );
        await shot(page, "#compareSection", "4-compare");
      });

      await t.step("a running job is cancelled from the page", async () => {
        await page.check("input[name=method][value=daft]");
        await page.fill("#epochs", "500");
        await page.click("#startJob");
        await page.locator("#jobPhase", { hasText: "epoch" }).waitFor();
        await page.click("#cancelJob");
        await page.locator("#jobPhase", { hasText: "cancelled" }).waitFor();
        assert.equal(await page.isDisabled("#cancelJob"), true);
        await page.locator("#jobList tr", { hasText: "cancelled" }).locator("button:text('Retry')").waitFor();
      });

      await t.step(
        "a model is activated, tried on an image and a webcam frame, rolled back, downloaded and deleted",
        async () => {
          const { models } = await api("/v1/models");
          assert.equal(models.length, 2);
          const [lp, daft] = models;
          await page.locator(`tr[data-model="${lp.id}"] button:text("Activate")`).click();
          await page.locator(`tr[data-model="${lp.id}"] .badge`).waitFor();
          assert.equal((await api("/v1/models")).active, lp.id);

          await page.locator("#tryFile").setInputFiles(digitPaths("7", 20, 1));
          await page.locator("#tryResult .bar").first().waitFor();
          assert.equal(await page.textContent("#tryResult .top-label"), "7");
          assert.equal(await page.locator("#tryResult .bar").count(), DIGITS.length);
          await shot(page, "#modelsSection", "5-models");

          await page.click("#trySnap");
          await page.locator("#tryResult img[alt]").waitFor();
          await page.waitForFunction(() =>
            document.querySelector("#tryResult p")?.textContent?.includes("from model")
          );

          await page.click("#rollBack");
          await page.locator(`tr[data-model="${daft.id}"] .badge`).waitFor();
          assert.equal((await api("/v1/models")).active, daft.id);

          // The tfjs files download from the row; the version no longer active can be deleted.
          await page.locator(`tr[data-model="${lp.id}"] summary`).click();
          const link = page.locator(`tr[data-model="${lp.id}"] .files a`, { hasText: "model.json" });
          const res = await fetch(new URL(await link.getAttribute("href") ?? "", server.base));
          assert.ok(Array.isArray((await res.json()).weightsManifest));
          await page.locator(`tr[data-model="${lp.id}"] button:text("Delete")`).click();
          await page.locator(`tr[data-model="${lp.id}"]`).waitFor({ state: "detached" });
          assert.deepEqual((await api("/v1/models")).models.map((m: { id: string }) => m.id), [daft.id]);
        },
      );

      await t.step("a model that cannot tell its classes apart is called no better than chance", async () => {
        // Both classes hold the same picture, so no model can beat chance: the verdict must say so.
        await page.fill("#newDatasetName", "twins");
        await page.click("#newDatasetForm button");
        await page.locator("#datasetSelect option", { hasText: "twins" }).waitFor({ state: "attached" });
        const same = Array(8).fill(digitPaths("4", 0, 1)[0]);
        for (const label of ["left", "right"]) {
          await page.fill("#newClassName", label);
          await page.press("#newClassName", "Enter");
          await page.locator(`[data-label="${label}"] input[type=file]`).setInputFiles(
            same.map((path, i) => ({
              name: `${label}-${i}.png`,
              mimeType: "image/png",
              buffer: Buffer.from(Deno.readFileSync(path)),
            })),
          );
          await page.locator(`[data-label="${label}"] .count`, { hasText: "8 images" }).waitFor();
        }
        await page.check("input[name=method][value=daft]");
        await page.fill("#epochs", "3");
        await page.selectOption("#activateMode", "true");
        await page.click("#startJob");
        await page.locator("#jobPhase", { hasText: "succeeded" }).waitFor({ timeout: JOB_TIMEOUT_MS });
        const verdict = page.locator("#results .verdict");
        await verdict.waitFor();
        assert.equal(await verdict.getAttribute("class"), "verdict at_chance");
        assert.match(await verdict.textContent() ?? "", /No better than chance/);
        const [job] = (await api("/v1/adaptations")).adaptations;
        if (job.activationSkipped) assert.match(await verdict.textContent() ?? "", /Not activated/);
        await shot(page, "#resultsSection", "7-at-chance");
      });

      await t.step("on a narrow screen the page keeps to the width of the screen", async () => {
        await page.setViewportSize({ width: 390, height: 800 });
        const overflow = await page.evaluate(() =>
          document.documentElement.scrollWidth - globalThis.innerWidth
        );
        assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
        await page.evaluate(() => scrollTo(0, 0));
        if (SCREENSHOTS) await page.screenshot({ path: `${SCREENSHOTS}/6-narrow.png` });
      });

      assert.deepEqual(consoleErrors, [], "console errors");
    } finally {
      await context.close();
      await server.stop();
      await Deno.remove(dataDir, { recursive: true });
      await Deno.remove(profile, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "with an API token, the console refuses changes until the token is typed, then keeps it in the browser",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await requireChromium();
    const token = "console-test-token-0123456789";
    const dataDir = await Deno.makeTempDir({ prefix: "daft-web-" });
    const profile = await Deno.makeTempDir({ prefix: "daft-chromium-" });
    const server = await startServer(dataDir, ["--api-token", token, "--hostname", "127.0.0.1"]);
    const { context, page, consoleErrors } = await openBrowser(profile);
    const sentTokens: (string | undefined)[] = [];
    page.on("request", (r) => {
      if (r.method() !== "GET") sentTokens.push(r.headers()["authorization"]);
    });
    try {
      await page.goto(server.base);
      await page.locator("body[data-ready=true]").waitFor();
      await page.fill("#newDatasetName", "pets");
      await page.click("#newDatasetForm button");
      await page.locator("#notice.error", { hasText: "unauthorized" }).waitFor();
      assert.equal(consoleErrors.splice(0).filter((e) => !/status of 401/.test(e)).length, 0);

      await page.fill("#token", token);
      await page.press("#token", "Tab");
      await page.click("#newDatasetForm button");
      await page.locator("#datasetSelect option", { hasText: "pets" }).waitFor({ state: "attached" });
      assert.deepEqual(sentTokens, [undefined, `Bearer ${token}`]);

      await page.reload();
      await page.locator("body[data-ready=true]").waitFor();
      assert.equal(await page.inputValue("#token"), token);
      await page.click("#renameDataset");
      await page.fill(".inline-edit", "animals");
      await page.press(".inline-edit", "Enter");
      await page.locator("#datasetSelect option", { hasText: "animals" }).waitFor({ state: "attached" });
      await page.click("#deleteDataset");
      await page.locator("#datasetSelect option").waitFor({ state: "detached" });
      assert.deepEqual((await (await fetch(`${server.base}/v1/datasets`)).json()).datasets, []);
      assert.deepEqual(consoleErrors, []);
    } finally {
      await context.close();
      await server.stop();
      await Deno.remove(dataDir, { recursive: true });
      await Deno.remove(profile, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "the drift panel follows the active model's score live and refreshes the model from its traffic or a dataset",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await requireChromium();
    const dataDir = await Deno.makeTempDir({ prefix: "daft-web-" });
    const profile = await Deno.makeTempDir({ prefix: "daft-chromium-" });
    const server = await startServer(dataDir, [
      "--drift-window",
      "16",
      "--drift-threshold",
      "0.5",
      "--keep-traffic",
      "64",
    ]);
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${server.base}${path}`, {
        method,
        ...(body instanceof FormData ? { body } : body === undefined ? {} : {
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        }),
      });
      const data = await res.json();
      assert.ok(res.ok, `${method} ${path}: ${JSON.stringify(data)}`);
      return data;
    };
    const images = (files: Uint8Array[]) => {
      const form = new FormData();
      for (const bytes of files) form.append("image", new Blob([new Uint8Array(bytes)]), "x.png");
      return form;
    };
    // The same digits, inverted (white background, dark ink): a shift every watched layer sees.
    const invert = async (bytes: Uint8Array) => {
      const image = await decodeImage(bytes);
      return encodePng({ ...image, data: image.data.map((v) => 255 - v) });
    };
    const heldOut = DIGITS.flatMap((d) => digitPaths(d, 12, 6)).map((path) => Deno.readFileSync(path));
    const shifted = await Promise.all(heldOut.map(invert));
    // The model, made through the API: the loop through the page is the first test's.
    const { id: dataset } = await call("POST", "/v1/datasets", { name: "digits" });
    const form = new FormData();
    for (const d of DIGITS) {
      for (const path of digitPaths(d, 0, 8)) {
        form.append("label", d);
        form.append("image", new Blob([Deno.readFileSync(path)]), "x.png");
      }
    }
    await call("POST", `/v1/datasets/${dataset}/samples`, form);
    const { id: unlabelled } = await call("POST", "/v1/datasets", { name: "inverted" });
    await call("POST", `/v1/datasets/${unlabelled}/samples?unlabelled=true`, images(shifted));
    const finished = async (id: string) => {
      await (await fetch(`${server.base}/v1/adaptations/${id}/events`)).text();
      return await call("GET", `/v1/adaptations/${id}`);
    };
    const adapted = await finished(
      (await call("POST", "/v1/adaptations", { dataset, epochs: 3, seed: 1, activate: "force" })).id,
    );
    assert.equal(adapted.status, "succeeded");
    const { context, page, consoleErrors } = await openBrowser(profile);
    try {
      await page.goto(server.base);
      await page.locator("body[data-ready=true]").waitFor();

      await t.step("before the model serves, the panel waits for a full window", async () => {
        await page.locator(`#driftReport code`, { hasText: adapted.modelId }).waitFor();
        await page.locator("#driftReport [data-state=waiting]", { hasText: "0 of the 16" }).waitFor();
      });

      await t.step("in-distribution traffic scores below the threshold, layer by layer", async () => {
        await call("POST", "/v1/models/active/predict", images(heldOut.slice(0, 16)));
        await page.locator("#driftReport [data-state=ok]").waitFor();
        assert.equal(await page.locator("#driftReport .drift-layers .bar").count(), 4);
        assert.equal(await page.locator("#driftReport .drift-layers .bar.over").count(), 0);
      });

      await t.step(
        "shifted traffic crosses the threshold: the state, the layers and a notice say so",
        async () => {
          await call("POST", "/v1/models/active/predict", images(shifted));
          await page.locator("#driftReport [data-state=drift]").waitFor();
          await page.locator("#notice", { hasText: "drift: the active model's score reached" }).waitFor();
          assert.ok(await page.locator("#driftReport .drift-layers .bar.over").count() >= 1);
          await page.locator("#driftReport .drift-events li", { hasText: "drift" }).waitFor();
          await shot(page, "#driftSection", "8-drift");
        },
      );

      await t.step(
        "a refresh from the kept traffic makes a new version and shows the guard's verdict",
        async () => {
          const kept = 16 + heldOut.length;
          await page.locator("#refreshSource option", { hasText: `${kept} images kept` }).waitFor({
            state: "attached",
          });
          await page.selectOption("#refreshSource", "traffic");
          await page.selectOption("#refreshActivate", "true");
          await page.click("#startRefresh");
          await page.locator("#refreshStatus strong", { hasText: "Refreshed" }).waitFor({
            timeout: JOB_TIMEOUT_MS,
          });
          const [job] = (await call("GET", "/v1/adaptations")).adaptations;
          assert.equal(job.request.source, "traffic");
          assert.equal(job.metrics.guard.images, kept);
          const status = await page.textContent("#refreshStatus") ?? "";
          assert.ok(status.includes(job.metrics.guard.message), status);
          if (job.activated) {
            assert.match(status, new RegExp(`${job.modelId} is active`));
            await page.locator(`#driftReport code`, { hasText: job.modelId }).waitFor();
          } else assert.match(status, /Not activated/);
        },
      );

      await t.step(
        "a refresh from a dataset of unlabelled images can be kept without activating it",
        async () => {
          const active = (await call("GET", "/v1/models")).active;
          await page.selectOption("#refreshSource", unlabelled);
          await page.selectOption("#refreshActivate", "false");
          await page.click("#startRefresh");
          await page.locator("#refreshStatus", { hasText: "not activated" }).waitFor({
            timeout: JOB_TIMEOUT_MS,
          });
          const [job] = (await call("GET", "/v1/adaptations")).adaptations;
          assert.equal(job.request.dataset, unlabelled);
          assert.equal(job.metrics.guard.images, heldOut.length);
          assert.equal((await call("GET", "/v1/models")).active, active);
        },
      );

      assert.deepEqual(consoleErrors, [], "console errors");
    } finally {
      await context.close();
      await server.stop();
      await Deno.remove(dataDir, { recursive: true });
      await Deno.remove(profile, { recursive: true });
    }
  },
});
