import { RuntimeError } from "../errors.ts";
import { decodeImage, type DecodeImageOptions } from "./image.ts";
import type { LabeledImages } from "./labeled_images.ts";

/** File name endings read as images (case-insensitive); other files are ignored. */
const IMAGE_FILE = /\.(png|jpe?g|webp|gif|avif|tiff?)$/i;

/**
 * Reads a folder laid out as one sub-folder per class, each holding that class's `.png`, `.jpg` or
 * `.jpeg` files (or `.webp`, `.gif`, `.avif`, `.tif`):
 *
 * ```text
 * dir/cat/1.jpg  dir/cat/2.png  dir/dog/a.jpeg ...
 * ```
 *
 * Class names are the sub-folder names, sorted by code point; files within a class are read in sorted
 * order, so the result is the same on every machine. Hidden entries (names starting with ".") and files
 * with other endings are skipped. Each image is decoded with {@link decodeImage} (`options` passes its
 * `maxPixels`).
 *
 * @throws {RuntimeError} `not_found`/`image_folder_missing` when `dir` does not exist;
 *   `invalid`/`not_a_directory` when it is a file; `invalid`/`no_class_folders` when it has no
 *   sub-folders; `invalid`/`empty_class_folder` when a class folder has no image file; and, for a file
 *   that does not decode, decodeImage's error (`invalid_image`, `unsupported_image_type`,
 *   `image_too_large`) with the file's path in the message and in `details.file`.
 *
 * @example
 * ```ts
 * import { readImageFolder } from "./folder.ts";
 * const digits = await readImageFolder("fixtures/digits");
 * console.assert(digits.classNames.join("") === "0123456789" && digits.images.length === 240);
 * ```
 */
export async function readImageFolder(dir: string, options: DecodeImageOptions = {}): Promise<LabeledImages> {
  const info = await Deno.stat(dir).catch((err) => {
    if (err instanceof Deno.errors.NotFound) {
      throw new RuntimeError("not_found", "image_folder_missing", `image folder ${dir} does not exist`, {
        dir,
      });
    }
    throw err;
  });
  if (!info.isDirectory) {
    throw new RuntimeError("invalid", "not_a_directory", `${dir} is a file, not a folder of class folders`, {
      dir,
    });
  }

  const classNames: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith(".")) continue;
    if (await isDirectory(`${dir}/${entry.name}`, entry)) classNames.push(entry.name);
  }
  classNames.sort(byCodePoint);
  if (classNames.length === 0) {
    throw new RuntimeError(
      "invalid",
      "no_class_folders",
      `image folder ${dir} has no class folders: put each class's images in a sub-folder named after the class`,
      { dir },
    );
  }

  const result: LabeledImages = { images: [], labels: [], classNames };
  for (const [label, className] of classNames.entries()) {
    const files: string[] = [];
    for await (const entry of Deno.readDir(`${dir}/${className}`)) {
      if (!entry.name.startsWith(".") && IMAGE_FILE.test(entry.name) && !entry.isDirectory) {
        files.push(entry.name);
      }
    }
    if (files.length === 0) {
      throw new RuntimeError(
        "invalid",
        "empty_class_folder",
        `class folder ${dir}/${className} has no .png, .jpg, .jpeg, .webp, .gif, .avif or .tif files`,
        { dir, className },
      );
    }
    for (const name of files.sort(byCodePoint)) {
      const file = `${dir}/${className}/${name}`;
      try {
        result.images.push(await decodeImage(await Deno.readFile(file), options));
      } catch (err) {
        if (!(err instanceof RuntimeError)) throw err;
        throw new RuntimeError(err.kind, err.code, `${file}: ${err.message}`, { ...err.details, file });
      }
      result.labels.push(label);
    }
  }
  return result;
}

async function isDirectory(path: string, entry: Deno.DirEntry): Promise<boolean> {
  if (!entry.isSymlink) return entry.isDirectory;
  return (await Deno.stat(path).catch(() => undefined))?.isDirectory ?? false;
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
