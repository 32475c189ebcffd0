// The one place the image library is imported and set up. sharp (libvips, with libjpeg-turbo/mozjpeg,
// libspng, libwebp, libheif+aom, cgif) was chosen by measurement over pure-JS and WebAssembly codecs: see
// docs/BENCHMARKS.md, "Image decoding". It runs each pipeline on libuv's thread pool, so decoding never
// blocks the event loop, and it shrinks JPEGs in the DCT domain while decoding.
//
// Permissions under Deno: the addon is loaded with --allow-ffi (scoped to Deno's npm cache), and sharp's
// start-up reads two environment variables and the platform report (--allow-sys=cpus,networkInterfaces,
// hostname); `deno task serve` grants exactly these.
import sharp from "sharp";

// libvips' operation cache keeps recent images and results alive (50 MB by default); every call here works
// on fresh bytes, so the cache only makes memory harder to predict.
sharp.cache(false);

export { sharp };
