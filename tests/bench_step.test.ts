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
