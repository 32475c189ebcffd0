import { RuntimeError } from "../errors.ts";

/** The kinds of stored thing, and the prefix of their ids. */
export const ID_PREFIXES = { dataset: "ds", model: "mdl", job: "job" } as const;

/** A stored thing's kind. */
export type ResourceKind = keyof typeof ID_PREFIXES;

const ID_BODY = /^[0-9a-z]{16}$/;

/**
 * A fresh id such as `ds_01j9x2k7q8m3r4t5`: the kind's prefix, then 16 lowercase base-36 characters (time
 * first, so ids sort by creation, then random). Ids become directory and file names, so they are checked
 * with {@linkcode isResourceId} wherever they come in.
 *
 * @example
 * ```ts
 * import { isResourceId, newResourceId } from "./resource_id.ts";
 * const id = newResourceId("dataset");
 * console.assert(id.startsWith("ds_") && isResourceId("dataset", id));
 * ```
 */
export function newResourceId(kind: ResourceKind): string {
  const time = Date.now().toString(36).padStart(9, "0").slice(-9);
  const random = Array.from(crypto.getRandomValues(new Uint8Array(7)), (b) => (b % 36).toString(36)).join("");
  return `${ID_PREFIXES[kind]}_${time}${random}`;
}

/** Whether `id` is a well-formed id of `kind` (and so safe as a file name). */
export function isResourceId(kind: ResourceKind, id: string): boolean {
  const prefix = `${ID_PREFIXES[kind]}_`;
  return id.startsWith(prefix) && ID_BODY.test(id.slice(prefix.length));
}

/**
 * Throws `not_found` for an id that is not well-formed: no such thing can exist.
 *
 * @example
 * ```ts
 * import { assertResourceId } from "./resource_id.ts";
 * try { assertResourceId("model", "../etc"); } catch (e) { console.log((e as Error).message); }
 * ```
 */
export function assertResourceId(kind: ResourceKind, id: string): void {
  if (!isResourceId(kind, id)) {
    throw new RuntimeError("not_found", `${kind}_not_found`, `no ${kind} with id '${id}'`, { id });
  }
}
