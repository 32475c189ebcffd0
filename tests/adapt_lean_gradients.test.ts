import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { leanVariableGrads } from "../src/adapt/lean_gradients.ts";
import { attachHead } from "../src/adapt/classifier_head.ts";
import { initBackend } from "../src/backend/init_backend.ts";
import { tinyBackbone } from "../src/model/tiny.ts";

await initBackend("wasm");

type Grads = (
  f: () => tf.Scalar,
  vars: tf.Variable[],
) => { value: tf.Scalar; grads: Record<string, tf.Tensor> };

async function read(gradsOf: Grads, f: () => tf.Scalar, vars: tf.Variable[]) {
  const { value, grads } = gradsOf(f, vars);
  const out = {
    value: (await value.data())[0],
    grads: await Promise.all(vars.map((v) => grads[v.name].data())),
  };
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

Deno.test("lean gradients equal tf.variableGrads bit for bit through a BN CNN in training mode, and leak nothing", async () => {
  const backbone = await tinyBackbone();
  const { logits } = attachHead(backbone, 3, "glorot", 0);
  const vars = logits.trainableWeights.map((w) => w.read() as tf.Variable);
  const x = tf.randomUniform([6, 28, 28, 1], 0, 1, "float32", 3) as tf.Tensor4D;
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], "int32"), 3);
  const loss = () =>
    tf.losses.softmaxCrossEntropy(y, logits.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
  // Training mode updates the BN moving statistics in each forward pass; that does not change the gradients.
  const stock = await read(tf.variableGrads as Grads, loss, vars);
  const before = tf.memory().numTensors;
  const lean = await read(leanVariableGrads, loss, vars);
  assert.equal(tf.memory().numTensors, before);
  assert.equal(lean.value, stock.value);
  lean.grads.forEach((g, i) => assert.deepEqual(g, stock.grads[i], `gradient of ${vars[i].name}`));
  tf.dispose([x, y]);
  logits.dispose();
});

Deno.test("lean gradients free each activation's gradient once used: the backward pass holds a fraction of the stock one", async () => {
  const layers = 6, size = [128, 128];
  const ws = Array.from(
    { length: layers },
    (_, i) => tf.variable(tf.randomNormal(size, 0, 0.1, "float32", i)),
  );
  const x = tf.randomNormal(size, 0, 1, "float32", 99);
  // A pass-through op after the first layer whose gradient notes the bytes held when it runs: late in the
  // backward pass, after the gradients of every later layer were made.
  let held = 0;
  const probe = tf.customGrad((h, _save) => ({
    value: tf.clone(h as tf.Tensor),
    gradFunc: (dy) => {
      held = tf.memory().numBytes;
      return tf.clone(dy as tf.Tensor);
    },
  }));
  const f = () => {
    let h = probe(tf.matMul(x, ws[0]));
    for (const w of ws.slice(1)) h = tf.relu(tf.matMul(h, w));
    return tf.sum(tf.square(h)) as tf.Scalar;
  };
  const stock = await read(tf.variableGrads as Grads, f, ws);
  const stockHeld = held;
  const lean = await read(leanVariableGrads, f, ws);
  lean.grads.forEach((g, i) => assert.deepEqual(g, stock.grads[i]));
  const activation = 128 * 128 * 4;
  assert.ok(
    stockHeld - held >= 4 * activation,
    `held ${held} bytes at the first layer's gradient, against ${stockHeld} for tf.variableGrads`,
  );
  tf.dispose([...ws, x]);
});

Deno.test("lean gradients give way to tf.variableGrads inside another gradient computation", () => {
  const w = tf.variable(tf.tensor1d([1, 2]));
  const x = tf.tensor1d([3, 4]);
  // The inner gradient runs while the outer one records a tape: it must go the stock way to be differentiated.
  const outer = tf.grad((a: tf.Tensor) => {
    const { value, grads } = leanVariableGrads(
      () => tf.sum(tf.mul(tf.mul(a, w), tf.mul(a, w))) as tf.Scalar,
      [w],
    );
    value.dispose();
    return tf.sum(grads[w.name]);
  });
  // grads[w] = 2 a^2 w; its sum's gradient in a is 4 a w.
  assert.deepEqual([...outer(x).dataSync()], [12, 32]);
  tf.dispose([w, x]);
});
