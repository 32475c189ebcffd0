// The IDX format of MNIST and Fashion-MNIST (plain or gzipped): a magic number, the dimensions, then the
// bytes. Shared by `mnist.ts` and `fashion_mnist.ts`; reads only as far into a file as the examples asked for.
import { RuntimeError } from "../errors.ts";
import type { RgbImage } from "./image.ts";
import type { LabeledImages, SubsetOptions } from "./labeled_images.ts";
import { selectIndices } from "./_select_indices.ts";

/** Where an IDX data set lives and how to say it is missing. */
export interface IdxSource {
  /** Data set name for messages, e.g. "MNIST". */
  dataset: string;
  imagesPath: string;
  labelsPath: string;
  classNames: string[];
  /** How to install the files, for the `dataset_missing` message, e.g. "the Debian package dataset-fashion-mnist". */
  installHint: string;
}

/** Reads the selected examples of an IDX image/label file pair. */
export async function readIdxDataset(source: IdxSource, options: SubsetOptions): Promise<LabeledImages> {
  const labelBytes = await readPrefix(source, source.labelsPath, Infinity);
  const labelCount = checkHeader(source, source.labelsPath, labelBytes, 1)[0];
  const labels = labelBytes.subarray(8, 8 + labelCount);
  if (labels.length !== labelCount || labels.some((l) => l >= source.classNames.length)) {
    throw corrupt(source, source.labelsPath, "labels are truncated or out of range");
  }
  const chosen = selectIndices(labels, source.classNames, options);
  if (chosen.length === 0) return { images: [], labels: [], classNames: [...source.classNames] };

  // Images are stored in label order; read up to the last chosen one and no further.
  const headerBytes = 16;
  const probe = await readPrefix(source, source.imagesPath, headerBytes);
  const [imageCount, rows, cols] = checkHeader(source, source.imagesPath, probe, 3);
  if (imageCount !== labelCount) {
    throw corrupt(source, source.imagesPath, `${imageCount} images but ${labelCount} labels`);
  }
  const pixels = rows * cols;
  const needed = headerBytes + (chosen[chosen.length - 1] + 1) * pixels;
  const imageBytes = await readPrefix(source, source.imagesPath, needed);
  if (imageBytes.length < needed) throw corrupt(source, source.imagesPath, "image data is truncated");

  const images = chosen.map((i): RgbImage => {
    const grey = imageBytes.subarray(headerBytes + i * pixels, headerBytes + (i + 1) * pixels);
    const data = new Uint8Array(pixels * 3);
    for (let p = 0; p < pixels; p++) data[p * 3] = data[p * 3 + 1] = data[p * 3 + 2] = grey[p];
    return { width: cols, height: rows, data };
  });
  return { images, labels: chosen.map((i) => labels[i]), classNames: [...source.classNames] };
}

/** Checks the magic number (unsigned bytes, `dims` dimensions) and returns the dimensions. */
function checkHeader(source: IdxSource, path: string, bytes: Uint8Array, dims: number): number[] {
  if (
    bytes.length < 4 + 4 * dims || bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08 || bytes[3] !== dims
  ) {
    throw corrupt(source, path, `not an IDX file of unsigned bytes with ${dims} dimension(s)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: dims }, (_, d) => view.getUint32(4 + 4 * d));
}

function corrupt(source: IdxSource, path: string, why: string): RuntimeError {
  return new RuntimeError(
    "internal",
    "dataset_corrupt",
    `${source.dataset} file ${path} is unreadable: ${why}`,
    {
      dataset: source.dataset,
      path,
    },
  );
}

/**
 * Reads the first `count` bytes of a file (all of it for `Infinity`), gunzipping `.gz` files on the fly
 * and stopping the decompression once enough bytes have come out.
 */
async function readPrefix(source: IdxSource, path: string, count: number): Promise<Uint8Array> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new RuntimeError(
        "unavailable",
        "dataset_missing",
        `${source.dataset} is not installed: ${path} does not exist; install ${source.installHint}`,
        { dataset: source.dataset, path },
      );
    }
    throw err;
  }
  let stream: ReadableStream<Uint8Array<ArrayBuffer>> = file.readable;
  if (path.endsWith(".gz")) stream = stream.pipeThrough(new DecompressionStream("gzip"));
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    while (length < count) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      length += value.length;
    }
  } catch (err) {
    throw corrupt(source, path, (err as Error).message);
  } finally {
    // Cancelling closes the file too.
    await reader.cancel().catch(() => {});
  }
  const out = new Uint8Array(Math.min(length, count));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, out.length - at);
    out.set(part, at);
    at += part.length;
    if (at === out.length) break;
  }
  return out;
}
