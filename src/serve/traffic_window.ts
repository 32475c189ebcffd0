/** Options of {@linkcode TrafficWindow}. */
export interface TrafficWindowOptions {
  /** Most images kept per model (the newest). */
  images: number;
  /** Most bytes kept for all models together; the oldest images, of any model, go first. */
  bytes: number;
}

/** What a traffic window holds for one model. */
export interface TrafficSummary {
  /** Images kept, and the most that are. */
  images: number;
  maxImages: number;
  /** Bytes those images take. */
  bytes: number;
}

interface Kept {
  bytes: Uint8Array;
  seq: number;
}

/**
 * The served images of each model, kept in memory (never written to disk) so that a `bn-refresh` can run on
 * the traffic a model actually sees: the newest `images` per model, and at most `bytes` for all models
 * together (past that, the oldest image of any model goes). Only images a prediction answered are kept,
 * as the bytes the client sent. A server keeps nothing unless it is started with `--keep-traffic N`.
 *
 * @example
 * ```ts
 * import { TrafficWindow } from "./traffic_window.ts";
 * const traffic = new TrafficWindow({ images: 2, bytes: 1000 });
 * traffic.keep("m1", [new Uint8Array(10), new Uint8Array(20), new Uint8Array(30)]);
 * console.assert(traffic.summary("m1").images === 2 && traffic.summary("m1").bytes === 50);
 * console.assert(traffic.images("m1")[0].length === 20 && traffic.summary("m2").images === 0);
 * ```
 */
export class TrafficWindow {
  #byModel = new Map<string, Kept[]>();
  #bytes = 0;
  #seq = 0;

  constructor(readonly options: TrafficWindowOptions) {}

  /** Keeps copies of `images` as served by `modelId`, dropping what falls outside the limits. */
  keep(modelId: string, images: Uint8Array[]): void {
    let kept = this.#byModel.get(modelId);
    if (!kept) this.#byModel.set(modelId, kept = []);
    for (const image of images) {
      // An image over the whole byte budget would only evict everything else and then itself.
      if (image.length > this.options.bytes) continue;
      kept.push({ bytes: image.slice(), seq: this.#seq++ });
      this.#bytes += image.length;
      if (kept.length > this.options.images) this.#bytes -= kept.shift()!.bytes.length;
    }
    while (this.#bytes > this.options.bytes && this.#dropOldest());
  }

  /** The images kept for `modelId`, oldest first (the window's own copies: do not change them). */
  images(modelId: string): Uint8Array[] {
    return (this.#byModel.get(modelId) ?? []).map((k) => k.bytes);
  }

  /** How many images, and bytes, are kept for `modelId`. */
  summary(modelId: string): TrafficSummary {
    const kept = this.#byModel.get(modelId) ?? [];
    return {
      images: kept.length,
      maxImages: this.options.images,
      bytes: kept.reduce((a, k) => a + k.bytes.length, 0),
    };
  }

  /** Drops every image kept for `modelId` (the model was deleted). */
  forget(modelId: string): void {
    for (const k of this.#byModel.get(modelId) ?? []) this.#bytes -= k.bytes.length;
    this.#byModel.delete(modelId);
  }

  // Drops the oldest image kept, of any model; false when none is.
  #dropOldest(): boolean {
    let oldest: Kept[] | undefined;
    for (const kept of this.#byModel.values()) {
      if (kept.length && (!oldest || kept[0].seq < oldest[0].seq)) oldest = kept;
    }
    if (!oldest) return false;
    this.#bytes -= oldest.shift()!.bytes.length;
    return true;
  }
}
