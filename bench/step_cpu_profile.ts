/**
 * Where the calling thread's time goes in MobileNetV2 training steps on wasm: V8's sampling CPU profile of a
 * child process that runs `trainingStep` in a loop, taken through the inspector protocol, self time summed by
 * function. WebAssembly functions are named by module and index (`wasm-function[414]`; the training kernels'
 * module is the small one, whose export names `wasm-objdump -x` lists); JavaScript ones by name and file. It
 * profiles the thread that runs the step: XNNPACK's pthreads and the kernel helper thread are not sampled,
 * but the time this thread spends waiting for them is (`#waitFor` in the helper's code).
 *
 *   deno task bench:cpu [--batch 16] [--seconds 4] [--top 25]
 *
 * @module
 */
import { commandLine } from "../cli/_args.ts";
import { disposeSpeedState, readBackStep, speedTrainingState } from "../src/adapt/training_speed_trial.ts";
import { initBackend } from "../src/backend/init_backend.ts";
import { loadBackbone } from "../src/model/registry.ts";

const USAGE = `usage: deno task bench:cpu [options]

A CPU profile of the thread that runs MobileNetV2 training steps on wasm, self time by function.

  --batch N --seconds N (profiled) --top N (functions listed)`;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** Self time by function of a V8 CPU profile (`Profiler.stop`'s), largest first, as shares of all samples. */
export function selfTimes(profile: { nodes: ProfileNode[]; samples: number[] }): [string, number][] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const shares = new Map<string, number>();
  for (const id of profile.samples) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const line = url.startsWith("wasm:") ? "" : `:${lineNumber + 1}`;
    const where = url ? ` ${url.split("/").slice(-2).join("/")}${line}` : "";
    const key = `${functionName || "(anonymous)"}${where}`;
    shares.set(key, (shares.get(key) ?? 0) + 1 / profile.samples.length);
  }
  return [...shares].sort((a, b) => b[1] - a[1]);
}

/** The child: steps until killed, after printing READY once warm. */
async function stepLoop(batch: number): Promise<never> {
  await initBackend("wasm");
  const { state, batchOf } = speedTrainingState(await loadBackbone({ name: "mobilenetv2-imagenet" }));
  const { x, y } = batchOf(batch);
  const step = () => readBackStep(state, x, y);
  for (let i = 0; i < 3; i++) await step();
  console.log("READY");
  try {
    for (;;) await step();
  } finally {
    disposeSpeedState(state);
  }
}

/** Sends inspector protocol calls over `socket`, one answer per id. */
function inspectorClient(socket: WebSocket) {
  let id = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    waiting.get(message.id)?.(message.result);
    waiting.delete(message.id);
  };
  return <T>(method: string, params: Record<string, unknown> = {}) =>
    new Promise<T>((resolve) => {
      waiting.set(++id, resolve as (result: unknown) => void);
      socket.send(JSON.stringify({ id, method, params }));
    });
}

if (import.meta.main) {
  const { values } = commandLine(USAGE, {
    batch: { type: "string", default: "16" },
    seconds: { type: "string", default: "4" },
    top: { type: "string", default: "25" },
    child: { type: "boolean", default: false },
  });
  const batch = Number(values.batch);
  if (values.child) await stepLoop(batch);
  const port = 9300 + Math.floor(Math.random() * 500);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--no-liftoff",
      `--inspect=127.0.0.1:${port}`,
      new URL(import.meta.url).pathname,
      "--child",
      "--batch",
      String(batch),
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    for (let seen = ""; !seen.includes("READY");) {
      const { value, done } = await lines.read();
      if (done) throw new Error("the step loop ended before it was warm");
      seen += value;
    }
    const [target] = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    const socket = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = reject;
    });
    const call = inspectorClient(socket);
    await call("Profiler.enable");
    await call("Profiler.setSamplingInterval", { interval: 100 });
    await call("Profiler.start");
    await new Promise((resolve) => setTimeout(resolve, Number(values.seconds) * 1000));
    const { profile } = await call<{ profile: { nodes: ProfileNode[]; samples: number[] } }>("Profiler.stop");
    socket.close();
    console.log(`batch ${batch}: ${profile.samples.length} samples of the thread that runs the steps`);
    console.log("| share | function |\n| ---: | --- |");
    for (const [name, share] of selfTimes(profile).slice(0, Number(values.top))) {
      console.log(`| ${(100 * share).toFixed(1)}% | ${name} |`);
    }
  } finally {
    child.kill();
    await child.status;
  }
}
