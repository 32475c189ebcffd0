/**
 * `deno task release [--arch x64|arm64] [--out dist]`: builds `daft-edge-<version>-linux-<arch>.tar.gz`, a
 * directory that serves on a box with no network, no npm and no checkout:
 *
 *   bin/deno                 Deno from its npm platform package (@deno/linux-<arch>-glibc, pinned in deno.json)
 *   bin/daft-edge            the launcher: `serve` or `doctor`, with narrowed permissions (deploy/daft-edge)
 *   lib/server/main.js       the server, bundled by `deno bundle` with its npm dependencies (MobileNetV2's
 *                            weights included: nsfwjs ships them as modules)
 *   lib/server/adaptation_worker.js, doctor.js   the adaptation worker and `doctor`, bundled likewise
 *   lib/server/*.wasm        tfjs-backend-wasm's binaries, read beside the bundle
 *   lib/node_modules/@img/   the image codec's native addon and libvips for <arch> (sharp's platform
 *                            packages): a bundle cannot hold a shared library, so the bundled sharp finds
 *                            them by Node's resolution from lib/server/
 *   fixtures/tiny/           the tiny backbone's weights
 *   share/systemd/daft-edge.service, share/daft-edge.env, install.sh, docs/
 *
 * The bundles sit two levels down (lib/server/) as the modules do in src/, so the paths they resolve from
 * their own URL (`../../fixtures/tiny`) land inside the release.
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import denoJson from "../deno.json" with { type: "json" };
import { CONFIG_ENV_VARS } from "../src/config.ts";
import { CODEC_PERMISSIONS } from "../src/data/_sharp.ts";
import { commandLine } from "./_args.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));
const ARCHES = { x64: "@deno/linux-x64-glibc", arm64: "@deno/linux-arm64-glibc" } as const;
// sharp's platform packages (the addon, and libvips it links to by a relative rpath), as sharp 0.35.5 pins them.
const SHARP_VERSION = "0.35.5";
const LIBVIPS_VERSION = "1.3.4";
type Arch = keyof typeof ARCHES;

// Emscripten's Node path in tfjs-backend-wasm reads `__dirname` to find its .wasm; an ES module bundle has
// import.meta instead.
const BUNDLE_PRELUDE = "const __dirname = import.meta.dirname, __filename = import.meta.filename;\n";

const BUNDLES = [
  { entry: "main.ts", out: "main.js" },
  { entry: "src/jobs/adaptation_worker.ts", out: "adaptation_worker.js" },
  { entry: "cli/doctor.ts", out: "doctor.js" },
];

/** What {@linkcode buildRelease} made. */
export interface ReleaseBuild {
  /** The `.tar.gz`. */
  archive: string;
  /** The directory it was packed from (kept beside it). */
  dir: string;
  bytes: number;
}

