/** The adaptation methods the runtime offers. */
export type Method = "daft" | "ft" | "lp" | "lp-ft" | "daft-no-conversion" | "conversion-only";

/** What a method does, step by step. */
export interface MethodRecipe {
  /** Convert BN layers to the target statistics before training. */
  convertBatchNorm: boolean;
  /** How the new head starts: zero (integrated LP/FT), Glorot (plain FT) or a fitted linear probe. */
  headInit: "zeros" | "glorot" | "linear-probe";
  /** Whether the backbone is trained at all (LP: no). */
  trainBackbone: boolean;
  /** BN behaviour while training: batch statistics ("train") or running statistics ("eval", LP-FT). */
  batchNorm: "train" | "eval";
  /**
   * Default learning rates (SGD, momentum 0.9, cosine per epoch). Single-rate methods use one for all. For
   * a zero-initialised head, lrHead is in units of 1 / mean |feature|^2 of the features it trains on (the
   * standardised ones by default; see init_head.ts), so it carries across backbones. The integrated methods'
   * defaults (4 / 1e-2) are discussed in docs/BENCHMARKS-methods.md.
   */
  lrHead: number;
  lrBackbone: number;
  description: string;
  /** What the zero head trains on: the raw features, or them standardised with the target statistics. */
  headInput?: "raw" | "standardized";
  /** Which epoch's weights are kept: the best on validation (ties: the earliest), or the last. */
  checkpoint?: "best" | "last";
  /** Cut each epoch into batches of near-equal size (no small trailing batch). */
  evenBatches?: boolean;
  /** Few-shot sets get more epochs, so that training runs at least this many SGD steps. */
  minSteps?: number;
  /** BN momentum while fine-tuning, in Keras terms (0.9 here is PyTorch's 0.1); default 0.9. */
  bnMomentum?: number;
}

/**
 * Every method's recipe. `daft` is BN conversion plus the integrated LP/FT schedule (zero head with a large
 * rate, backbone with a small one, one run); the two ablations drop one of the two parts.
 *
 * @example
 * ```ts
 * import { METHODS } from "./methods.ts";
 * console.assert(METHODS.daft.headInit === "zeros" && METHODS.daft.convertBatchNorm);
 * ```
 */
export const METHODS: Record<Method, MethodRecipe> = {
  "daft": {
    convertBatchNorm: true,
    headInit: "zeros",
    trainBackbone: true,
    batchNorm: "train",
    lrHead: 4,
    lrBackbone: 1e-2,
    description: "BN conversion + integrated LP/FT (zero head, large head rate, small backbone rate)",
  },
  "daft-no-conversion": {
    convertBatchNorm: false,
    headInit: "zeros",
    trainBackbone: true,
    batchNorm: "train",
    lrHead: 4,
    lrBackbone: 1e-2,
    description: "ablation: integrated LP/FT without BN conversion",
  },
  "conversion-only": {
    convertBatchNorm: true,
    headInit: "glorot",
    trainBackbone: true,
    batchNorm: "train",
    lrHead: 0.01,
    lrBackbone: 0.01,
    description: "ablation: BN conversion, then plain FT (one rate, Glorot head)",
  },
  "ft": {
    convertBatchNorm: false,
    headInit: "glorot",
    trainBackbone: true,
    batchNorm: "train",
    lrHead: 0.01,
    lrBackbone: 0.01,
    description: "fine-tune all layers with one rate and a Glorot-initialised head",
  },
  "lp": {
    convertBatchNorm: false,
    headInit: "linear-probe",
    trainBackbone: false,
    batchNorm: "eval",
    lrHead: 0,
    lrBackbone: 0,
    description: "L2-regularised logistic regression on frozen features (strength chosen on validation)",
  },
  "lp-ft": {
    convertBatchNorm: false,
    headInit: "linear-probe",
    trainBackbone: true,
    batchNorm: "eval",
    lrHead: 1e-3,
    lrBackbone: 1e-3,
    description: "linear probe, then fine-tune all layers with BN frozen in eval mode",
  },
};

/**
 * The training-loop rules every method shares unless its recipe says otherwise; each is an ablation row of
 * docs/BENCHMARKS-methods.md, where the reasons are measured:
 * - `headInput: "standardized"`: a zero head trains as if its input were standardised with the target
 *   training images' feature statistics (pooled ReLU features are uncentred; SGD on them spikes the loss);
 * - `checkpoint: "last"`: with 1-2 validation images per class the best-validation epoch is chosen by noise
 *   (ties went to an early, barely trained epoch), and under the cosine schedule the last epoch is the most
 *   trained one;
 * - `minSteps: 60`: a few shots make a few batches per epoch, and the default epochs then leave the head
 *   short of its fit;
 * - `evenBatches: true`: no small trailing batch whose train-mode BN statistics are noise.
 */
export const RECIPE_DEFAULTS: Required<
  Pick<MethodRecipe, "headInput" | "checkpoint" | "minSteps" | "evenBatches" | "bnMomentum">
> = {
  headInput: "standardized",
  checkpoint: "last",
  minSteps: 60,
  evenBatches: true,
  bnMomentum: 0.9,
};

/** The method names, for validation and docs. */
export const METHOD_NAMES = Object.keys(METHODS) as Method[];

/** The method an adaptation uses when it names none: DAFT, the method this runtime is built around. */
export const DEFAULT_METHOD: Method = "daft";
