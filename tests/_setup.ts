// Shared test set-up: brings up the backend the suite runs on (WebGPU on the software adapter here, or
// whatever TEST_BACKEND names) once per test file, and loads fixture data.
import { type BackendInfo, initBackend } from "../src/backend/init_backend.ts";
import { readImageFolder } from "../src/data/folder.ts";
import type { LabeledImages } from "../src/data/labeled_images.ts";
import { RuntimeError } from "../src/errors.ts";
import assert from "node:assert/strict";

let ready: Promise<BackendInfo> | undefined;

/** The test backend, initialised once. */
export function testBackend(): Promise<BackendInfo> {
  ready ??= initBackend((Deno.env.get("TEST_BACKEND") ?? "auto") as "auto");
  return ready;
}

export const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;

/** The MNIST digit fixtures: 24 test-split images per digit, 28x28 gray. */
export function digitFixtures(): Promise<LabeledImages> {
  return readImageFolder(`${FIXTURES}digits`);
}

/** The real photos in fixtures/photos (as one-class "folder" read by hand). */
export async function photoFixtures() {
  const { decodeImage } = await import("../src/data/image.ts");
  const images = [];
  for await (const entry of Deno.readDir(`${FIXTURES}photos`)) {
    if (entry.isFile && /\.(png|jpe?g)$/i.test(entry.name)) {
      images.push(await decodeImage(await Deno.readFile(`${FIXTURES}photos/${entry.name}`)));
    }
  }
  return images;
}

/** Awaits `promise`, asserts it fails with a RuntimeError of this code (and kind, if given), returns it. */
export async function rejects(promise: Promise<unknown>, code: string, kind?: string): Promise<RuntimeError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof RuntimeError, `expected a RuntimeError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (kind !== undefined) assert.equal(err.kind, kind);
    return err;
  }
  assert.fail(`expected ${code}`);
}
