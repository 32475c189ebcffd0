import assert from "node:assert/strict";
import { blendOntoPhotos } from "../src/data/blend.ts";
import { corruptImage, CORRUPTIONS, MAX_SEVERITY } from "../src/data/corruptions.ts";
import type { RgbImage } from "../src/data/image.ts";
import { CORRUPTED_MIX, CORRUPTED_SEVERITY, SHIFTS } from "../src/data/shifts.ts";
import { RuntimeError } from "../src/errors.ts";
import { digitFixtures, photoFixtures } from "./_setup.ts";

const isGrey = (img: RgbImage) => {
  for (let p = 0; p < img.data.length; p += 3) {
    if (img.data[p] !== img.data[p + 1] || img.data[p] !== img.data[p + 2]) return false;
  }
  return true;
};
const differs = (a: RgbImage, b: RgbImage) => a.data.some((v, i) => v !== b.data[i]);
const meanAbsDiff = (a: RgbImage, b: RgbImage) =>
  a.data.reduce((s, v, i) => s + Math.abs(v - b.data[i]), 0) / a.data.length;

// A real MNIST digit (grey) and a real photo crop (colour), the two kinds of image the shifts corrupt.
const digit = (await digitFixtures()).images[0];
const photo = crop((await photoFixtures()).find((p) => !isGrey(p))!, 48);

function crop(img: RgbImage, side: number): RgbImage {
  const data = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    data.set(img.data.subarray(y * img.width * 3, (y * img.width + side) * 3), y * side * 3);
  }
  return { width: side, height: side, data };
}

for (const corruption of CORRUPTIONS) {
  Deno.test(`${corruption} keeps the shape, changes the image at every severity and is the identity at 0`, () => {
    for (const image of [digit, photo]) {
      const before = image.data.slice();
      assert.equal(corruptImage(image, corruption, 0, 1).data.join(), image.data.join());
      for (let severity = 1; severity <= MAX_SEVERITY; severity++) {
        const out = corruptImage(image, corruption, severity, 1);
        assert.deepEqual([out.width, out.height, out.data.length], [
          image.width,
          image.height,
          image.data.length,
        ]);
        assert.ok(out.data instanceof Uint8Array);
        assert.ok(differs(out, image), `${corruption} at severity ${severity} left the image unchanged`);
      }
      assert.deepEqual(image.data, before, "the input was modified");
    }
  });

  Deno.test(`${corruption} is deterministic given its seed and keeps a grey image grey`, () => {
    const a = corruptImage(digit, corruption, 3, 42), b = corruptImage(digit, corruption, 3, 42);
    assert.deepEqual(a.data, b.data);
    assert.ok(isGrey(a), `${corruption} tinted a grey image`);
  });
}

Deno.test("the random corruptions draw differently under different seeds", () => {
  for (const corruption of ["gaussian-noise", "impulse-noise"] as const) {
    assert.ok(
      differs(corruptImage(digit, corruption, 3, 1), corruptImage(digit, corruption, 3, 2)),
      corruption,
    );
  }
});

Deno.test("a higher severity moves the image further for the graded corruptions", () => {
  for (
    const corruption of [
      "gaussian-noise",
      "impulse-noise",
      "gaussian-blur",
      "contrast",
      "brightness",
    ] as const
  ) {
    const distances = [1, 3, 5].map((s) => meanAbsDiff(corruptImage(photo, corruption, s, 7), photo));
    assert.ok(distances[0] < distances[1] && distances[1] < distances[2], `${corruption}: ${distances}`);
  }
});

Deno.test("noise clips at 0 and 255 instead of wrapping", () => {
  const white = { width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(255) };
  const noisy = corruptImage(white, "gaussian-noise", 5, 3);
  // Wrapping would turn half the draws (the positive ones) into small values; clipping keeps them at 255.
  assert.ok(noisy.data.filter((v) => v === 255).length > 0.3 * noisy.data.length);
  assert.ok(noisy.data.filter((v) => v < 100).length < 0.2 * noisy.data.length);
});

Deno.test("contrast keeps the mean grey and inversion maps v to 255 - v", () => {
  const low = corruptImage(photo, "contrast", 5, 0);
  const mean = (img: RgbImage) => img.data.reduce((a, b) => a + b, 0) / img.data.length;
  assert.ok(Math.abs(mean(low) - mean(photo)) < 1, `${mean(low)} vs ${mean(photo)}`);
  const inverted = corruptImage(digit, "inversion", 1, 0);
  assert.ok(inverted.data.every((v, i) => v === 255 - digit.data[i]));
});

Deno.test("unknown corruptions and severities outside 0..5 are refused", () => {
  for (
    const [corruption, severity] of [["fog", 1], ["contrast", 6], ["contrast", -1], [
      "contrast",
      1.5,
    ]] as const
  ) {
    assert.throws(
      () => corruptImage(digit, corruption as "contrast", severity, 0),
      (err) => err instanceof RuntimeError && err.code === "invalid_corruption",
    );
  }
});

Deno.test("MNIST-M-style blending is |photo patch - digit|, deterministic, and keeps labels", async () => {
  const digits = await digitFixtures();
  const small = {
    images: digits.images.slice(0, 20),
    labels: digits.labels.slice(0, 20),
    classNames: digits.classNames,
  };
  const photos = await photoFixtures();
  const a = blendOntoPhotos(small, photos, 5), b = blendOntoPhotos(small, photos, 5);
  assert.deepEqual(a.labels, small.labels);
  assert.equal(a.images.length, 20);
  a.images.forEach((img, i) => {
    assert.deepEqual([img.width, img.height], [28, 28]);
    assert.deepEqual(img.data, b.images[i].data);
  });
  assert.ok(a.images.some((img) => !isGrey(img)), "no colour came from the photos");
  // Where the digit is black (background), the output is the photo itself: its pixels are not all black.
  const background = a.images[0].data.filter((_, k) => small.images[0].data[k] === 0);
  assert.ok(background.some((v) => v > 0));
  assert.throws(() => blendOntoPhotos(small, [], 1), (err) => err instanceof RuntimeError);
});

Deno.test("each shift loads disjoint ID and OOD sets with the same classes", async () => {
  for (const shift of Object.values(SHIFTS)) {
    const s = await shift.load({ poolPerClass: 3, validationPerClass: 2, testPerClass: 4 });
    assert.equal(s.trainPool.images.length, 30, shift.name);
    assert.equal(s.idValidation.images.length, 20, shift.name);
    assert.equal(s.idTest.images.length, 40, shift.name);
    assert.equal(s.oodTest.images.length, 40, shift.name);
    assert.deepEqual(s.oodTest.classNames, s.idTest.classNames);
    const all = [s.trainPool, s.idValidation, s.idTest].flatMap((d) =>
      d.images.map((img) => img.data.join())
    );
    assert.equal(new Set(all).size, all.length, `${shift.name}: an image is in two ID parts`);
    if (shift.name.endsWith("-corrupted")) {
      assert.equal(s.oodGroups?.length, 40);
      assert.ok(s.oodGroups!.every((g) => CORRUPTED_MIX.includes(g as never)));
      assert.equal(CORRUPTED_SEVERITY, 3);
    }
  }
});
