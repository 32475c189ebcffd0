// The records a benchmark row reports, one JSON line each, in the same shape from the tfjs worker
// (`_speed_row.ts`) and the PyTorch peer (`peer_torch.py`).

/** Prefix of every record line on a row's stdout; other lines (library chatter) are ignored. */
export const RECORD_PREFIX = "@@speed ";

/** Training throughput at one batch size: a step is forward (train mode) + backward + SGD-momentum update. */
export interface TrainRecord {
  kind: "train";
  batch: number;
  /** Wall time of each timed step, after the warm-up steps. */
  stepMs: number[];
  /** `batch / median(stepMs)`. */
  samplesPerSec: number;
}

/** Single-image inference latency of the served classifier (backbone + head + softmax), read back. */
export interface LatencyRecord {
  kind: "latency";
  runs: number;
  p50Ms: number;
  p99Ms: number;
}

/** Batched inference throughput of the served classifier. */
export interface ThroughputRecord {
  kind: "throughput";
  batch: number;
  batchMs: number[];
  samplesPerSec: number;
}

/** A whole adaptation job: `classes x shots` images, DAFT defaults, `adapt()` (or the peer's equivalent). */
export interface AdaptRecord {
  kind: "adapt";
  seconds: number;
  /** Of which the training epochs (steps and per-epoch validation). */
  trainingSeconds: number;
  classes: number;
  shots: number;
  epochs: number;
  steps: number;
  valAccuracy: number;
  /** The loss went non-finite (the peer carries on, so the time is still a whole job's). */
  diverged?: boolean;
}

/** Where one profiled training step's time goes, by kernel (tfjs) or operator (PyTorch). */
export interface ProfileRecord {
  kind: "profile";
  batch: number;
  /** Wall time of the profiled step (profiling adds a little per kernel). */
  stepMs: number;
  /** Sum of the kernels' own times. */
  kernelMs: number;
  kernels: { name: string; ms: number; calls: number }[];
}

/** Memory so far in the row's process. */
export interface MemoryRecord {
  kind: "memory";
  /** Resident set now, and the largest sample taken after each step. */
  rssMiB: number;
  peakRssMiB: number;
  /** The kernel's high-water mark of the resident set (VmHWM / ru_maxrss), where readable. */
  hwmMiB?: number;
  /** Peak bytes of live tensors during one training step at the largest batch (`tf.profile`). */
  tensorPeakMiB?: number;
  numTensors?: number;
}

/** What identifies the row: backend as resolved, model size, versions. */
export interface InfoRecord {
  kind: "info";
  side: "ours" | "pytorch";
  /** tfjs backend actually in use, or `cpu`/`cuda` for PyTorch. */
  backend: string;
  /** Adapter, device or thread configuration, in words. */
  detail: string;
  backbone: string;
  /** Trainable parameters of backbone + head. */
  parameters: number;
  batchNormLayers: number;
  inputShape: number[];
  featureDim: number;
  versions: Record<string, string>;
}

/** One sample of the memory soak. */
export interface SoakSample {
  job: number;
  rssMiB: number;
  /** V8's heap in use, after a collection. */
  heapMiB: number;
  /** The wasm backend's linear memory (it grows and never shrinks), when that is the backend. */
  wasmMiB?: number;
  numTensors: number;
}

/** Consecutive small `adapt()` jobs: memory at the start, after the first job and at the end. */
export interface SoakRecord {
  kind: "soak";
  jobs: number;
  samplesPerJob: number;
  epochs: number;
  seconds: number;
  samples: SoakSample[];
}

/** The CPU time the row's process used (user + system, all threads), its last record. */
export interface CpuRecord {
  kind: "cpu";
  seconds: number;
}

/** A measurement that did not run, and why. */
export interface SkippedRecord {
  kind: "skipped";
  what: string;
  reason: string;
}

/** Any record a row reports. */
export type RowRecord =
  | InfoRecord
  | TrainRecord
  | LatencyRecord
  | ThroughputRecord
  | AdaptRecord
  | ProfileRecord
  | MemoryRecord
  | SoakRecord
  | CpuRecord
  | SkippedRecord;

