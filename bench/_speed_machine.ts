// What the speed benchmark ran on, for the report's header: processor, cores, memory, system, versions, the
// commit (when there is a git checkout) and the load average, which on a shared machine says how far to
// trust the figures.
import * as tf from "@tensorflow/tfjs";

/** The machine and software of a run. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  deno: string;
  v8: string;
  typescript: string;
  tfjs: string;
  commit: string;
}

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return fallback;
  }
}

async function gitCommit(): Promise<string> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "--short", "HEAD"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const dirty = await new Deno.Command("git", {
      args: ["status", "--porcelain", "--untracked-files=no"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const hash = new TextDecoder().decode(out.stdout).trim();
    if (!hash) return "unknown";
    return new TextDecoder().decode(dirty.stdout).trim() ? `${hash} (with uncommitted changes)` : hash;
  } catch {
    return "unknown (no git)";
  }
}

/** Facts about this machine and this process's runtime. */
export async function machineInfo(): Promise<MachineInfo> {
  const cpuinfo = await readOr("/proc/cpuinfo", "");
  const meminfo = await readOr("/proc/meminfo", "");
  const memKb = Number(meminfo.match(/MemTotal:\s*(\d+)/)?.[1] ?? 0);
  return {
    cpu: cpuinfo.match(/model name\s*:\s*(.+)/)?.[1]?.trim() ?? "unknown CPU",
    cores: navigator.hardwareConcurrency,
    memoryGiB: memKb / 1024 / 1024,
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    tfjs: tf.version.tfjs,
    commit: await gitCommit(),
  };
}

/** The 1, 5 and 15 minute load averages, or zeros where the system has none. */
export function loadAverage(): number[] {
  try {
    return Deno.loadavg();
  } catch {
    return [0, 0, 0];
  }
}
