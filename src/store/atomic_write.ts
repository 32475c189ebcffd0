import { dirname, join } from "node:path";
import { asStorageError } from "./storage_error.ts";

/** The name prefix of {@linkcode writeFileAtomic}'s temporary files. */
export const TEMP_PREFIX = ".tmp-";

/**
 * Writes `data` to `path` so that readers see the old file or the new one, never a part: the bytes go to a
 * temporary file beside it (named `.tmp-*`, which the stores' start-up sweep removes if a crash leaves one),
 * are flushed to disk, and the temporary file is renamed over `path`.
 *
 * @throws {RuntimeError} `insufficient_storage` when the disk is full (`path` is then unchanged).
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic_write.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.json`, '{"ok":true}');
 * console.assert(JSON.parse(await Deno.readTextFile(`${dir}/a.json`)).ok);
 * ```
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const temp = join(dirname(path), `${TEMP_PREFIX}${crypto.randomUUID()}`);
  try {
    const file = await Deno.open(temp, { write: true, createNew: true });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw asStorageError(err);
  }
}

/**
 * {@linkcode writeFileAtomic} for a JSON value, pretty-printed.
 *
 * @example
 * ```ts
 * import { writeJsonAtomic } from "./atomic_write.ts";
 * const dir = await Deno.makeTempDir();
 * await writeJsonAtomic(`${dir}/b.json`, { n: 1 });
 * ```
 */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, JSON.stringify(value, null, 2));
}

/**
 * Reads a JSON file, or returns `undefined` when it does not exist.
 *
 * @example
 * ```ts
 * import { readJsonIfExists } from "./atomic_write.ts";
 * console.assert(await readJsonIfExists("/nonexistent/x.json") === undefined);
 * ```
 */
export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}
