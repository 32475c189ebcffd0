import type * as tf from "@tensorflow/tfjs";
import { RuntimeError } from "../errors.ts";
import type { EpochRecord } from "./adaptation_metrics.ts";
import type { AugmentOptions } from "./augment.ts";
import { DEFAULT_METHOD, type Method, type MethodRecipe, METHODS, RECIPE_DEFAULTS } from "./methods.ts";

/** A progress event: which phase, and where in it. */
export interface AdaptProgress {
  phase: "bn_conversion" | "linear_probe" | "training" | "evaluating";
  epoch?: number;
  epochs?: number;
  step?: number;
  steps?: number;
  loss?: number;
  /** Images in the step's batch. */
  batchSize?: number;
  /** Set at the end of each epoch. */
  record?: EpochRecord;
}

/** Options of `adapt`; defaults come from the method's recipe. */
export interface AdaptOptions {
  method?: Method;
  /** Passes over the training images; few-shot sets get more (see `minSteps`). */
  epochs?: number;
  /**
   * Train at least this many SGD steps: a set too small to fill `epochs` with them gets more epochs
   * (default: the recipe's, 60; 0 trains exactly `epochs`).
   */
  minSteps?: number;
  batchSize?: number;
  lrHead?: number;
  lrBackbone?: number;
  momentum?: number;
  /** Seed for the split, batch order, augmentation and head initialisation. */
  seed?: number;
  /** Share of each class held out for validation (see `stratifiedSplit` for the rule). */
  valFraction?: number;
  augment?: Partial<AugmentOptions>;
  /** Overrides of the method's recipe, for ablations (see `MethodRecipe`). */
  recipe?: Partial<MethodRecipe>;
  onProgress?: (progress: AdaptProgress) => void;
  /**
   * Called after each epoch's validation with the classifier as it stands (softmax outputs, BN in eval
   * mode), for benchmarks that score every epoch; it must not change the model.
   */
  inspectEpoch?: (classifier: tf.LayersModel, epoch: number) => Promise<void> | void;
  signal?: AbortSignal;
}

/** Defaults for the options that no method sets. */
export const ADAPT_DEFAULTS = {
  method: DEFAULT_METHOD,
  epochs: 10,
  batchSize: 16,
  momentum: 0.9,
  seed: 0,
  valFraction: 0.2,
  augment: { crop: false, flip: false },
};

/** A method's recipe with the shared training-loop rules (`RECIPE_DEFAULTS`) filled in. */
export type ResolvedRecipe = MethodRecipe & typeof RECIPE_DEFAULTS;

/** One adaptation's options with every default applied: what the recipe's steps read. */
export interface AdaptSettings {
  method: Method;
  recipe: ResolvedRecipe;
  epochs: number;
  batchSize: number;
  seed: number;
  momentum: number;
  /** As requested (or the recipe's); a zero head rescales it, see `initHead`. */
  lrHead: number;
  lrBackbone: number;
  augment: AugmentOptions;
  valFraction: number;
  minSteps: number;
}

/**
 * Applies the defaults to `options`: the method's recipe over `RECIPE_DEFAULTS`, then `options.recipe` over
 * both; rates and `minSteps` from the recipe unless given; the rest from {@linkcode ADAPT_DEFAULTS}.
 * Values are not range-checked here (`validateTrainingSet` does that).
 *
 * @throws RuntimeError `invalid`/`unknown_method` for a method not in `METHODS`.
 *
 * @example
 * ```ts
 * import { resolveOptions } from "./adapt_options.ts";
 * const settings = resolveOptions({ method: "lp-ft", epochs: 3 });
 * console.assert(settings.lrHead === 1e-3 && settings.recipe.checkpoint === "last" && settings.epochs === 3);
 * ```
 */
export function resolveOptions(options: AdaptOptions): AdaptSettings {
  const method = options.method ?? ADAPT_DEFAULTS.method;
  const base = METHODS[method];
  if (!base) {
    throw new RuntimeError("invalid", "unknown_method", `no method named '${method}'`, {
      method,
      available: Object.keys(METHODS),
    });
  }
  const recipe: ResolvedRecipe = { ...RECIPE_DEFAULTS, ...base, ...options.recipe };
  return {
    method,
    recipe,
    epochs: options.epochs ?? ADAPT_DEFAULTS.epochs,
    batchSize: options.batchSize ?? ADAPT_DEFAULTS.batchSize,
    seed: options.seed ?? ADAPT_DEFAULTS.seed,
    momentum: options.momentum ?? ADAPT_DEFAULTS.momentum,
    lrHead: options.lrHead ?? recipe.lrHead,
    lrBackbone: options.lrBackbone ?? recipe.lrBackbone,
    augment: { ...ADAPT_DEFAULTS.augment, ...options.augment },
    valFraction: options.valFraction ?? ADAPT_DEFAULTS.valFraction,
    minSteps: options.minSteps ?? recipe.minSteps,
  };
}

/**
 * Whether the recipe trains anything. A linear-probe head on a frozen backbone (`lp`) is fitted in closed
 * form before training: it runs no epochs, and its learning rates are unused (so not checked either).
 *
 * @example
 * ```ts
 * import { trainsAnything } from "./adapt_options.ts";
 * import { METHODS } from "./methods.ts";
 * console.assert(!trainsAnything(METHODS.lp) && trainsAnything(METHODS["lp-ft"]));
 * ```
 */
export function trainsAnything(recipe: MethodRecipe): boolean {
  return recipe.trainBackbone || recipe.headInit !== "linear-probe";
}

/**
 * The settings `validateTrainingSet` range-checks: all the numeric ones, but the rates only where the
 * recipe {@linkcode trainsAnything}.
 *
 * @example
 * ```ts
 * import { checkedHyperparameters, resolveOptions } from "./adapt_options.ts";
 * console.assert(!("lrHead" in checkedHyperparameters(resolveOptions({ method: "lp" }))));
 * ```
 */
export function checkedHyperparameters(settings: AdaptSettings): Record<string, number> {
  const { epochs, minSteps, batchSize, lrHead, lrBackbone, momentum, valFraction } = settings;
  return {
    epochs,
    minSteps,
    batchSize,
    ...(trainsAnything(settings.recipe) ? { lrHead, lrBackbone } : {}),
    momentum,
    valFraction,
  };
}
