import { basename, dirname, relative } from "node:path";
import type { z } from "zod";
import { RuntimeError } from "../errors.ts";

/** What reading a stored JSON record found: the value, no file, or a file that is not a valid record. */
export type RecordRead<T> =
  | { state: "ok"; value: T }
  | { state: "missing"; quarantined: boolean }
  | { state: "corrupt"; reason: string };

/** The suffix a corrupt record is renamed with, beside where it was. */
export const CORRUPT_SUFFIX = ".corrupt";

/** A stored item that could not be read, as the API reports it beside the good ones. */
export interface CorruptItem {
  id: string;
  /** The file that was moved aside, relative to the data directory. */
  file: string;
  code: string;
  message: string;
}

/**
 * Reads a JSON record and checks it against `schema`. A file that does not parse or does not match is
 * `corrupt` (with the first problem as `reason`); a missing file is `missing`, with `quarantined` saying
 * whether an earlier read moved a corrupt one aside.
 *
 * @example
 * ```ts
 * import { readRecord } from "./stored_record.ts";
 * import { z } from "zod";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.json`, '{"n": 1');
 * const read = await readRecord(`${dir}/a.json`, z.object({ n: z.number() }));
 * console.assert(read.state === "corrupt");
 * ```
 */
export async function readRecord<T>(path: string, schema: z.ZodType<T>): Promise<RecordRead<T>> {
  let text;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    const quarantined = await Deno.stat(path + CORRUPT_SUFFIX).then(() => true, () => false);
    return { state: "missing", quarantined };
  }
  let json;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { state: "corrupt", reason: `not JSON: ${(err as Error).message}` };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { state: "ok", value: parsed.data };
  const issue = parsed.error.issues[0];
  return { state: "corrupt", reason: `${issue.path.join(".") || "the record"}: ${issue.message}` };
}

/**
 * Moves a corrupt record aside (`<file>.corrupt`, replacing an older one) and logs one line naming it
 * relative to `dataDir`, so an operator can inspect or remove it; the rest of the store keeps serving.
 * Returns the file's name relative to `dataDir`.
 *
 * @example
 * ```ts
 * import { quarantineRecord } from "./stored_record.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.json`, "{");
 * console.assert(await quarantineRecord(dir, `${dir}/a.json`, "not JSON") === "a.json");
 * ```
 */
export async function quarantineRecord(dataDir: string, path: string, reason: string): Promise<string> {
  const name = relative(dataDir, path);
  await Deno.rename(path, path + CORRUPT_SUFFIX).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
  console.error(`[store] ${name} is corrupt (${reason}); moved aside to ${basename(path)}${CORRUPT_SUFFIX}`);
  return name;
}

/**
 * The error a read of a quarantined item fails with: `corrupt`/`<kind>_corrupt`, naming the file relative
 * to the data directory and how to get rid of the item.
 *
 * @example
 * ```ts
 * import { corruptItemError } from "./stored_record.ts";
 * const err = corruptItemError("dataset", "ds_1", "datasets/ds_1/dataset.json", "DELETE /v1/datasets/ds_1");
 * console.assert(err.code === "dataset_corrupt" && err.kind === "corrupt");
 * ```
 */
export function corruptItemError(kind: string, id: string, file: string, remedy: string): RuntimeError {
  return new RuntimeError(
    "corrupt",
    `${kind}_corrupt`,
    `${kind} ${id} is corrupt: its record ${file} could not be read and was moved aside to ` +
      `${basename(file)}${CORRUPT_SUFFIX}; remove the ${kind} with ${remedy}`,
    { id, file },
  );
}

/** The data directory a store's root sits in (`<dataDir>/datasets` -> `<dataDir>`). */
export function dataDirOf(storeRoot: string): string {
  return dirname(storeRoot);
}
