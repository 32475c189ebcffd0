// `auto`'s measured choice between webgpu and wasm. On CI the adapter is llvmpipe (software), where `auto`
// does not measure unless asked (measureSoftware): these tests ask, so the hardware path runs here.
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { trainingSpeedTrial } from "../src/adapt/training_speed_trial.ts";
import { CHOICE_FILE, choiceKey, type TrialTiming } from "../src/backend/backend_choice.ts";
import { initBackend } from "../src/backend/init_backend.ts";
import { probeAdapter } from "../src/backend/probe_adapter.ts";

const adapter = await probeAdapter();

/** A trial that reports a fixed speed per backend and counts its runs. */
function fixedTrial(speeds: { webgpu: number; wasm: number }) {
  const runs: string[] = [];
  const trial = (): Promise<TrialTiming> => {
    const name = tf.getBackend() as "webgpu" | "wasm";
    runs.push(name);
    return Promise.resolve({
      samplesPerSec: speeds[name],
      stepMs: 16000 / speeds[name],
      batch: 16,
      steps: 3,
    });
  };
  return { trial, runs };
}

const cacheOf = async (dir: string) => JSON.parse(await Deno.readTextFile(`${dir}/${CHOICE_FILE}`));

Deno.test({
  name: "auto times a real training trial on webgpu and on wasm, takes the faster and caches both figures",
  ignore: !adapter.available,
  fn: async () => {
    const dataDir = await Deno.makeTempDir();
    assert.ok(await tf.setBackend("cpu"));
    const before = tf.memory().numTensors;
    const info = await initBackend("auto", {
      wasmThreads: 1,
      choice: {
        dataDir,
        trial: trainingSpeedTrial({ backbone: "tiny", batch: 4, steps: 1 }),
        measureSoftware: true,
      },
    });
    const choice = info.choice!;
    assert.ok("samplesPerSec" in choice.webgpu && "samplesPerSec" in choice.wasm, JSON.stringify(choice));
    const faster = choice.webgpu.samplesPerSec >= choice.wasm.samplesPerSec ? "webgpu" : "wasm";
    assert.equal(choice.chosen, faster);
    assert.equal(info.name, faster);
    assert.equal(info.fellBack, false);
    assert.match(choice.reason, /^measured at bring-up: webgpu trains .* samples\/s, wasm .* samples\/s/);
    assert.equal(choice.cached, false);
    assert.equal(choice.key, choiceKey(adapter));
    assert.ok(choice.key.includes(adapter.description) && choice.key.includes(Deno.version.deno));
    const file = await cacheOf(dataDir);
    assert.equal(file.choices[choice.key].chosen, faster);
    assert.equal(tf.memory().numTensors, before, "the trial leaves no tensors");
    await Deno.remove(dataDir, { recursive: true });
  },
});

Deno.test({
  name: "auto takes the cached choice for this adapter and Deno version without measuring again",
  ignore: !adapter.available,
  fn: async () => {
    const dataDir = await Deno.makeTempDir();
    const first = fixedTrial({ webgpu: 5, wasm: 9 });
    const measured = await initBackend("auto", {
      wasmThreads: 1,
      choice: { dataDir, trial: first.trial, measureSoftware: true },
    });
    assert.deepEqual(first.runs, ["webgpu", "wasm"]);
    assert.equal(measured.name, "wasm");
    assert.equal(measured.choice?.chosen, "wasm");
    const again = fixedTrial({ webgpu: 50, wasm: 9 });
    const cached = await initBackend("auto", {
      wasmThreads: 1,
      choice: { dataDir, trial: again.trial, measureSoftware: true },
    });
    assert.deepEqual(again.runs, [], "a cached choice runs no trial");
    assert.equal(cached.name, "wasm");
    assert.equal(cached.choice?.cached, true);
    assert.equal(cached.choice?.reason, measured.choice?.reason);
    // Without a trial (an adaptation worker), the cached choice still holds.
    const worker = await initBackend("auto", { wasmThreads: 1, choice: { dataDir, measureSoftware: true } });
    assert.equal(worker.name, "wasm");
    await Deno.remove(dataDir, { recursive: true });
  },
});

Deno.test({
  name: "a choice cached for another Deno version or adapter is measured again, and both entries are kept",
  ignore: !adapter.available,
  fn: async () => {
    const dataDir = await Deno.makeTempDir();
    const stale = {
      chosen: "wasm",
      webgpu: { samplesPerSec: 1, stepMs: 1, batch: 16, steps: 3 },
      wasm: { samplesPerSec: 2, stepMs: 1, batch: 16, steps: 3 },
      reason: "measured long ago",
      measuredAt: "2026-01-01T00:00:00.000Z",
      key: choiceKey(adapter).replace(`deno ${Deno.version.deno}`, "deno 1.0.0"),
    };
    await Deno.writeTextFile(
      `${dataDir}/${CHOICE_FILE}`,
      JSON.stringify({ format: "daft-edge-backend-choice/1", choices: { [stale.key]: stale } }),
    );
    const { trial, runs } = fixedTrial({ webgpu: 12, wasm: 3 });
    const info = await initBackend("auto", {
      wasmThreads: 1,
      choice: { dataDir, trial, measureSoftware: true },
    });
    assert.deepEqual(runs, ["webgpu", "wasm"]);
    assert.equal(info.name, "webgpu");
    assert.match(info.choice!.reason, /webgpu is 4\.00x as fast/);
    const file = await cacheOf(dataDir);
    assert.deepEqual(Object.keys(file.choices).sort(), [stale.key, choiceKey(adapter)].sort());
    await Deno.remove(dataDir, { recursive: true });
  },
});

Deno.test({
  name: "a corrupt cache file is measured over and rewritten; a failing trial leaves the other backend",
  ignore: !adapter.available,
  fn: async () => {
    const dataDir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dataDir}/${CHOICE_FILE}`, "{ not json");
    const info = await initBackend("auto", {
      wasmThreads: 1,
      choice: {
        dataDir,
        measureSoftware: true,
        trial: () => {
          if (tf.getBackend() === "webgpu") return Promise.reject(new Error("out of memory"));
          return Promise.resolve({ samplesPerSec: 7, stepMs: 2286, batch: 16, steps: 3 });
        },
      },
    });
    assert.equal(info.name, "wasm");
    assert.deepEqual(info.choice?.webgpu, { error: "training trial failed: out of memory" });
    assert.match(
      info.choice!.reason,
      /only wasm trained .*; webgpu failed: training trial failed: out of memory/,
    );
    assert.equal((await cacheOf(dataDir)).choices[choiceKey(adapter)].chosen, "wasm");
    await Deno.remove(dataDir, { recursive: true });
  },
});

Deno.test("on a software adapter auto does not measure unless asked: wasm, by assumption", async () => {
  if (!adapter.available || !adapter.isFallback) return;
  const { trial, runs } = fixedTrial({ webgpu: 100, wasm: 1 });
  const info = await initBackend("auto", { wasmThreads: 1, choice: { trial } });
  assert.deepEqual(runs, []);
  assert.equal(info.name, "wasm");
  assert.equal(info.choice, undefined);
  assert.match(info.fallbackReason!, /software fallback/);
});
