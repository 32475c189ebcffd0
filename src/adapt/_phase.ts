import { RuntimeError } from "../errors.ts";
import type { AdaptOptions, AdaptProgress } from "./adapt_options.ts";

/** Stops the adaptation at a step boundary once `signal` is aborted (`conflict`/`cancelled`). */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new RuntimeError("conflict", "cancelled", "the adaptation was cancelled");
}

/** The start of a phase: a cancelled adaptation stops here, a running one says where it is. */
export function enterPhase(options: AdaptOptions, phase: AdaptProgress["phase"]): void {
  throwIfAborted(options.signal);
  options.onProgress?.({ phase });
}
