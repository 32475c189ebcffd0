// The console's plain-words verdict (web/verdict.js), from the job records the API returns.
import assert from "node:assert/strict";
import { verdictOf } from "../web/verdict.js";

const job = (metrics: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  status: "succeeded",
  request: { activate: true },
  metrics: { valAccuracy: 0.9, classNames: ["a", "b", "c"], ...metrics },
  ...extra,
});

Deno.test("the server's guard decides the verdict, and a skipped activation is said with its reason", () => {
  const v = verdictOf(job(
    {
      valAccuracy: 0.33,
      baseline: { method: "lp", valAccuracy: 0.8 },
      guard: { verdict: "at_chance", chance: 1 / 3, margin: 0.1, message: "no better than chance" },
    },
    { activationSkipped: { code: "at_chance", message: "the model is no better than chance" } },
  ));
  assert.equal(v.kind, "at_chance");
  assert.equal(v.estimated, false);
  assert.match(v.headline, /^No better than chance: 33\.0% right where guessing gets 33\.3%/);
  assert.equal(v.activation, "Not activated: the model is no better than chance");
  assert.equal(v.detail, undefined, "the reason is said once, in the activation line");
});

Deno.test("a model below its linear-probe baseline is said to be worse than the simple baseline", () => {
  const v = verdictOf(job({
    valAccuracy: 0.6,
    baseline: { method: "lp", valAccuracy: 0.8 },
    guard: { verdict: "below_baseline", chance: 1 / 3, margin: 0.05, message: "below the linear probe" },
  }));
  assert.equal(v.kind, "below_baseline");
  assert.equal(v.detail, "The server's check: below the linear probe (noise margin ±5.0%).");
  assert.match(v.headline, /linear probe on the same features gets 80\.0%/);
});

Deno.test("without a guard from the server, the console estimates the verdict and says so", () => {
  const atChance = verdictOf(job({ valAccuracy: 0.4 }));
  assert.deepEqual([atChance.kind, atChance.estimated], ["at_chance", true]);
  const good = verdictOf(job({ valAccuracy: 0.9 }, { activated: true }));
  assert.deepEqual([good.kind, good.estimated], ["ok", true]);
  assert.match(good.activation, /^It was activated/);
});

Deno.test("a failed job's verdict carries its error, and a forced activation says it was activated", () => {
  const failed = verdictOf({ status: "failed", error: { message: "too few samples" } });
  assert.deepEqual([failed.kind, failed.headline], ["failed", "This job failed: too few samples."]);
  const forced = verdictOf(job({
    valAccuracy: 0.34,
    guard: { verdict: "at_chance", chance: 1 / 3, margin: 0.1, message: "at chance" },
  }, { activated: true, request: { activate: "force" } }));
  assert.equal(forced.kind, "at_chance");
  assert.equal(forced.detail, undefined);
  assert.match(forced.activation, /^It was activated/);
});
