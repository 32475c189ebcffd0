import { join } from "node:path";
import { RuntimeError } from "../errors.ts";

/** The lock file's name in the data directory. */
export const LOCK_FILE = "daft-edge.lock";

/** Who holds (or last held) a data directory: written into the lock file. */
export interface LockHolder {
  pid: number;
  startedAt: string;
}

/** A held data-directory lock. */
export interface InstanceLock {
  /** The last holder, when it died without releasing the lock (its pid no longer runs, or was reused). */
  staleHolder?: LockHolder;
  /** Releases the lock (the file stays, emptied). Safe to call twice. */
  release(): void;
}

/**
 * Takes the data directory for this process: one server per data directory, so that only one runs crash
 * recovery, sweeps, and the queue. The lock is an exclusive `flock` on `<dataDir>/daft-edge.lock`, which the
 * kernel drops when the process dies however it dies, so a lock left by a killed server is taken over (and
 * reported as `staleHolder`, with its pid) rather than blocking the next start. The file names the holder's
 * pid for the error a second server gets.
 *
 * @throws {RuntimeError} `conflict`/`data_dir_in_use` naming the pid that holds it.
 *
 * @example
 * ```ts
 * import { lockDataDir } from "./instance_lock.ts";
 * const dir = await Deno.makeTempDir();
 * const lock = await lockDataDir(dir);
 * try {
 *   await lockDataDir(dir);
 * } catch (err) {
 *   console.assert((err as { code: string }).code === "data_dir_in_use");
 * }
 * lock.release();
 * (await lockDataDir(dir)).release();
 * ```
 */
export async function lockDataDir(dataDir: string): Promise<InstanceLock> {
  await Deno.mkdir(dataDir, { recursive: true });
  const path = join(dataDir, LOCK_FILE);
  const file = await Deno.open(path, { read: true, write: true, create: true });
  let locked = false;
  try {
    locked = await file.tryLock(true);
    const previous = parseHolder(await readAll(file));
    if (!locked) {
      const who = previous ? `pid ${previous.pid}, started ${previous.startedAt}` : "pid unknown";
      throw new RuntimeError(
        "conflict",
        "data_dir_in_use",
        `the data directory ${dataDir} is in use by another daft-edge server (${who}); stop it, or give ` +
          "this one another --data-dir",
        { ...previous },
      );
    }
    const holder: LockHolder = { pid: Deno.pid, startedAt: new Date().toISOString() };
    await file.truncate(0);
    await file.seek(0, Deno.SeekMode.Start);
    await file.write(new TextEncoder().encode(JSON.stringify(holder) + "\n"));
    await file.syncData();
    let released = false;
    return {
      // A holder that wrote itself in and never emptied the file died holding it.
      staleHolder: previous,
      release() {
        if (released) return;
        released = true;
        file.truncateSync(0);
        file.unlockSync();
        file.close();
      },
    };
  } catch (err) {
    if (locked) await file.unlock();
    file.close();
    throw err;
  }
}

// The lock file's text (a few dozen bytes; more is not a holder record).
async function readAll(file: Deno.FsFile): Promise<string> {
  await file.seek(0, Deno.SeekMode.Start);
  const buffer = new Uint8Array(4096);
  let length = 0;
  for (let n; length < buffer.length && (n = await file.read(buffer.subarray(length))) !== null;) length += n;
  return new TextDecoder().decode(buffer.subarray(0, length));
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(text);
    return Number.isInteger(holder?.pid)
      ? { pid: holder.pid, startedAt: String(holder.startedAt) }
      : undefined;
  } catch {
    return undefined;
  }
}