/** The median of a non-empty list. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The nearest-rank percentile `p` (0..100) of a non-empty list. */
export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Everything one row process reported, and how it ended. */
export interface RowResult {
  side: "ours" | "pytorch";
  /** What was asked for: a backend policy (`auto`, `wasm`, `cpu`, `webgpu`) or a PyTorch device. */
  requested: string;
  /** PyTorch's CPU threads (`torch.set_num_threads`), for its CPU rows. */
  threads?: number;
  /**
   * The widest instruction set PyTorch's convolutions (oneDNN) were allowed (`ONEDNN_MAX_CPU_ISA`), for the
   * row that holds them to WebAssembly SIMD's 128-bit vectors; absent: whatever the CPU has.
   */
  isa?: string;
  /** Which round of the headline rows this is (0-based), where a run repeats them (`SpeedConfig.rounds`). */
  round?: number;
  /** A row merged from several rounds (`mergeRounds`): the rounds it came from, in order. */
  rounds?: RowResult[];
  backbone: string;
  /** `row` for the figures, `soak` for the memory soak. */
  task: "row" | "soak";
  records: RowRecord[];
  /** Why the row ended before its last figure (killed at its budget, crashed, could not start). */
  stopped?: string;
  seconds: number;
  /** One-minute load average when the row started and ended. */
  load: [number, number];
  /**
   * Cores kept busy by other work while the row ran: the machine's busy time less the row's own CPU time,
   * over the row's wall time. Absent where /proc/stat or the row's CPU record is missing.
   */
  otherCores?: number;
  /** Seconds spent waiting for the machine to go quiet before the row, and how busy it was then (cores). */
  waitedS?: number;
  /** Attempts made (a row run while other work took half a core or more is run again, once). */
  attempts?: number;
}

/** The first record of a kind in a row, if any. */
export function recordOf<K extends RowRecord["kind"]>(
  row: RowResult,
  kind: K,
  match: (r: Extract<RowRecord, { kind: K }>) => boolean = () => true,
): Extract<RowRecord, { kind: K }> | undefined {
  return row.records.find((r) => r.kind === kind && match(r as Extract<RowRecord, { kind: K }>)) as
    | Extract<RowRecord, { kind: K }>
    | undefined;
}

/** The last record of a kind in a row (memory records accumulate; the last has the peaks). */
export function lastRecordOf<K extends RowRecord["kind"]>(
  row: RowResult,
  kind: K,
): Extract<RowRecord, { kind: K }> | undefined {
  return row.records.findLast((r) => r.kind === kind) as Extract<RowRecord, { kind: K }> | undefined;
}

/** The item whose `value` is the median of those that have one (the lower middle for an even count). */
function medianBy<T>(items: T[], value: (t: T) => number | undefined): T | undefined {
  const valued = items.filter((t) => Number.isFinite(value(t)));
  valued.sort((a, b) => value(a)! - value(b)!);
  return valued[(valued.length - 1) >> 1];
}

/**
 * The rows of a run with each row run in several rounds (`RowResult.round`) merged into one: its records
 * are the first round's, each figure's record (a training batch's, latency, batch throughput, the adapt job,
 * the last memory record) replaced by that of the round whose figure is the median of the rounds'. The
 * merged row keeps the rounds in `rounds`. Rows run once pass through; the order is each row's first.
 */
export function mergeRounds(rows: RowResult[]): RowResult[] {
  const key = (r: RowResult) =>
    [r.side, r.requested, r.threads ?? "", r.isa ?? "", r.backbone, r.task].join("|");
  const groups = new Map<string, RowResult[]>();
  for (const r of rows) groups.set(key(r), [...groups.get(key(r)) ?? [], r]);
  return [...groups.values()].map((group) => {
    if (group.length === 1) return group[0];
    const [first] = group;
    const figureOf = (rec: RowRecord): ((row: RowResult) => RowRecord | undefined) | undefined => {
      switch (rec.kind) {
        case "train":
          return (row) => recordOf(row, "train", (t) => t.batch === rec.batch);
        case "latency":
          return (row) => recordOf(row, "latency");
        case "throughput":
          return (row) => recordOf(row, "throughput");
        case "adapt":
          return (row) => recordOf(row, "adapt");
        default:
          return undefined;
      }
    };
    const value = (rec: RowRecord | undefined): number | undefined => {
      if (!rec) return undefined;
      if (rec.kind === "train" || rec.kind === "throughput") return rec.samplesPerSec;
      if (rec.kind === "latency") return rec.p50Ms;
      if (rec.kind === "adapt") return rec.seconds;
      if (rec.kind === "memory") return rec.hwmMiB ?? rec.peakRssMiB;
      return undefined;
    };
    const lastMemory = first.records.findLastIndex((r) => r.kind === "memory");
    const records = first.records.map((rec, i) => {
      const of = figureOf(rec) ??
        (i === lastMemory ? (row: RowResult) => lastRecordOf(row, "memory") : undefined);
      if (!of) return rec;
      const chosen = medianBy(group, (row) => value(of(row)));
      return (chosen && of(chosen)) ?? rec;
    });
    // A figure the first round missed (stopped early) but a later round has.
    for (const row of group.slice(1)) {
      for (const rec of row.records) {
        const of = figureOf(rec);
        if (of && !of(first)) {
          const chosen = medianBy(group, (r) => value(of(r)));
          if (chosen && !records.includes(of(chosen)!)) records.push(of(chosen)!);
        }
      }
    }
    const stopped = group.map((r) => r.stopped).find((s) => s);
    return {
      ...first,
      round: undefined,
      rounds: group,
      records,
      stopped,
      seconds: group.reduce((sum, r) => sum + r.seconds, 0),
    };
  });
}
