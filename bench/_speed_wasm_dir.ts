// In the bundled benchmark (`bench/gpu.sh`), emscripten's loader for the wasm backend looks for its .wasm
// files in `__dirname`, a CommonJS name the bundle leaves undefined: point it at the bundle's own folder,
// where `gpu.sh --prepare` copies them. Unbundled, npm modules get their own `__dirname` and no .wasm file
// sits beside this module, so this does nothing.
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = import.meta.url.startsWith("file:") ? dirname(fileURLToPath(import.meta.url)) : undefined;
const scope = globalThis as { __dirname?: string };
if (here && scope.__dirname === undefined && existsSync(`${here}/tfjs-backend-wasm-simd.wasm`)) {
  scope.__dirname = here;
}
