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

/** Busy and total CPU time of the whole machine so far, in seconds summed over cores (Linux /proc/stat). */
export function machineCpuSeconds(): { busy: number; total: number } | undefined {
  try {
    const fields = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1).map(
      Number,
    );
    // user nice system idle iowait irq softirq steal: idle and iowait are the idle part; ticks are 1/100 s.
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = fields[3] + (fields[4] ?? 0);
    return { busy: (total - idle) / 100, total: total / 100 };
  } catch {
    return undefined;
  }
}

/** This process's CPU time (user + system, all threads) in seconds, where /proc is readable. */
export function processCpuSeconds(): number | undefined {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime
  } catch {
    return undefined;
  }
}

/** Cores busy over the next `seconds`, from /proc/stat; undefined where it cannot be read. */
export async function busyCores(seconds = 2): Promise<number | undefined> {
  const a = machineCpuSeconds();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b = machineCpuSeconds();
  return a && b ? (b.busy - a.busy) / seconds : undefined;
}

/**
 * Waits until other work keeps less than `threshold` cores busy (measured over 2 s), at most `maxSeconds`;
 * returns the seconds waited and the last measurement.
 */
export async function waitForQuiet(
  threshold: number,
  maxSeconds: number,
): Promise<{ waitedS: number; busy?: number }> {
  const started = performance.now();
  let busy = await busyCores();
  while (busy !== undefined && busy >= threshold && (performance.now() - started) / 1000 < maxSeconds) {
    await new Promise((r) => setTimeout(r, 3000));
    busy = await busyCores();
  }
  return { waitedS: (performance.now() - started) / 1000, busy };
}
