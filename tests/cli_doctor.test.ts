// `doctor` as a fleet tool runs it: a subprocess, its exit code, and its --json report.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkVulkan } from "../cli/_doctor_checks.ts";

const DOCTOR = fileURLToPath(new URL("../cli/doctor.ts", import.meta.url));

interface Report {
  ok: boolean;
  runtime: { name: string; version: string; deno: string };
  checks: { name: string; status: "ok" | "warn" | "fail"; summary: string; details?: any }[];
}

/** Runs doctor with `permissions` (Deno flags) and server `flags`; the default backbone is the tiny one. */
async function doctor(flags: string[], permissions = ["--allow-all"]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, DOCTOR, "--json", "--default-backbone", "tiny", ...flags],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const report = JSON.parse(stdout) as Report;
  const check = (name: string) => report.checks.find((c) => c.name === name)!;
  return { code: out.code, report, check, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("doctor on a usable configuration exits 0 and reports every check", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    const { code, report, check } = await doctor(["--data-dir", dataDir, "--port", "0"]);
    assert.equal(code, 0, JSON.stringify(report, null, 2));
    assert.equal(report.ok, true);
    assert.deepEqual(report.checks.map((c) => c.name), [
      "config",
      "gpu adapter",
      "vulkan",
      "backend",
      "data dir",
      "permissions",
      "backbones",
      "port",
    ]);
    assert.equal(check("backend").status, "ok");
    assert.equal(check("backend").details.selfTest.passed, true);
    assert.match(check("backbones").summary, /tiny \(64 features\)/);
    assert.equal(typeof check("data dir").details.freeBytes, "number");
    assert.deepEqual(check("permissions").details.unrestricted.toSorted(), [
      "env",
      "ffi",
      "net",
      "read",
      "run",
      "sys",
      "write",
    ]);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("doctor fails when the data directory is a file", async () => {
  const file = await Deno.makeTempFile();
  try {
    const { code, report, check } = await doctor(["--data-dir", file, "--port", "0"]);
    assert.equal(code, 1);
    assert.equal(report.ok, false);
    assert.equal(check("data dir").status, "fail");
    assert.match(check("data dir").summary, /is not a directory/);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("doctor fails when another process holds the port", async () => {
  const dataDir = await Deno.makeTempDir();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  // Accept and drop connections, so doctor's /healthz probe gets no daft-edge answer.
  const serving = (async () => {
    for await (const conn of listener) conn.close();
  })().catch(() => {});
  try {
    const { code, check } = await doctor(["--data-dir", dataDir, "--port", String(port)]);
    assert.equal(code, 1);
    assert.equal(check("port").status, "fail");
    assert.match(check("port").summary, /in use by another process/);
  } finally {
    listener.close();
    await serving;
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("doctor fails when the process may not write the data directory, and names the permission", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    const { code, check } = await doctor(["--data-dir", dataDir, "--port", "0"], [
      "--allow-read",
      "--allow-env",
      "--allow-net",
      "--allow-sys",
      "--allow-ffi",
    ]);
    assert.equal(code, 1);
    assert.equal(check("permissions").status, "fail");
    assert.deepEqual(
      check("permissions").details.missing.map((flag: string) => flag.split("=")[0]),
      ["--allow-write"],
    );
    assert.equal(check("data dir").status, "fail");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("the Vulkan check names the loader and each driver's library from its ICD manifest", async () => {
  const root = await Deno.makeTempDir();
  try {
    const lib = join(root, "lib");
    const icd = join(root, "icd.d");
    await Deno.mkdir(lib);
    await Deno.mkdir(icd);
    const search = { libDirs: [lib], icdDirs: [icd] };
    assert.equal(checkVulkan(search).status, "warn");
    await Deno.writeTextFile(join(lib, "libvulkan.so.1"), "");
    assert.match(checkVulkan(search).summary, /but no ICD manifest/);
    await Deno.writeTextFile(
      join(icd, "nvidia_icd.json"),
      JSON.stringify({ file_format_version: "1.0.0", ICD: { library_path: "libGLX_nvidia.so.0" } }),
    );
    const found = checkVulkan(search);
    assert.equal(found.status, "ok");
    assert.equal(
      found.summary,
      `loader ${lib}/libvulkan.so.1; drivers: nvidia_icd.json -> libGLX_nvidia.so.0`,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
