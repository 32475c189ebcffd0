/** Whether a BN-refreshed model may replace the active one, and why not. */
export interface RefreshGuard {
  /**
   * `ok`: activate as asked. `too_few_images`: the refresh set is too small for BN statistics to be
   * trusted. `collapsed`: after the refresh one class takes nearly all predictions on the refresh images,
   * which it did not before. Either way the model is saved, but not activated (unless forced).
   */
  verdict: "ok" | "too_few_images" | "collapsed";
  /** Images the refresh used, and the fewest it needs. */
  images: number;
  minImages: number;
  /** Share of the refresh images whose predicted class changed with the refresh. */
  changed: number;
  /** Largest share of the refresh images given to one class, before and after. */
  topShare: { before: number; after: number };
  /** The verdict in plain words. */
  message: string;
}

/** Fewest unlabelled images a refresh must use to be activated (below, the statistics are noise). */
export const MIN_REFRESH_IMAGES = 16;
/** Share of predictions one class may take after a refresh before the refresh counts as collapsed. */
export const COLLAPSE_SHARE = 0.9;

/**
 * The activation guard of a `bn-refresh`. A refresh has no labels, so it cannot compare accuracy as the
 * adaptation guard does; it checks what it can see instead: enough images for BN statistics
 * ({@linkcode MIN_REFRESH_IMAGES}), and no collapse of the predictions on the refresh images (one class
 * taking at least {@linkcode COLLAPSE_SHARE} of them after the refresh, from under that share before).
 *
 * `before` and `after` are the predicted class of each refresh image, by the model before and after.
 *
 * @example
 * ```ts
 * import { refreshGuard } from "./refresh_guard.ts";
 * const spread = Array.from({ length: 20 }, (_, i) => i % 4);
 * console.assert(refreshGuard(spread, spread).verdict === "ok");
 * console.assert(refreshGuard(spread.slice(0, 8), spread.slice(0, 8)).verdict === "too_few_images");
 * console.assert(refreshGuard(spread, spread.map(() => 0)).verdict === "collapsed");
 * ```
 */
export function refreshGuard(before: ArrayLike<number>, after: ArrayLike<number>): RefreshGuard {
  const n = after.length;
  const topShare = (xs: ArrayLike<number>) => {
    const counts = new Map<number, number>();
    for (let i = 0; i < xs.length; i++) counts.set(xs[i], (counts.get(xs[i]) ?? 0) + 1);
    return xs.length ? Math.max(...counts.values()) / xs.length : 0;
  };
  let changedCount = 0;
  for (let i = 0; i < n; i++) if (before[i] !== after[i]) changedCount++;
  const shares = { before: topShare(before), after: topShare(after) };
  const base = {
    images: n,
    minImages: MIN_REFRESH_IMAGES,
    changed: n ? changedCount / n : 0,
    topShare: shares,
  };
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  if (n < MIN_REFRESH_IMAGES) {
    return {
      verdict: "too_few_images",
      ...base,
      message:
        `the refresh used ${n} images, fewer than the ${MIN_REFRESH_IMAGES} BN statistics need: not activated`,
    };
  }
  if (shares.after >= COLLAPSE_SHARE && shares.before < COLLAPSE_SHARE) {
    return {
      verdict: "collapsed",
      ...base,
      message: `after the refresh one class takes ${pct(shares.after)} of the predictions on the refresh ` +
        `images (${pct(shares.before)} before): not activated`,
    };
  }
  return {
    verdict: "ok",
    ...base,
    message: `refreshed on ${n} images; ${pct(base.changed)} of their predictions changed`,
  };
}
