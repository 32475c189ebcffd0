import { RuntimeError } from "../errors.ts";
import type { RgbImage } from "./image.ts";
import type { LabeledImages } from "./labeled_images.ts";
import { seededRandom } from "./random.ts";

/**
 * MNIST-M-style blending (Ganin & Lempitsky, 2015): each digit is drawn over a patch of a real photograph
 * as the per-channel absolute difference `|patch - digit|`, so the background takes the photo's colours
 * and texture and the stroke shows the photo inverted. The patch is a crop of the digit's size at a random
 * position of a photo chosen at random; all draws come from `seed`, so the same arguments give the same
 * images. Labels and class names are kept; the digits' order is kept.
 *
 * Ganin and Lempitsky cropped BSDS500 photos; `fixtures/photos` (scikit-image's samples) stand in here.
 *
 * Shapes: every digit is `w x h` RGB (grey digits have R = G = B); every photo must be at least `w x h`.
 * The result's images are `w x h` RGB, in colour.
 *
 * @throws {RuntimeError} `invalid`/`invalid_blend` when there are no photos or a photo is smaller than a
 *   digit.
 *
 * @example
 * ```ts
 * import { blendOntoPhotos } from "./blend.ts";
 * const digit = { width: 2, height: 1, data: new Uint8Array([255, 255, 255, 0, 0, 0]) };
 * const photo = { width: 2, height: 1, data: new Uint8Array([10, 20, 30, 10, 20, 30]) };
 * const out = blendOntoPhotos({ images: [digit], labels: [0], classNames: ["0"] }, [photo], 1);
 * console.assert(out.images[0].data.join() === "245,235,225,10,20,30");
 * ```
 */
export function blendOntoPhotos(digits: LabeledImages, photos: RgbImage[], seed: number): LabeledImages {
  if (photos.length === 0) {
    throw new RuntimeError("invalid", "invalid_blend", "blending needs at least one photo", {});
  }
  const random = seededRandom(seed);
  const images = digits.images.map((digit) => {
    const photo = photos[Math.floor(random() * photos.length)];
    if (photo.width < digit.width || photo.height < digit.height) {
      throw new RuntimeError(
        "invalid",
        "invalid_blend",
        `a ${photo.width}x${photo.height} photo cannot hold a ${digit.width}x${digit.height} digit`,
        { photo: [photo.width, photo.height], digit: [digit.width, digit.height] },
      );
    }
    const left = Math.floor(random() * (photo.width - digit.width + 1));
    const top = Math.floor(random() * (photo.height - digit.height + 1));
    const data = new Uint8Array(digit.data.length);
    for (let y = 0; y < digit.height; y++) {
      for (let x = 0; x < digit.width; x++) {
        const d = (y * digit.width + x) * 3, p = ((top + y) * photo.width + left + x) * 3;
        for (let c = 0; c < 3; c++) data[d + c] = Math.abs(photo.data[p + c] - digit.data[d + c]);
      }
    }
    return { width: digit.width, height: digit.height, data };
  });
  return { images, labels: [...digits.labels], classNames: [...digits.classNames] };
}
