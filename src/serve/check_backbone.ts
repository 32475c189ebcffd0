import type { ModelMetadata } from "../adapt/adapted_model.ts";
import { RuntimeError } from "../errors.ts";
import type { Provenance } from "../model/backbone.ts";
import { listBackbones, loadBackbone } from "../model/registry.ts";

// The provenance fields that name the pretrained weights and where they were cut; `path` and `notes` say
// where a box keeps them and may differ between boxes running the same release.
const IDENTIFYING: (keyof Provenance)[] = ["source", "package", "version", "featureLayer", "layersKept"];

/**
 * Checks that a model made elsewhere was adapted from a backbone this server has: the same registered name,
 * built from the same pretrained weights (package and version), cut at the same layer, taking the same
 * input. The backbone is built here, with the model's input size and cut, and compared with the model's
 * recorded provenance; it is disposed again.
 *
 * @throws {RuntimeError} `invalid`/`incompatible_model_format` for metadata of an unknown format;
 * `invalid`/`incompatible_backbone` naming what differs.
 *
 * @example
 * ```ts
 * import { assertBackboneCompatible } from "./check_backbone.ts";
 * import type { ModelMetadata } from "../adapt/adapted_model.ts";
 * const metadata = { format: "daft-edge-model/1", backbone: { name: "resnet" } } as unknown as ModelMetadata;
 * try {
 *   await assertBackboneCompatible(metadata);
 * } catch (err) {
 *   console.assert((err as { code: string }).code === "incompatible_backbone");
 * }
 * ```
 */
export async function assertBackboneCompatible(metadata: ModelMetadata): Promise<void> {
  if (metadata?.format !== "daft-edge-model/1") {
    throw new RuntimeError(
      "invalid",
      "incompatible_model_format",
      `the model's metadata is of format '${String(metadata?.format)}'; this server reads daft-edge-model/1`,
      { format: metadata?.format ?? null },
    );
  }
  const name = metadata.backbone?.name;
  const known = listBackbones().map((b) => b.name);
  if (!known.includes(name)) {
    throw incompatible(
      name === "path"
        ? "the model was adapted from a backbone read from a directory on its box, which this server cannot check"
        : `the model was adapted from backbone '${name}', which this server does not have`,
      { backbone: name ?? null, available: known },
    );
  }
  const theirs = metadata.backbone.provenance;
  const backbone = await loadBackbone({
    name,
    inputSize: metadata.input?.height,
    cutLayer: theirs?.featureLayer,
  }).catch((err) => {
    throw incompatible(`backbone '${name}' cannot be built for this model here: ${(err as Error).message}`, {
      backbone: name,
    });
  });
  try {
    const ours = backbone.provenance;
    const differs = IDENTIFYING.filter((key) => (ours[key] ?? null) !== (theirs?.[key] ?? null));
    const input = metadata.input;
    if (
      input?.height !== backbone.input.height || input?.width !== backbone.input.width ||
      input?.channels !== backbone.input.channels
    ) differs.push("input" as keyof Provenance);
    if (differs.length) {
      const pick = (p: Partial<Provenance> | undefined) =>
        Object.fromEntries(IDENTIFYING.map((key) => [key, p?.[key] ?? null]));
      throw incompatible(
        `the model's backbone '${name}' differs from this server's in ${differs.join(", ")}`,
        {
          backbone: name,
          differs,
          model: { ...pick(theirs), input: input ?? null },
          server: { ...pick(ours), input: backbone.input },
        },
      );
    }
  } finally {
    backbone.model.dispose();
  }
}

function incompatible(message: string, details: Record<string, unknown>) {
  return new RuntimeError("invalid", "incompatible_backbone", message, details);
}
