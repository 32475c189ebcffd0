import { RuntimeError } from "../errors.ts";
import type { RgbImage } from "./image.ts";
import type { LabeledImages, SubsetOptions } from "./labeled_images.ts";
import { selectIndices } from "./_select_indices.ts";

/**
 * Options for {@link readOptdigits}.
 *
 * @example
 * ```ts
 * import type { OptdigitsOptions } from "./optdigits.ts";
 * const fewShot: OptdigitsOptions = { perClass: 5, seed: 3 };
 * console.assert(fewShot.perClass === 5);
 * ```
 */
export interface OptdigitsOptions extends SubsetOptions {
  /** Path of `digits.csv.gz`; default where Debian's python3-sklearn installs it. */
  path?: string;
}

/** Where the Debian package `python3-sklearn` installs scikit-learn's copy of the UCI optdigits test set. */
const DEBIAN_PATH = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";

/**
 * Reads the UCI optical-recognition handwritten digits (the 1 797 8x8 images scikit-learn ships as
 * `load_digits`) from `digits.csv.gz` of the Debian package `python3-sklearn`, so no network is needed at
 * run time. Classes are the digits "0" to "9". The set has no train/test split.
 *
 * Each CSV row is 64 pixel counts in 0..16 (row-major) and the label; counts are scaled to bytes as
 * `round(v * 255 / 16)`. Shapes: each image is 8x8 RGB with R = G = B, 0 = background.
 *
 * @throws {RuntimeError} `unavailable`/`dataset_missing` (naming the Debian package) when the file is
 *   absent; `invalid`/`too_few_examples` or `invalid_subset` for an impossible subset;
 *   `internal`/`dataset_corrupt` when a row is malformed.
 *
 * @example
 * ```ts
 * import { readOptdigits } from "./optdigits.ts";
 * const ds = await readOptdigits({ perClass: 3, seed: 0 });
 * console.assert(ds.images.length === 30 && ds.images[0].width === 8);
 * ```
 */
export async function readOptdigits(options: OptdigitsOptions = {}): Promise<LabeledImages> {
  const path = options.path ?? DEBIAN_PATH;
  const classNames = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
  const corrupt = (why: string) =>
    new RuntimeError("internal", "dataset_corrupt", `optdigits file ${path} is unreadable: ${why}`, {
      dataset: "optdigits",
      path,
    });
  let text: string;
  try {
    const file = await Deno.open(path, { read: true });
    const stream = file.readable.pipeThrough(new DecompressionStream("gzip"));
    text = await new Response(stream).text();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new RuntimeError(
        "unavailable",
        "dataset_missing",
        `optdigits is not installed: ${path} does not exist; install the Debian package python3-sklearn ` +
          "(`apt-get install python3-sklearn`, or `bash .ci/install_data.sh`)",
        { dataset: "optdigits", path },
      );
    }
    throw corrupt((err as Error).message);
  }

  // The 1 797 rows are small; parse all labels, then build only the chosen images.
  const rows = text.split("\n").filter((line) => line.trim() !== "");
  const labels = rows.map((row, i) => {
    const label = Number(row.slice(row.lastIndexOf(",") + 1));
    if (!Number.isInteger(label) || label < 0 || label > 9) {
      throw corrupt(`row ${i + 1} has label '${label}'`);
    }
    return label;
  });
  const chosen = selectIndices(labels, classNames, options);
  const images = chosen.map((i): RgbImage => {
    const values = rows[i].split(",").map(Number);
    if (values.length !== 65 || values.some((v) => !Number.isInteger(v) || v < 0 || v > 16)) {
      throw corrupt(`row ${i + 1} is not 64 counts in 0..16 and a label`);
    }
    const data = new Uint8Array(64 * 3);
    for (let p = 0; p < 64; p++) {
      data[p * 3] = data[p * 3 + 1] = data[p * 3 + 2] = Math.round(values[p] * 255 / 16);
    }
    return { width: 8, height: 8, data };
  });
  return { images, labels: chosen.map((i) => labels[i]), classNames };
}
