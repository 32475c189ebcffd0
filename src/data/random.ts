/**
 * A seeded pseudo-random number generator (mulberry32): the same seed gives the same sequence on every
 * platform, so subsets, shuffles and initialisations are reproducible from a single number.
 *
 * Not for cryptography: 32 bits of state, period 2^32.
 *
 * @param seed Any finite number; it is truncated to an unsigned 32-bit integer.
 * @returns A function that returns the next number in [0, 1) on each call.
 *
 * @example
 * ```ts
 * import { seededRandom } from "./random.ts";
 * const a = seededRandom(42), b = seededRandom(42);
 * console.assert(a() === b() && a() === b());
 * const x = a();
 * console.assert(x >= 0 && x < 1);
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = Math.trunc(seed) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
