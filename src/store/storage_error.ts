import { RuntimeError } from "../errors.ts";

// The errno names of "no room": the disk is full, or the user's quota is.
const NO_SPACE = new Set(["ENOSPC", "EDQUOT"]);

/**
 * Whether `err` is the file system saying it has no room (ENOSPC, or EDQUOT for a quota).
 *
 * @example
 * ```ts
 * import { isDiskFull } from "./storage_error.ts";
 * console.assert(isDiskFull(Object.assign(new Error("No space left on device"), { code: "ENOSPC" })));
 * console.assert(!isDiskFull(new Error("boom")));
 * ```
 */
export function isDiskFull(err: unknown): boolean {
  return err instanceof Error && NO_SPACE.has((err as { code?: string }).code ?? "");
}

/**
 * The error a full disk becomes wherever the runtime writes: `insufficient_storage` (HTTP 507), with no
 * path in it. Anything else is returned unchanged.
 *
 * @example
 * ```ts
 * import { asStorageError } from "./storage_error.ts";
 * const err = asStorageError(Object.assign(new Error("No space left on device (os error 28): writefile '/x'"), { code: "ENOSPC" }));
 * console.assert((err as { code: string }).code === "insufficient_storage");
 * ```
 */
export function asStorageError(err: unknown): unknown {
  if (!isDiskFull(err)) return err;
  return new RuntimeError(
    "insufficient_storage",
    "insufficient_storage",
    "the data directory's disk is full; nothing was changed. Free some space (delete unused models or " +
      "datasets) and try again",
    {},
  );
}
