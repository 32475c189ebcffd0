import { RuntimeError } from "../errors.ts";
import { blendOntoPhotos } from "./blend.ts";
import { corruptImage, type Corruption } from "./corruptions.ts";
import { decodeImage, type RgbImage } from "./image.ts";
import type { LabeledImages } from "./labeled_images.ts";
import { readFashionMnist } from "./fashion_mnist.ts";
import { readMnist } from "./mnist.ts";
import { readOptdigits } from "./optdigits.ts";

/**
 * A distribution shift's data, all of it real and read from installed packages: an in-distribution (ID)
 * source to learn from and test on, and an out-of-distribution (OOD) test set with the same labels. The
 * four parts are disjoint sets of images.
 */
export interface ShiftSplits {
  /** The shift's name in {@linkcode SHIFTS}. */
  name: ShiftName;
  classNames: string[];
  /** ID images to draw few-shot training sets from (`takePerClass(trainPool, shots, seed)`). */
  trainPool: LabeledImages;
  /** ID images for choosing hyperparameters; never trained on, never reported as a test score. */
  idValidation: LabeledImages;
  /** ID test images. */
  idTest: LabeledImages;
  /** OOD test images. */
  oodTest: LabeledImages;
  /** When the OOD set mixes sub-domains (corruptions), the sub-domain of each OOD test image. */
  oodGroups?: string[];
}

/** How much of each source a shift loads; every count is per class. */
export interface ShiftSizes {
  /** Training pool per class: at least the largest training set asked for. */
  poolPerClass: number;
  /** ID validation images per class. */
  validationPerClass: number;
  /** ID and OOD test images per class, each (the OOD set of optdigits has at most 174 per class). */
  testPerClass: number;
  /** Seed that picks the images; fixed, so every method and training seed sees the same test sets. */
  seed?: number;
}

/** A named ID -> OOD shift: what the domains are and how to load them. */
export interface Shift {
  name: ShiftName;
  /** The ID and OOD domains, in a few words each. */
  id: string;
  ood: string;
  /** One sentence: what changes between the domains and what stays. */
  description: string;
  load(sizes: ShiftSizes): Promise<ShiftSplits>;
}

/** The shifts {@linkcode SHIFTS} defines. */
export type ShiftName = "mnist-optdigits" | "mnist-mnistm" | "mnist-corrupted" | "fashion-corrupted";

/**
 * The corruptions of the `-corrupted` shifts, one per OOD image in turn. Inversion is left out: it flips
 * the ink/background polarity the ID images share, so it tests polarity more than robustness.
 */
export const CORRUPTED_MIX: Corruption[] = [
  "gaussian-noise",
  "impulse-noise",
  "gaussian-blur",
  "contrast",
  "brightness",
  "rotation",
  "pixelate",
  "jpeg",
];

/** The severity of the `-corrupted` shifts' corruptions (of 5). */
export const CORRUPTED_SEVERITY = 3;

const PHOTOS_DIR = new URL("../../fixtures/photos/", import.meta.url);

/**
 * Splits a data set per class: the first `n` examples of each class (in the set's order) and the rest.
 * Shapes: `first` has `n` per class; a class with fewer than `n` is an error.
 */
function splitPerClass(ds: LabeledImages, n: number): [LabeledImages, LabeledImages] {
  const seen = ds.classNames.map(() => 0);
  const first: number[] = [], rest: number[] = [];
  ds.labels.forEach((y, i) => (seen[y]++ < n ? first : rest).push(i));
  const short = seen.findIndex((count) => count < n);
  if (short >= 0) {
    throw new RuntimeError(
      "invalid",
      "too_few_examples",
      `class '${ds.classNames[short]}' has ${seen[short]} examples, fewer than the ${n} asked for`,
      { className: ds.classNames[short], available: seen[short], perClass: n },
    );
  }
  const pick = (ix: number[]) => ({
    images: ix.map((i) => ds.images[i]),
    labels: ix.map((i) => ds.labels[i]),
    classNames: [...ds.classNames],
  });
  return [pick(first), pick(rest)];
}

/** Pads an image with `margin` background (black) pixels on every side. */
function pad(image: RgbImage, margin: number): RgbImage {
  const width = image.width + 2 * margin, height = image.height + 2 * margin;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < image.height; y++) {
    data.set(
      image.data.subarray(y * image.width * 3, (y + 1) * image.width * 3),
      ((y + margin) * width + margin) * 3,
    );
  }
  return { width, height, data };
}

async function readPhotos(): Promise<RgbImage[]> {
  const photos: RgbImage[] = [];
  const names = [];
  for await (const entry of Deno.readDir(PHOTOS_DIR)) {
    if (entry.isFile && /\.(png|jpe?g)$/i.test(entry.name)) names.push(entry.name);
  }
  for (const name of names.sort()) {
    photos.push(await decodeImage(await Deno.readFile(new URL(name, PHOTOS_DIR))));
  }
  return photos;
}

/** ID training pool and validation from a training split read with `perClass: pool + validation`. */
function idParts(train: LabeledImages, sizes: ShiftSizes) {
  const [idValidation, trainPool] = splitPerClass(train, sizes.validationPerClass);
  return { idValidation, trainPool };
}

