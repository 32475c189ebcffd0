import assert from "node:assert/strict";
import { RuntimeError } from "../src/errors.ts";
import { thumbnail } from "../src/data/thumbnail.ts";

Deno.test("a thumbnail averages the source pixels each output pixel covers", () => {
  // 4x4 in 2x2 blocks of 0, 40, 80 and 120 (grey): halved, each block becomes one pixel of its value.
  const data = new Uint8Array(4 * 4 * 3);
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 4; x++) {
      data.fill(((y >> 1) * 2 + (x >> 1)) * 40, (y * 4 + x) * 3, (y * 4 + x) * 3 + 3);
    }
  }
  const small = thumbnail({ width: 4, height: 4, data }, 2);
  assert.deepEqual([small.width, small.height], [2, 2]);
  assert.deepEqual([...small.data].filter((_, i) => i % 3 === 0), [0, 40, 80, 120]);
});

Deno.test("a thumbnail keeps the aspect ratio and leaves an image already small enough as it is", () => {
  const wide = { width: 300, height: 100, data: new Uint8Array(300 * 100 * 3) };
  const small = thumbnail(wide, 60);
  assert.deepEqual([small.width, small.height], [60, 20]);
  assert.equal(thumbnail(small, 60), small);
});

Deno.test("a thumbnail size that is not a positive integer is refused", () => {
  const img = { width: 2, height: 2, data: new Uint8Array(12) };
  assert.throws(
    () => thumbnail(img, 0),
    (e) => e instanceof RuntimeError && e.code === "invalid_thumbnail_size",
  );
});
