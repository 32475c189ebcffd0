import * as tf from "@tensorflow/tfjs";

/** How far training moved one layer's trainable weights: `|w - w0|` and `|w - w0| / |w0|`. */
export interface LayerChange {
  layer: string;
  norm: number;
  relative: number;
}

/**
 * Per layer of `model` that owns some of `current` (variables), how far they moved from `initial` (their
 * values at the start of training, same order and shapes); variables of no layer are reported under
 * their own name.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { parameterChangeByLayer } from "./parameter_change.ts";
 * import { tinyBackbone } from "../model/tiny.ts";
 * const { model } = await tinyBackbone();
 * const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
 * const initial = vars.map((v) => v.clone());
 * const change = await parameterChangeByLayer(model, vars, initial);
 * console.assert(change.every((c) => c.norm === 0));
 * tf.dispose(initial);
 * ```
 */
export async function parameterChangeByLayer(
  model: tf.LayersModel,
  current: tf.Variable[],
  initial: tf.Tensor[],
): Promise<LayerChange[]> {
  const byLayer = new Map<string, { diff: number; base: number }>();
  const owner = new Map<string, string>();
  for (const layer of model.layers) {
    for (const w of layer.trainableWeights) owner.set((w.read() as tf.Variable).name, layer.name);
  }
  const diffs = tf.tidy(() =>
    current.map((v, i) => tf.stack([tf.sum(tf.square(tf.sub(v, initial[i]))), tf.sum(tf.square(initial[i]))]))
  );
  const values = await Promise.all(diffs.map((d) => d.data()));
  diffs.forEach((_, i) => {
    const [diff, base] = values[i];
    const name = owner.get(current[i].name) ?? current[i].name;
    const acc = byLayer.get(name) ?? { diff: 0, base: 0 };
    byLayer.set(name, { diff: acc.diff + diff, base: acc.base + base });
  });
  tf.dispose(diffs);
  return [...byLayer].map(([layer, { diff, base }]) => ({
    layer,
    norm: Math.sqrt(diff),
    relative: base > 0 ? Math.sqrt(diff / base) : 0,
  }));
}
