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
   * a zero-initialised head, lrHead is in units of 1 / mean |feature|^2 (see adapt.ts), so it carries
   * across backbones. The integrated methods' defaults (32 / 1e-2) are the pair that won on ID validation in
   * 6 of 7 cells of docs/BENCHMARKS-methods.md.
   */
  lrHead: number;
  lrBackbone: number;
  description: string;
  /** What the zero head trains on: the raw features, or them standardised with the target statistics. */
  headInput?: "raw" | "standardized";
  /**
   * Which epoch's weights are kept: the best on validation (ties: the earliest, or with `best-late` the
   * latest), or the last.
   */
  checkpoint?: "best" | "best-late" | "last";
  /** Cut each epoch into batches of near-equal size (no small trailing batch). */
  evenBatches?: boolean;
  /** Few-shot sets get more epochs, so that training runs at least this many SGD steps. */
  minSteps?: number;
  /** BN momentum while fine-tuning (Keras terms); default 0.9. */
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
    lrHead: 32,
    lrBackbone: 1e-2,
    description: "BN conversion + integrated LP/FT (zero head, large head rate, small backbone rate)",
  },
  "daft-no-conversion": {
    convertBatchNorm: false,
    headInit: "zeros",
    trainBackbone: true,
    batchNorm: "train",
    lrHead: 32,
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

/** The method names, for validation and docs. */
export const METHOD_NAMES = Object.keys(METHODS) as Method[];
