import assert from "node:assert/strict";
import { FIXTURES } from "./_setup.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function run(script: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}cli/${script}`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("deno task adapt trains on a class folder, prints a summary and writes a model that predict reads", async () => {
  const data = await Deno.makeTempDir();
  for (const digit of ["0", "1", "7"]) {
    await Deno.mkdir(`${data}/${digit}`);
    let n = 0;
    for await (const f of Deno.readDir(`${FIXTURES}digits/${digit}`)) {
      if (n++ < 12) await Deno.copyFile(`${FIXTURES}digits/${digit}/${f.name}`, `${data}/${digit}/${f.name}`);
    }
  }
  const out = `${data}-model`;
  const adapt = await run("adapt.ts", ["--data", data, "--backbone", "tiny", "--epochs", "3", "--out", out]);
  assert.equal(adapt.code, 0, adapt.stderr);
  assert.match(adapt.stdout, /val accuracy \(best epoch\)/);
  assert.match(adapt.stdout, /BN conversion\s+4 layers/);
  const metadata = JSON.parse(await Deno.readTextFile(`${out}/metadata.json`));
  assert.deepEqual(metadata.classNames, ["0", "1", "7"]);

  const image = `${FIXTURES}digits/7/${
    [...Deno.readDirSync(`${FIXTURES}digits/7`)].sort((a, b) => a.name < b.name ? 1 : -1)[0].name
  }`;
  const predict = await run("predict.ts", ["--model", out, "--json", image]);
  assert.equal(predict.code, 0, predict.stderr);
  const [p] = JSON.parse(predict.stdout);
  assert.ok(["0", "1", "7"].includes(p.label) && p.topK.length === 3);
  await Deno.remove(data, { recursive: true });
  await Deno.remove(out, { recursive: true });
});

Deno.test("deno task adapt explains a bad data folder and exits non-zero", async () => {
  const result = await run("adapt.ts", [
    "--data",
    "/nonexistent-folder",
    "--backbone",
    "tiny",
    "--out",
    "/tmp/x",
  ]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /error \[image_folder_missing\]/);
});
