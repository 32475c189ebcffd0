import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { RuntimeError } from "../errors.ts";

/** File name of the topology + manifest, as tfjs writes it. */
export const MODEL_JSON = "model.json";
/** File name of the single weight shard this runtime writes. */
export const WEIGHTS_BIN = "weights.bin";

/**
 * An IOHandler that writes `model.json` and `weights.bin` into `dir` (created if missing), the layout
 * `tf.loadLayersModel("http://.../model.json")` reads in a browser.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { directorySaver } from "./artifacts_io.ts";
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
 * await model.save(directorySaver(await Deno.makeTempDir()));
 * ```
 */
export function directorySaver(dir: string): tf.io.IOHandler {
  return tf.io.withSaveHandler(async (artifacts) => {
    await Deno.mkdir(dir, { recursive: true });
    const weightsManifest = [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }];
    const json: tf.io.ModelJSON = {
      modelTopology: artifacts.modelTopology ?? {},
      format: artifacts.format,
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy,
      weightsManifest,
      ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
    };
    const data = artifacts.weightData
      ? new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData))
      : new Uint8Array();
    await Deno.writeFile(join(dir, WEIGHTS_BIN), data);
    await Deno.writeTextFile(join(dir, MODEL_JSON), JSON.stringify(json));
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  });
}

/**
 * Reads a tfjs LayersModel directory (`model.json` plus the weight shards it names) into memory.
 * Fails with `model_not_found` or `invalid_model` naming the file at fault.
 *
 * @example
 * ```ts
 * import { readModelArtifacts } from "./artifacts_io.ts";
 * const artifacts = await readModelArtifacts("fixtures/tiny");
 * console.assert(artifacts.modelTopology !== undefined);
 * ```
 */
export async function readModelArtifacts(dir: string): Promise<tf.io.ModelArtifacts> {
  const jsonPath = join(dir, MODEL_JSON);
  let text: string;
  try {
    text = await Deno.readTextFile(jsonPath);
  } catch (err) {
    throw new RuntimeError("not_found", "model_not_found", `no ${MODEL_JSON} at ${jsonPath}`, {
      path: dir,
      cause: (err as Error).message,
    });
  }
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RuntimeError("invalid", "invalid_model", `${jsonPath} is not JSON: ${(err as Error).message}`, {
      path: dir,
    });
  }
  if (!json || typeof json !== "object" || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new RuntimeError(
      "invalid",
      "invalid_model",
      `${jsonPath} is not a tfjs LayersModel (needs modelTopology and weightsManifest)`,
      { path: dir },
    );
  }
  return await tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const specs: tf.io.WeightsManifestEntry[] = [];
    const buffers: ArrayBuffer[] = [];
    for (const group of manifest) {
      specs.push(...group.weights);
      for (const p of group.paths) {
        const file = join(dir, p);
        try {
          const bytes = await Deno.readFile(file);
          buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
        } catch (err) {
          throw new RuntimeError("invalid", "invalid_model", `weight shard ${file} cannot be read`, {
            path: dir,
            cause: (err as Error).message,
          });
        }
      }
    }
    return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
  });
}

/**
 * Loads a LayersModel from a directory written by {@linkcode directorySaver} or by tfjs itself.
 *
 * @example
 * ```ts
 * import { loadModelFromDirectory } from "./artifacts_io.ts";
 * const model = await loadModelFromDirectory("fixtures/tiny");
 * console.log(model.outputs[0].shape);
 * ```
 */
export async function loadModelFromDirectory(dir: string): Promise<tf.LayersModel> {
  const artifacts = await readModelArtifacts(dir);
  try {
    return await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (err) {
    throw new RuntimeError(
      "invalid",
      "invalid_model",
      `${dir} does not load as a LayersModel: ${(err as Error).message}`,
      {
        path: dir,
      },
    );
  }
}
