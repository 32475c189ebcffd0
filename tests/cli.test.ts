import assert from "node:assert/strict";
import { FIXTURES } from "./_setup.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function deno(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT, stdout: "piped", stderr: "piped" })
    .output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

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
  const adapt = await run("adapt.ts", [
    "--data",
    data,
    "--backbone",
    "tiny",
    "--epochs",
    "3",
    "--min-steps",
    "0",
    "--out",
    out,
  ]);
  assert.equal(adapt.code, 0, adapt.stderr);
  assert.match(adapt.stdout, /val accuracy \(kept epoch\)\s+\d\.\d{3} \(epoch 3 of 3, last epoch\)/);
  assert.match(adapt.stdout, /linear-probe baseline, same split\s+\d\.\d{3}/);
  assert.match(adapt.stdout, /verdict\s+(ok|at_chance|below_baseline): /);
  // Off a terminal, progress is plain lines: one per phase and per epoch, no escape codes, no gaps.
  assert.ok(!adapt.stderr.includes("\x1b") && !adapt.stderr.includes("\r"), "no escape codes");
  assert.doesNotMatch(adapt.stderr, /undefined/);
  assert.match(adapt.stderr, /^epoch 3\/3 \[#{24}\] loss \d+\.\d{4} val acc \d\.\d{3} {2}\d+s$/m);
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
  const table = await run("predict.ts", ["--model", out, "--top-k", "2", image]);
  assert.equal(table.code, 0, table.stderr);
  const [header, rule, row] = table.stdout.trimEnd().split("\n");
  assert.match(header, /^file\s+label\s+score\s+top 2$/);
  assert.match(rule, /^-+( +-+){3}$/);
  assert.match(row, new RegExp(`^${image}\\s+[017]\\s+\\d\\.\\d{4}\\s+\\d:\\d\\.\\d{3} \\d:\\d\\.\\d{3}$`));
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

Deno.test("every task answers --help with its usage, and an unknown option with one line and exit code 2", async () => {
  const tasks = Object.keys(JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks)
    .filter((t) => t !== "test");
  assert.deepEqual(tasks.sort(), [
    "adapt",
    "bench",
    "bench:cpu",
    "bench:diagnostics",
    "bench:drift",
    "bench:images",
    "bench:load",
    "bench:methods",
    "bench:release",
    "bench:step",
    "bench:webgpu",
    "bench:yield",
    "doctor",
    "predict",
    "pretrain",
    "release",
    "serve",
  ]);
  for (const task of tasks) {
    const help = await deno(["task", "--quiet", task, "--help"]);
    assert.equal(help.code, 0, `${task} --help: ${help.stderr}`);
    assert.match(help.stdout, new RegExp(`^usage: deno task ${task} `, "i"), task);
    const wrong = await deno(["task", "--quiet", task, "--no-such-option"]);
    assert.equal(wrong.code, 2, `${task}: ${wrong.stdout}${wrong.stderr}`);
    assert.equal(wrong.stderr.trim().split("\n").length, 1, `${task}: ${wrong.stderr}`);
    assert.match(wrong.stderr, /no-such-option/);
  }
});

Deno.test("the adaptation progress line on a terminal redraws one line and never shows a missing step count", async () => {
  const { progressReporter } = await import("../cli/_terminal.ts");
  let written = "";
  const out = {
    isTerminal: () => true,
    writeSync: (b: Uint8Array) => (written += new TextDecoder().decode(b)).length,
  };
  const report = progressReporter(performance.now(), out);
  report({ phase: "bn_conversion" });
  report({ phase: "training", epoch: 0, epochs: 2, step: 3, steps: 6, loss: 1.5 });
  report({
    phase: "training",
    epoch: 0,
    epochs: 2,
    record: {
      epoch: 0,
      trainLoss: 1.25,
      trainAccuracy: 0.5,
      valAccuracy: 0.75,
      lrHead: 1,
      lrBackbone: 0.1,
      seconds: 1,
    },
  });
  assert.doesNotMatch(written, /undefined|NaN/);
  assert.ok(written.startsWith("\r\x1b[2K"), "redraws the line");
  assert.match(written, /epoch 1\/2 \[#{12}\.{12}\] 3\/6 loss 1\.5000/);
  assert.match(written, /epoch 1\/2 \[#{24}\] loss 1\.2500 val acc 0\.750 +\d+s\n$/);
});
