import type { LabeledImages, SubsetOptions } from "./labeled_images.ts";
import { readIdxDataset } from "./_idx.ts";

/**
 * Options for {@link readFashionMnist}.
 *
 * @example
 * ```ts
 * import type { FashionMnistOptions } from "./fashion_mnist.ts";
 * const evaluation: FashionMnistOptions = { split: "test", limit: 1000 };
 * console.assert(evaluation.limit === 1000);
 * ```
 */
export interface FashionMnistOptions extends SubsetOptions {
  /** "train": the 60 000 training images; "test": the 10 000 test images. */
  split: "train" | "test";
  /** Folder holding the four gzipped IDX files; default where Debian installs them. */
  dir?: string;
}

/** Where the Debian package `dataset-fashion-mnist` installs the IDX files. */
const DEBIAN_DIR = "/usr/share/datasets/fashion-mnist";

/** Fashion-MNIST's class names, indexed by label. */
const CLASS_NAMES = [
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
];

/**
 * Reads Fashion-MNIST (Zalando's 28x28 grey clothing images, 10 classes) from the gzipped IDX files of the
 * Debian package `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist`), so no network is needed
 * at run time.
 *
 * Only the selected examples are decoded, and the image file is decompressed only as far as the last of
 * them (see {@link SubsetOptions}). Shapes: each image is 28x28 RGB with R = G = B, 0 = background.
 *
 * @throws {RuntimeError} `unavailable`/`dataset_missing` (naming the Debian package) when the files are
 *   absent; `invalid`/`too_few_examples` or `invalid_subset` for an impossible subset;
 *   `internal`/`dataset_corrupt` when a file is not valid gzipped IDX.
 *
 * @example
 * ```ts
 * import { readFashionMnist } from "./fashion_mnist.ts";
 * const ds = await readFashionMnist({ split: "train", perClass: 2 });
 * console.assert(ds.images.length === 20 && ds.classNames[9] === "Ankle boot");
 * ```
 */
export function readFashionMnist(options: FashionMnistOptions): Promise<LabeledImages> {
  const dir = (options.dir ?? DEBIAN_DIR).replace(/\/$/, "");
  const prefix = options.split === "train" ? "train" : "t10k";
  return readIdxDataset({
    dataset: "Fashion-MNIST",
    imagesPath: `${dir}/${prefix}-images-idx3-ubyte.gz`,
    labelsPath: `${dir}/${prefix}-labels-idx1-ubyte.gz`,
    classNames: CLASS_NAMES,
    installHint:
      "the Debian package dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`, or `bash .ci/install_data.sh`)",
  }, options);
}
