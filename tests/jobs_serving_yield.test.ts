// A training worker gives way to predictions: it pauses between kernels while any are in progress, for a
// bounded time, and runs at full speed when none are. (Its effect on latency is measured by
// `deno task bench:load`, not timed here.)
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { ServingDemand } from "../src/jobs/serving_demand.ts";
import { yieldToServing } from "../src/jobs/yield_to_serving.ts";

await tf.setBackend("cpu");

function timeKernel(): number {
  const start = performance.now();
  tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)));
  return performance.now() - start;
}

Deno.test("the serving demand counts requests in and out, once each", () => {
  const demand = new ServingDemand();
  const a = demand.begin();
  const b = demand.begin();
  assert.equal(demand.waiting, 2);
  a();
  a();
  assert.equal(demand.waiting, 1);
  b();
  assert.equal(new Int32Array(demand.buffer)[0], 0);
});

Deno.test("while a prediction is in progress, kernels pause up to maxPauseMs, then run for their share before pausing again", () => {
  const demand = new ServingDemand();
  // A share of 0.99: after a 120 ms pause the job runs for about 12 s before it may pause again.
  const undo = yieldToServing(new Int32Array(demand.buffer), {
    maxPauseMs: 120,
    jobShare: 0.99,
    lingerMs: 10,
  });
  try {
    assert.ok(timeKernel() < 60, "no pause without demand");
    const served = demand.begin();
    const paused = timeKernel();
    assert.ok(paused >= 110, `paused ${paused} ms`);
    assert.ok(timeKernel() < 60, "the job runs again after a full pause");
    served();
  } finally {
    undo();
  }
});

Deno.test("with a small job share, a kernel after a pause pauses again once its share has run", async () => {
  const demand = new ServingDemand();
  const undo = yieldToServing(new Int32Array(demand.buffer), { maxPauseMs: 40, jobShare: 0.2, lingerMs: 10 });
  try {
    const served = demand.begin();
    assert.ok(timeKernel() >= 35);
    await new Promise((r) => setTimeout(r, 20)); // more than the 10 ms share
    assert.ok(timeKernel() >= 35, "paused again");
    served();
  } finally {
    undo();
  }
});

Deno.test("a thread waiting on the demand wakes as soon as the last prediction ends, not at its timeout", async () => {
  const demand = new ServingDemand();
  const served = demand.begin();
  // The pause blocks its thread, so the kernel runs in a worker and the request ends here.
  const worker = new Worker(
    `data:application/javascript,${
      encodeURIComponent(`
        self.onmessage = (e) => {
          const demand = new Int32Array(e.data);
          const start = performance.now();
          while (Atomics.load(demand, 0) > 0) Atomics.wait(demand, 0, Atomics.load(demand, 0), 5000);
          self.postMessage(performance.now() - start);
        };
      `)
    }`,
    { type: "module" },
  );
  const waited = new Promise<number>((resolve) => (worker.onmessage = (e) => resolve(e.data)));
  worker.postMessage(demand.buffer);
  await new Promise((r) => setTimeout(r, 100));
  served();
  const ms = await waited;
  worker.terminate();
  assert.ok(ms >= 80 && ms < 2000, `woke after ${ms} ms, not at the 5 s timeout`);
});

// Another thread plays the client: it ends and begins requests on the shared count while this thread is
// paused inside a kernel, as the server's thread does while the job's worker waits.
function clientThread(demand: ServingDemand, script: [number, "end" | "begin"][]) {
  const worker = new Worker(
    `data:application/javascript,${
      encodeURIComponent(`
        self.onmessage = (e) => {
          const count = new Int32Array(e.data.buffer);
          for (const [at, what] of e.data.script) {
            setTimeout(() => {
              if (what === "end" && Atomics.sub(count, 0, 1) === 1) Atomics.notify(count, 0);
              if (what === "begin" && Atomics.add(count, 0, 1) === 0) Atomics.notify(count, 0);
            }, at);
          }
          self.postMessage("ready");
        };
      `)
    }`,
    { type: "module" },
  );
  const ready = new Promise((resolve) => (worker.onmessage = resolve));
  worker.postMessage({ buffer: demand.buffer, script });
  return { ready, stop: () => worker.terminate() };
}

// How long one kernel pauses when a request is in progress as it starts and the client thread then ends and
// begins requests on `script`'s schedule (linger 60 ms, maxPause 2 s).
async function pauseUnder(script: [number, "end" | "begin"][]): Promise<number> {
  const demand = new ServingDemand();
  const undo = yieldToServing(new Int32Array(demand.buffer), {
    maxPauseMs: 2000,
    jobShare: 0.2,
    lingerMs: 60,
  });
  demand.begin();
  const client = clientThread(demand, script);
  try {
    await client.ready;
    return timeKernel();
  } finally {
    client.stop();
    undo();
  }
}

Deno.test("a pause lingers lingerMs after the last prediction ends, not until maxPauseMs", async () => {
  const paused = await pauseUnder([[40, "end"]]);
  assert.ok(paused >= 90 && paused < 1000, `paused ${paused} ms: about 40 ms of request and 60 of linger`);
});

Deno.test("a prediction that follows within the linger keeps the job paused until it too has ended", async () => {
  const paused = await pauseUnder([[40, "end"], [70, "begin"], [150, "end"]]);
  assert.ok(paused >= 200 && paused < 1000, `paused ${paused} ms: until 150 ms, then 60 of linger`);
});
