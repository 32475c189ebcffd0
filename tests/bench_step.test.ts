import assert from "node:assert/strict";

const SCRIPT = new URL("../bench/step_profile.ts", import.meta.url).pathname;

Deno.test("bench:step times a training step with the kernel helper thread off and on, and lists kernels", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, "--batch", "2", "--steps", "1", "--top", "3"],
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(text, /helper thread up/);
  assert.match(text, /helper thread off: step median [\d.]+ ms/);
  assert.match(text, /helper thread on: step median [\d.]+ ms/);
  assert.match(text, /kernel time per step .*: [\d.]+ ms/);
  assert.match(text, /wasm heap after the steps: \d+ MiB \(gradients: leanVariableGrads\)/);
  // The table's header, separator and three kernels.
  assert.equal(text.split("\n").filter((line) => line.startsWith("| ")).length, 5);
});

Deno.test("bench:cpu profiles the thread that runs the training steps, self time by function", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../bench/step_cpu_profile.ts", import.meta.url).pathname,
      "--batch",
      "2",
      "--seconds",
      "1",
      "--top",
      "4",
    ],
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(text, /batch 2: \d+ samples of the thread that runs the steps/);
  const rows = text.split("\n").filter((line) => /^\| [\d.]+% \| /.test(line));
  assert.equal(rows.length, 4);
  // The step runs WebAssembly: some of the listed functions are the kernels'.
  assert.ok(rows.some((row) => row.includes("wasm-function")), text);
});

Deno.test("selfTimes sums a profile's samples by function, as shares", async () => {
  const { selfTimes } = await import("../bench/step_cpu_profile.ts");
  const frame = (functionName: string, url = "") => ({ functionName, url, lineNumber: 4 });
  const shares = selfTimes({
    nodes: [{ id: 1, callFrame: frame("a", "file:///x/src/a.ts") }, { id: 2, callFrame: frame("") }],
    samples: [1, 2, 1, 1],
  });
  assert.deepEqual(shares, [["a src/a.ts:5", 0.75], ["(anonymous)", 0.25]]);
});
