// The one place the image library is imported and set up. sharp (libvips, with libjpeg-turbo/mozjpeg,
// libspng, libwebp, libheif+aom, cgif) was chosen by measurement over pure-JS and WebAssembly codecs: see
// docs/BENCHMARKS.md, "Image decoding". It runs each pipeline on libuv's thread pool, so decoding never
// blocks the event loop, and it shrinks JPEGs in the DCT domain while decoding.
//
// Permissions under Deno: the addon is loaded with --allow-ffi (scoped to Deno's npm cache), and sharp's
// start-up reads two environment variables and the platform report (--allow-sys=cpus,networkInterfaces,
// hostname); `deno task serve` grants exactly these (`CODEC_PERMISSIONS` below).
import type Sharp from "sharp";

let loading: Promise<typeof Sharp> | undefined;

/**
 * sharp, loaded on first use rather than at import, so that importing the data layer needs no permission
 * and a server started without the codec's permissions can say so in one line (see main.ts).
 */
export function loadSharp(): Promise<typeof Sharp> {
  loading ??= import("sharp").then(({ default: sharp }) => {
    // libvips' operation cache keeps recent images and results alive (50 MB by default); every call here
    // works on fresh bytes, so the cache only makes memory harder to predict.
    sharp.cache(false);
    return sharp;
  }).catch((err) => {
    loading = undefined;
    throw err;
  });
  return loading;
}

/**
 * What loading sharp needs from Deno besides reading and loading (`--allow-ffi`) its addon in the npm cache:
 * its start-up reads the CPU count and the platform report (to tell glibc from musl) and two environment
 * variables of its own.
 */
export const CODEC_PERMISSIONS = {
  sys: ["cpus", "networkInterfaces", "hostname"],
  env: ["npm_package_config_libvips", "MALLOC_ARENA_MAX"],
} as const;

/**
 * Runs large decodes one or a few at a time (one less than the cores), so a burst of 12 MP uploads neither
 * takes every core from the event loop nor holds more than that many full-size decoder buffers at once.
 * Small images do not queue behind them.
 */
export class CodecLane {
  #running = 0;
  #waiting: (() => void)[] = [];

  constructor(readonly slots: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running >= this.slots) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#running++;
    try {
      return await fn();
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }
}

/** The lane every decode of more than {@link LARGE_IMAGE_PIXELS} pixels goes through. */
export const largeImages = new CodecLane(Math.max(1, (navigator.hardwareConcurrency ?? 2) - 1));

/** Images above this many pixels (2 MP: more than a 1920x1080 frame) take the {@link largeImages} lane. */
export const LARGE_IMAGE_PIXELS = 2 ** 21;
