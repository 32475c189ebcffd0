import * as tf from "@tensorflow/tfjs";

// tfjs' `variableGrads` keeps every tensor of the backward pass until it returns: the gradient of each
// intermediate tensor stays in its accumulation map, and each tape node's saved inputs stay on the tape, so a
// training step's peak holds the activations and, beside them, a gradient of the same size for each. This is
// the same computation, the same kernels in the same order, with one change: once a tape node's gradient has
// been taken, the gradients of its outputs and the tensors it saved are freed, as nothing later in the
// backward pass reads them. The peak is then the activations and the few gradients in flight.

/** The parts of tfjs-core's engine (4.22) a gradient pass uses: its tape and scopes. */
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
}

function engineInternals(): EngineInternals | undefined {
  const engine = tf.engine() as unknown as Partial<EngineInternals>;
  const usable = engine.state && "activeTape" in engine.state && "gradientDepth" in engine.state &&
    typeof engine.scopedRun === "function" && typeof engine.startTape === "function" &&
    typeof engine.endTape === "function";
  return usable ? engine as EngineInternals : undefined;
}

/**
 * The nodes of `tape` on a path from one of `xs` to `y`, in tape order, each with only the inputs that come
 * from `xs` (what tfjs-core's own gradient pass walks).
 */
function nodesFromXsToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((input) => fromX.has(input.id))) {
      nodesFromX.add(node.id);
      for (const output of node.outputs) fromX.add(output.id);
    }
  }
  const toY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((output) => toY.has(output.id))) {
      nodesToY.add(node.id);
      for (const input of Object.values(node.inputs)) toY.add(input.id);
    }
  }
  return tape.filter((node) => nodesFromX.has(node.id) && nodesToY.has(node.id)).map((node) => ({
    ...node,
    inputs: Object.fromEntries(Object.entries(node.inputs).filter(([, input]) => fromX.has(input.id))),
  }));
}

/**
 * `tf.variableGrads(f, vars)` for trainable `vars`, freeing each intermediate gradient and each tape node's
 * saved tensors as soon as the backward pass is past them: the same values, bit for bit, with a lower peak.
 * Falls back to `tf.variableGrads` inside another gradient computation (higher-order gradients read the
 * tape afterwards) or on an engine without the internals it uses. Returns the loss and a gradient per
 * variable name (a variable `f` does not reach gets none); the caller disposes them.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { leanVariableGrads } from "./lean_gradients.ts";
 * const w = tf.variable(tf.tensor1d([1, 2, 3]));
 * const { value, grads } = leanVariableGrads(() => w.square().sum() as tf.Scalar, [w]);
 * console.assert(value.dataSync()[0] === 14 && grads[w.name].dataSync().join() === "2,4,6");
 * tf.dispose([value, grads[w.name], w]);
 * ```
 */
export function leanVariableGrads(
  f: () => tf.Scalar,
  vars: tf.Variable[],
): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const engine = engineInternals();
  if (!engine || engine.state.gradientDepth !== 0 || vars.some((v) => !v.trainable)) {
    return tf.variableGrads(f, vars) as { value: tf.Scalar; grads: Record<string, tf.Tensor> };
  }
  const y = engine.scopedRun(
    () => engine.startTape(),
    () => engine.endTape(),
    () => engine.tidy("forward", f),
  );
  if (!(y instanceof tf.Tensor) || y.rank !== 0) {
    throw new Error("leanVariableGrads: f must return a scalar tensor");
  }
  const tape = engine.state.activeTape ?? [];
  const nodes = nodesFromXsToY(tape, vars, y);
  if (nodes.length === 0) throw new Error("leanVariableGrads: no variable leads to the value of f");
  return engine.tidy("backward", () => {
    // Each tensor's accumulated gradient, and how many tensors hold each gradient tensor (a gradient function
    // may hand the same tensor to two inputs, or pass its dy through).
    const gradOf = new Map<number, tf.Tensor>();
    const holders = new Map<tf.Tensor, number>();
    const hold = (id: number, g: tf.Tensor) => {
      gradOf.set(id, g);
      holders.set(g, (holders.get(g) ?? 0) + 1);
    };
    const release = (id: number) => {
      const g = gradOf.get(id);
      if (!g) return;
      gradOf.delete(id);
      const left = (holders.get(g) ?? 1) - 1;
      if (left > 0) return holders.set(g, left);
      holders.delete(g);
      g.dispose();
    };
    hold(y.id, tf.onesLike(y));
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i];
      if (!node.gradient) {
        throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
      }
      const inputGradients = node.gradient(node.outputs.map((o) => gradOf.get(o.id) ?? null));
      for (const [name, x] of Object.entries(node.inputs)) {
        if (!(name in inputGradients)) {
          throw new Error(`Cannot backprop through input ${name} of ${node.kernelName}.`);
        }
        const dx = engine.tidy(name, () => inputGradients[name]());
        if (dx.dtype !== "float32" || !tf.util.arraysEqual(dx.shape, x.shape)) {
          throw new Error(
            `Error in gradient for op ${node.kernelName}: input '${name}' has no float32 gradient of its shape`,
          );
        }
        const sum = gradOf.get(x.id);
        if (sum === undefined) hold(x.id, dx);
        else {
          const total = tf.add(sum, dx);
          release(x.id);
          if (!holders.has(dx)) dx.dispose();
          hold(x.id, total);
        }
      }
      // Nothing before this node in the tape reads its outputs' gradients or what it saved.
      for (const output of node.outputs) release(output.id);
      for (const saved of node.saved ?? []) if (!holders.has(saved)) saved.dispose();
    }
    const grads: Record<string, tf.Tensor> = {};
    for (const v of vars) {
      const g = gradOf.get(v.id);
      if (g) grads[v.name] = g;
    }
    for (const node of tape) for (const saved of node.saved ?? []) saved.dispose();
    engine.state.activeTape = null;
    return { value: y as tf.Scalar, grads };
  });
}