async function run(cmd: string, args: string[], cwd = ROOT, env?: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, env, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}${text}`);
  }
  return text;
}

function npmPackageDir(specifier: string): string {
  return dirname(fromFileUrl(import.meta.resolve(specifier)));
}

async function exists(path: string) {
  return await Deno.stat(path).then(() => true, () => false);
}

/** The Deno binary of `arch` from its npm package, fetched into Deno's npm cache (per deno.lock) if missing. */
async function denoBinary(arch: Arch): Promise<string> {
  const binary = join(npmPackageDir(ARCHES[arch]), "deno");
  if (!await exists(binary)) await run(Deno.execPath(), ["install", "--frozen"]);
  if (!await exists(binary)) throw new Error(`${ARCHES[arch]} did not install a deno binary at ${binary}`);
  return binary;
}

/**
 * Copies sharp's two platform packages for `arch` (`@img/sharp-linux-<arch>` and `@img/sharp-libvips-linux-<arch>`)
 * from Deno's npm cache into `dest`, fetching them into the cache first when this machine is another
 * architecture (Deno installs only the host's optional packages).
 */
async function copyCodec(arch: Arch, dest: string): Promise<void> {
  const packages = [[`@img/sharp-linux-${arch}`, SHARP_VERSION], [
    `@img/sharp-libvips-linux-${arch}`,
    LIBVIPS_VERSION,
  ]];
  const info = JSON.parse(await run(Deno.execPath(), ["info", "--json"]));
  for (const [name, version] of packages) {
    const source = join(info.npmCache, "registry.npmjs.org", name, version);
    if (!await exists(join(source, "package.json"))) {
      await run(Deno.execPath(), ["cache", "--no-config", `npm:${name}@${version}`]);
    }
    if (!await exists(join(source, "package.json"))) {
      throw new Error(`${name}@${version} is not in ${info.npmCache}`);
    }
    await Deno.mkdir(dest, { recursive: true });
    await run("cp", ["-R", source, join(dest, name.slice("@img/".length))]);
  }
}

/**
 * Builds the release for `arch` under `outDir` and returns the archive's path and size.
 *
 * @example
 * ```ts ignore
 * import { buildRelease } from "./release.ts";
 * const { archive } = await buildRelease("x64", await Deno.makeTempDir());
 * ```
 */
export async function buildRelease(arch: Arch, outDir: string): Promise<ReleaseBuild> {
  const name = `daft-edge-${denoJson.version}-linux-${arch}`;
  const dir = join(resolve(outDir), name);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const server = join(dir, "lib", "server");
  await Deno.mkdir(server, { recursive: true });
  await Deno.mkdir(join(dir, "bin"));

  for (const { entry, out } of BUNDLES) {
    const file = join(server, out);
    await run(Deno.execPath(), ["bundle", "--quiet", "--frozen", "--platform", "deno", "-o", file, entry]);
    await Deno.writeTextFile(file, BUNDLE_PRELUDE + await Deno.readTextFile(file));
  }
  const wasmDir = npmPackageDir("@tensorflow/tfjs-backend-wasm");
  for await (const entry of Deno.readDir(wasmDir)) {
    if (entry.name.endsWith(".wasm")) {
      await Deno.copyFile(join(wasmDir, entry.name), join(server, entry.name));
    }
  }

  await copyCodec(arch, join(dir, "lib", "node_modules", "@img"));

  await Deno.copyFile(await denoBinary(arch), join(dir, "bin", "deno"));
  await Deno.chmod(join(dir, "bin", "deno"), 0o755);
  const launcher = (await Deno.readTextFile(join(ROOT, "deploy", "daft-edge")))
    .replace("@ENV_VARS@", [...CONFIG_ENV_VARS, ...CODEC_PERMISSIONS.env].join(","))
    .replace("@SYS@", CODEC_PERMISSIONS.sys.join(","));
  await Deno.writeTextFile(join(dir, "bin", "daft-edge"), launcher, { mode: 0o755 });
  await Deno.copyFile(join(ROOT, "deploy", "install.sh"), join(dir, "install.sh"));
  await Deno.chmod(join(dir, "install.sh"), 0o755);
  await Deno.mkdir(join(dir, "share", "systemd"), { recursive: true });
  await Deno.copyFile(
    join(ROOT, "deploy", "daft-edge.service"),
    join(dir, "share", "systemd", "daft-edge.service"),
  );
  await Deno.copyFile(join(ROOT, "deploy", "daft-edge.env"), join(dir, "share", "daft-edge.env"));

  await Deno.mkdir(join(dir, "fixtures", "tiny"), { recursive: true });
  for (const file of ["model.json", "weights.bin", "provenance.json"]) {
    await Deno.copyFile(join(ROOT, "fixtures", "tiny", file), join(dir, "fixtures", "tiny", file));
  }
  await Deno.mkdir(join(dir, "docs"));
  for (const doc of ["DEPLOY.md", "API.md"]) {
    if (await exists(join(ROOT, "docs", doc))) {
      await Deno.copyFile(join(ROOT, "docs", doc), join(dir, "docs", doc));
    }
  }
  await Deno.writeTextFile(join(dir, "VERSION"), `${denoJson.version}\n`);

  // The bundle must start on the Deno it ships with (where that Deno runs here): it prints its settings.
  const hostArch = Deno.build.arch === "x86_64" ? "x64" : "arm64";
  if (arch === hostArch) {
    const scratch = await Deno.makeTempDir({ prefix: "daft-release-" });
    try {
      const help = await run(join(dir, "bin", "daft-edge"), ["serve", "--help"], scratch, {
        DATA_DIR: scratch,
        DENO_DIR: scratch,
      });
      if (!help.includes("--data-dir")) {
        throw new Error(`the bundled server's --help is not its settings:\n${help}`);
      }
    } finally {
      await Deno.remove(scratch, { recursive: true });
    }
  }

  const archive = `${dir}.tar.gz`;
  await run("tar", [
    "--create",
    "--gzip",
    "--file",
    archive,
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--sort=name",
    "--directory",
    dirname(dir),
    name,
  ]);
  return { archive, dir, bytes: (await Deno.stat(archive)).size };
}

const USAGE = `usage: deno task release [--arch x64|arm64] [--out DIR]

Builds DIR/daft-edge-<version>-linux-<arch>.tar.gz (default DIR: dist): Deno from its npm platform package,
the bundled server, worker and doctor, the tfjs wasm binaries, the backbone weights, the launcher, the
systemd unit, the settings file and install.sh. docs/DEPLOY.md says what to do with it.

  --arch ARCH   x64 or arm64 (default: this machine's); arm64 is packed, not started here
  --out DIR     where to write it (default dist)`;

if (import.meta.main) {
  const { values } = commandLine(USAGE, {
    arch: { type: "string" },
    out: { type: "string", default: "dist" },
  });
  const arch = (values.arch ?? (Deno.build.arch === "x86_64" ? "x64" : "arm64")) as Arch;
  if (!(arch in ARCHES)) {
    console.error(`error: --arch must be one of ${Object.keys(ARCHES).join(", ")}, got '${arch}'`);
    Deno.exit(2);
  }
  const started = performance.now();
  const build = await buildRelease(arch, values.out!);
  console.log(
    `${build.archive}: ${(build.bytes / 2 ** 20).toFixed(1)} MiB in ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s` + (arch === "arm64" ? " (arm64: packed from the npm package, not started here)" : ""),
  );
}
