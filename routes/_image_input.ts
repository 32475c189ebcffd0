import type { Context } from "hono";
import { RuntimeError } from "../src/errors.ts";
import type { SampleUpload } from "../src/store/validate_samples.ts";

const DATA_URL = /^data:[^,]*;base64,/i;

/**
 * Bytes from base64 or base64url text (padding optional, a `data:...;base64,` prefix and whitespace
 * ignored). The error names the item: `images[2]: ...`.
 *
 * @example
 * ```ts
 * import { bytesFromBase64 } from "./_image_input.ts";
 * console.assert(bytesFromBase64("iVBORw", "images", 0)[0] === 0x89);
 * ```
 */
export function bytesFromBase64(text: string, list: string, index: number): Uint8Array {
  const clean = text.replace(DATA_URL, "").replace(/\s+/g, "");
  const alphabet = /[-_]/.test(clean) ? "base64url" : "base64";
  try {
    return (Uint8Array as unknown as {
      fromBase64(s: string, o: { alphabet: string; lastChunkHandling: string }): Uint8Array;
    }).fromBase64(clean, { alphabet, lastChunkHandling: "loose" });
  } catch {
    throw new RuntimeError("invalid", "invalid_base64", `${list}[${index}]: the image is not valid base64`, {
      index,
    });
  }
}

/** Whether the request body is multipart/form-data. */
export function isMultipart(c: Context): boolean {
  return (c.req.header("content-type") ?? "").toLowerCase().startsWith("multipart/form-data");
}

async function formEntries(c: Context): Promise<[string, FormDataEntryValue][]> {
  try {
    return [...(await c.req.formData()).entries()];
  } catch (err) {
    throw new RuntimeError(
      "invalid",
      "invalid_multipart",
      `the multipart body cannot be read: ${(err as Error).message}`,
    );
  }
}

/**
 * The samples of a multipart upload: repeated `label` and `image` fields, the n-th label going with the
 * n-th image (so `label, image, label, image` and `label, label, image, image` both work). A sample without
 * one of the two is passed on incomplete, for `validateSamples` to name.
 */
export async function samplesFromMultipart(c: Context): Promise<SampleUpload[]> {
  const labels: string[] = [];
  const images: Uint8Array[] = [];
  for (const [name, value] of await formEntries(c)) {
    if (name === "label" && typeof value === "string") labels.push(value);
    else if (name === "image" && typeof value !== "string") {
      images.push(new Uint8Array(await value.arrayBuffer()));
    } else if (name === "image") {
      throw new RuntimeError(
        "invalid",
        "image_not_a_file",
        `samples[${images.length}]: 'image' must be a file part`,
        {
          index: images.length,
        },
      );
    } else {
      throw new RuntimeError(
        "invalid",
        "unknown_field",
        `unknown multipart field '${name}'${
          name === "label" ? " (a file, not text)" : ""
        }; send 'label' and 'image' pairs`,
        { field: name, fields: [name] },
      );
    }
  }
  return Array.from({ length: Math.max(labels.length, images.length) }, (_, i) => ({
    label: labels[i],
    bytes: images[i],
  }));
}

/**
 * The samples of a JSON upload, `{samples: [{label, image: base64}]}` (already validated in shape). A sample
 * without one of the two is passed on incomplete, for `validateSamples` to name, as in multipart.
 */
export function samplesFromJson(body: { samples: { label?: string; image?: string }[] }): SampleUpload[] {
  return body.samples.map((s, i) => ({
    label: s.label,
    bytes: s.image === undefined ? undefined : bytesFromBase64(s.image, "samples", i),
  }));
}

/** The images of a multipart prediction request (repeated `image` file fields) and its optional `topK`. */
export async function imagesFromMultipart(c: Context): Promise<{ images: Uint8Array[]; topK?: number }> {
  const images: Uint8Array[] = [];
  let topK: number | undefined;
  for (const [name, value] of await formEntries(c)) {
    if (name === "image" && typeof value !== "string") images.push(new Uint8Array(await value.arrayBuffer()));
    else if (name === "image") images.push(bytesFromBase64(value as string, "images", images.length));
    else if (name === "topK" && typeof value === "string") topK = parseTopK(value);
    else {
      throw new RuntimeError(
        "invalid",
        "unknown_field",
        `unknown multipart field '${name}'; send 'image' files (and optionally 'topK')`,
        { field: name, fields: [name] },
      );
    }
  }
  return { images, topK };
}

/** Most labels a prediction may list. */
export const MAX_TOP_K = 100;

/** A `topK` from text, an integer from 1 to {@linkcode MAX_TOP_K}. */
export function parseTopK(value: string): number {
  const k = Number(value);
  if (!Number.isInteger(k) || k < 1 || k > MAX_TOP_K) {
    throw new RuntimeError("invalid", "invalid_top_k", `topK must be an integer from 1 to ${MAX_TOP_K}`, {
      topK: value,
    });
  }
  return k;
}
