import assert from "node:assert/strict";
import { openTestApp } from "./_api.ts";
import { FIXTURES } from "./_setup.ts";

/** A dataset whose two labels hold the very same images: no model can beat chance on it. */
async function indistinguishable(json: Awaited<ReturnType<typeof openTestApp>>["json"], app: any) {
  const { id } = await (await json("POST", "/v1/datasets", { name: "same images, two labels" })).json();
  const names = [...Deno.readDirSync(`${FIXTURES}digits/3`)].map((e) => e.name).sort().slice(0, 8);
  const form = new FormData();
  for (const label of ["a", "b"]) {
    for (const name of names) {
      form.append("label", label);
      form.append("image", new Blob([Deno.readFileSync(`${FIXTURES}digits/3/${name}`)]), name);
    }
  }
  assert.equal((await app.request(`/v1/datasets/${id}/samples`, { method: "POST", body: form })).status, 201);
  return id as string;
}

async function finished(app: any, id: string) {
  for (;;) {
    const job = await (await app.request(`/v1/adaptations/${id}`)).json();
    if (["succeeded", "failed", "cancelled"].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test("a model at chance is saved but not activated, the previous model keeps serving, and force overrides", async () => {
  const { app, json, dataset, close } = await openTestApp();
  const good = await json("POST", "/v1/adaptations", {
    dataset: await dataset([0, 1, 7], 8),
    activate: true,
    seed: 1,
  });
  const first = await finished(app, (await good.json()).id);
  assert.equal(first.status, "succeeded");
  assert.equal(first.metrics.guard.verdict, "ok", first.metrics.guard.message);
  assert.equal(first.activated, true);
  assert.equal(first.metrics.baseline.method, "lp");
  assert.ok(first.metrics.baseline.valAccuracy >= 0 && first.metrics.baseline.valAccuracy <= 1);
  assert.deepEqual(Object.keys(first.metrics.baseline.validation.perClassAccuracy), ["0", "1", "7"]);

  const same = await indistinguishable(json, app);
  const bad = await finished(
    app,
    (await (await json("POST", "/v1/adaptations", { dataset: same, activate: true })).json()).id,
  );
  assert.equal(bad.status, "succeeded", "the job itself succeeds: its model is saved");
  assert.equal(bad.metrics.guard.verdict, "at_chance");
  assert.equal(bad.activated, false);
  assert.equal(bad.activationSkipped.code, "at_chance");
  assert.match(bad.activationSkipped.message, /chance/);
  const models = await (await app.request("/v1/models")).json();
  assert.equal(models.active, first.modelId, "predictions still come from the previous model");
  assert.ok(models.models.some((m: { id: string }) => m.id === bad.modelId), "the guarded model is kept");

  const forced = await finished(
    app,
    (await (await json("POST", "/v1/adaptations", { dataset: same, activate: "force" })).json()).id,
  );
  assert.equal(forced.metrics.guard.verdict, "at_chance");
  assert.equal(forced.activated, true);
  assert.equal(forced.activationSkipped, undefined);
  assert.equal((await (await app.request("/v1/models")).json()).active, forced.modelId);
  await close();
});