const DATA_SEED = 20240220;

/** OOD test images: the ID test split's images after the ID test ones, each with a corruption in turn. */
function corruptedShift(
  name: ShiftName,
  read: (split: "train" | "test", perClass: number, seed: number) => Promise<LabeledImages>,
) {
  return async (sizes: ShiftSizes): Promise<ShiftSplits> => {
    const seed = sizes.seed ?? DATA_SEED;
    const train = await read("train", sizes.poolPerClass + sizes.validationPerClass, seed);
    const test = await read("test", 2 * sizes.testPerClass, seed);
    const [idTest, oodSource] = splitPerClass(test, sizes.testPerClass);
    const groups = oodSource.images.map((_, i) => CORRUPTED_MIX[i % CORRUPTED_MIX.length]);
    return {
      name,
      classNames: train.classNames,
      ...idParts(train, sizes),
      idTest,
      oodTest: {
        ...oodSource,
        images: oodSource.images.map((img, i) => corruptImage(img, groups[i], CORRUPTED_SEVERITY, seed + i)),
      },
      oodGroups: groups,
    };
  };
}

/**
 * The ID -> OOD shifts of the methods benchmark. In each, ID training, validation and test images come
 * from the ID source's own splits (training images from its training split, test images from its test
 * split), and the OOD test images are never seen in training or model selection.
 *
 * - `mnist-optdigits`: MNIST -> UCI optdigits (scikit-learn's `digits`): other writers, scanned at 32x32
 *   and reduced to 8x8 counts of ink. Each 8x8 digit gets a 2-pixel black margin (12x12) so that, scaled
 *   to 28x28, it fills about MNIST's 20-pixel box: the shift is in writers and resolution, not in framing.
 * - `mnist-mnistm`: MNIST -> MNIST-M-style digits blended onto real photos (`blendOntoPhotos`), from
 *   MNIST test images disjoint from the ID test images.
 * - `mnist-corrupted` and `fashion-corrupted`: MNIST or Fashion-MNIST -> test images of the same set
 *   (disjoint from the ID test images), each with one of {@linkcode CORRUPTED_MIX} in turn at severity
 *   {@linkcode CORRUPTED_SEVERITY}, after MNIST-C and ImageNet-C.
 *
 * @example
 * ```ts
 * import { SHIFTS } from "./shifts.ts";
 * const s = await SHIFTS["mnist-optdigits"].load({ poolPerClass: 5, validationPerClass: 2, testPerClass: 3 });
 * console.assert(s.trainPool.images.length === 50 && s.oodTest.images[0].width === 12);
 * ```
 */
export const SHIFTS: Record<ShiftName, Shift> = {
  "mnist-optdigits": {
    name: "mnist-optdigits",
    id: "MNIST",
    ood: "UCI optdigits (8x8)",
    description: "handwritten digits by other writers, digitised at 8x8 with 17 grey levels",
    async load(sizes) {
      const seed = sizes.seed ?? DATA_SEED;
      const train = await readMnist({
        split: "train",
        perClass: sizes.poolPerClass + sizes.validationPerClass,
        seed,
      });
      const idTest = await readMnist({ split: "test", perClass: sizes.testPerClass, seed });
      const opt = await readOptdigits({ perClass: sizes.testPerClass, seed });
      return {
        name: "mnist-optdigits",
        classNames: train.classNames,
        ...idParts(train, sizes),
        idTest,
        oodTest: { ...opt, images: opt.images.map((img) => pad(img, 2)) },
      };
    },
  },
  "mnist-mnistm": {
    name: "mnist-mnistm",
    id: "MNIST",
    ood: "MNIST-M-style (digits on photos)",
    description:
      "the same kind of digits drawn over colour photo patches, strokes inverted against the photo",
    async load(sizes) {
      const seed = sizes.seed ?? DATA_SEED;
      const train = await readMnist({
        split: "train",
        perClass: sizes.poolPerClass + sizes.validationPerClass,
        seed,
      });
      const test = await readMnist({ split: "test", perClass: 2 * sizes.testPerClass, seed });
      const [idTest, oodSource] = splitPerClass(test, sizes.testPerClass);
      return {
        name: "mnist-mnistm",
        classNames: train.classNames,
        ...idParts(train, sizes),
        idTest,
        oodTest: blendOntoPhotos(oodSource, await readPhotos(), seed),
      };
    },
  },
  "mnist-corrupted": {
    name: "mnist-corrupted",
    id: "MNIST",
    ood: `MNIST, corrupted (severity ${CORRUPTED_SEVERITY})`,
    description: "the same digits with noise, blur, low contrast, rotation, pixelation or JPEG artefacts",
    load: corruptedShift("mnist-corrupted", (split, perClass, seed) => readMnist({ split, perClass, seed })),
  },
  "fashion-corrupted": {
    name: "fashion-corrupted",
    id: "Fashion-MNIST",
    ood: `Fashion-MNIST, corrupted (severity ${CORRUPTED_SEVERITY})`,
    description: "the same clothes with noise, blur, low contrast, rotation, pixelation or JPEG artefacts",
    load: corruptedShift(
      "fashion-corrupted",
      (split, perClass, seed) => readFashionMnist({ split, perClass, seed }),
    ),
  },
};
