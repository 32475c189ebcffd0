// An unpacked release's server, started through its launcher as an edge box would: a clean environment (no
// npm cache, an empty DENO_DIR, no HOME, nothing from the caller), a working directory with no deno.json.
// Used by the release test and by bench/release.ts.
import { join } from "node:path";

/** Options of {@linkcode startRelease}. */
export interface StartReleaseOptions {
  /** The unpacked release directory (holding bin/daft-edge). */
  root: string;
  /** Settings, as the unit's EnvironmentFile would give them (PORT, DATA_DIR, API_TOKEN...). */
  env: Record<string, string>;
  /** The launcher's command and flags; default `["serve"]`. */
  args?: string[];
}

/** A started release server. */
export interface ReleaseProcess {
  pid: number;
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number>;
  /** Everything it printed so far. */
  output(): string;
  /** Waits until `url` answers 200, and returns the milliseconds since the start. */
  waitFor(url: string, timeoutMs?: number): Promise<number>;
  /** Resident memory now, in bytes (from /proc). */
  rssBytes(): number;
}

/** A clean environment for the launcher: PATH for bash's tools, an empty HOME and DENO_DIR, and `env`. */
export function cleanEnv(scratch: string, env: Record<string, string>): Record<string, string> {
  return { PATH: "/usr/bin:/bin", HOME: join(scratch, "home"), DENO_DIR: join(scratch, "deno-dir"), ...env };
}

/**
 * Starts `bin/daft-edge` with a clean environment in an empty working directory under a new temporary
 * directory, collecting its output.
 */
export async function startRelease(options: StartReleaseOptions): Promise<ReleaseProcess> {
  const scratch = await Deno.makeTempDir({ prefix: "daft-box-" });
  for (const dir of ["home", "deno-dir", "cwd"]) await Deno.mkdir(join(scratch, dir));
  const started = performance.now();
  const child = new Deno.Command(join(options.root, "bin", "daft-edge"), {
    args: options.args ?? ["serve"],
    cwd: join(scratch, "cwd"),
    clearEnv: true,
    env: cleanEnv(scratch, options.env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) log += decoder.decode(chunk, { stream: true });
    log += decoder.decode();
  };
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const exited = child.status.then(async (s) => {
    await drained;
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
    return s.code;
  });
  let ended = false;
  exited.then(() => (ended = true));
  return {
    pid: child.pid,
    exited,
    output: () => log,
    async waitFor(url, timeoutMs = 120_000) {
      while (performance.now() - started < timeoutMs) {
        if (ended) throw new Error(`the server exited before ${url} answered:\n${log}`);
        try {
          const res = await fetch(url);
          await res.body?.cancel();
          if (res.status === 200) return performance.now() - started;
        } catch { /* not listening yet */ }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${url} did not answer 200 within ${timeoutMs} ms:\n${log}`);
    },
    rssBytes() {
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
    },
  };
}

/** A free TCP port on 127.0.0.1 (free now; taken by whoever binds it next). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
