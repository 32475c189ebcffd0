import { RuntimeError } from "../errors.ts";
import { boundedImageFile, type ImageFormat } from "../data/image.ts";
import { atPosition, checkRequestPixels, type ImageLimits, settleInOrder } from "../data/uploaded_image.ts";

/** A labelled image as it arrives, before any check. */
export interface SampleUpload {
  label?: string;
  bytes?: Uint8Array;
}

/**
 * A sample that passed every check: its label (null in an unlabelled upload) and the file to store, which is
 * the uploaded file when it is upright and within `maxImageSide`, otherwise a lossless PNG of the decoded,
 * upright, shrunk image.
 */
export interface ValidSample {
  label: string | null;
  bytes: Uint8Array;
  format: ImageFormat;
  /** Pixels of the stored image (`width * height`), at most `maxImageSide` squared. */
  pixels: number;
}

/** The limits of {@linkcode validateSamples}. */
export interface SampleLimits extends ImageLimits {
  maxSamplesPerRequest: number;
}

/** Longest class label, in characters. */
export const MAX_LABEL_LENGTH = 100;

// Labels become class names in model metadata and API responses: no control characters.
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Whether `label` may name a class: 1 to {@linkcode MAX_LABEL_LENGTH} characters, not blank, no control
 * characters.
 *
 * @example
 * ```ts
 * import { isValidLabel } from "./validate_samples.ts";
 * console.assert(isValidLabel("cat") && !isValidLabel("  ") && !isValidLabel("a\nb"));
 * ```
 */
export function isValidLabel(label: string): boolean {
  return label.trim() !== "" && label.length <= MAX_LABEL_LENGTH && !CONTROL.test(label);
}

/**
 * Checks a whole upload before any of it is stored, so an upload is all or nothing: a count within the
 * limit, a label on every sample (1 to 100 characters, no control characters, not blank), the request's
 * source pixels within `maxRequestPixels` (from the headers, before decoding), and an image that decodes
 * within the byte and pixel limits. The first failure names its sample. Each image is then bounded for
 * storage once, here (`boundedImageFile`), so nothing later decodes a file larger than `maxImageSide`.
 *
 * With `unlabelled`, the upload is of unlabelled images (for `bn-refresh`): a sample that carries a label is
 * refused with `unexpected_label`, so that a mislabelled upload cannot pass silently either way.
 *
 * @throws {RuntimeError} `invalid`/`no_samples`, `too_large`/`too_many_samples`, `invalid`/`missing_label`,
 *   `invalid`/`invalid_label`, `invalid`/`unexpected_label`, `invalid`/`missing_image`,
 *   {@linkcode checkRequestPixels}'s `pixel_budget_exceeded`, and the decode errors (`invalid_image`,
 *   `unsupported_image_type`, `image_too_large`).
 *
 * @example
 * ```ts
 * import { validateSamples } from "./validate_samples.ts";
 * import { encodePng } from "../data/image.ts";
 * const bytes = encodePng({ width: 1, height: 1, data: new Uint8Array([0, 0, 0]) });
 * const limits = { maxSamplesPerRequest: 10, maxImageBytes: 1e6, maxImagePixels: 1e6, maxImageSide: 512, maxRequestPixels: 1e6 };
 * const [s] = await validateSamples([{ label: "cat", bytes }], limits);
 * console.assert(s.format === "png");
 * ```
 */
export async function validateSamples(
  samples: SampleUpload[],
  limits: SampleLimits,
  options: { unlabelled?: boolean } = {},
): Promise<ValidSample[]> {
  if (samples.length === 0) {
    throw new RuntimeError("invalid", "no_samples", "the upload holds no samples", {});
  }
  if (samples.length > limits.maxSamplesPerRequest) {
    throw new RuntimeError(
      "too_large",
      "too_many_samples",
      `samples[${limits.maxSamplesPerRequest}]: an upload may hold at most ${limits.maxSamplesPerRequest} ` +
        `samples, got ${samples.length}`,
      {
        index: limits.maxSamplesPerRequest,
        count: samples.length,
        maxSamplesPerRequest: limits.maxSamplesPerRequest,
      },
    );
  }
  const checked = samples.map(({ label, bytes }, index) => {
    if (options.unlabelled) {
      if (label !== undefined) {
        throw new RuntimeError(
          "invalid",
          "unexpected_label",
          `samples[${index}]: an unlabelled upload (unlabelled=true) carries no labels, this sample has '${label}'`,
          { index, label },
        );
      }
      return { label: null, bytes: presentImage(bytes, index) };
    }
    if (label === undefined) {
      throw new RuntimeError("invalid", "missing_label", `samples[${index}]: the sample has no label`, {
        index,
      });
    }
    if (!isValidLabel(label)) {
      throw new RuntimeError(
        "invalid",
        "invalid_label",
        `samples[${index}]: a label must be 1 to ${MAX_LABEL_LENGTH} characters, not blank, without control characters`,
        { index, label },
      );
    }
    return { label, bytes: presentImage(bytes, index) };
  });
  const headers = await checkRequestPixels(checked.map((s) => s.bytes), "samples", limits);
  const bounds = { maxPixels: limits.maxImagePixels, maxSide: limits.maxImageSide };
  return await settleInOrder(
    checked.map(({ label, bytes }, index) =>
      atPosition({ list: "samples", index }, async () => {
        const file = await boundedImageFile(bytes, { ...bounds, probed: headers[index] });
        return { label, bytes: file.bytes, format: file.format, pixels: file.width * file.height };
      })
    ),
  );
}

function presentImage(bytes: Uint8Array | undefined, index: number): Uint8Array {
  if (bytes === undefined) {
    throw new RuntimeError("invalid", "missing_image", `samples[${index}]: the sample has no image`, {
      index,
    });
  }
  return bytes;
}
