// JPEG specifics for `image.ts`: the frame size read from the SOF marker before decoding, so a bomb is
// refused before the decoder allocates anything.
import { RuntimeError } from "../errors.ts";

/** Start-of-frame markers (baseline, extended, progressive, lossless, arithmetic); all carry the size. */
const SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** Markers that stand alone, without a length field. */
function standalone(marker: number): boolean {
  return marker === 0x01 || marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7);
}

/** Walks the marker segments up to the first start-of-frame and returns the frame's size. */
export function readJpegSize(bytes: Uint8Array): { width: number; height: number } {
  const invalid = (message: string) =>
    new RuntimeError("invalid", "invalid_image", `invalid JPEG: ${message}`, { format: "jpeg" });
  let at = 2; // after SOI
  while (at < bytes.length) {
    if (bytes[at] !== 0xff) throw invalid(`expected a marker at byte ${at}`);
    while (bytes[at] === 0xff) at++; // fill bytes
    const marker = bytes[at++];
    if (standalone(marker)) continue;
    if (marker === 0xda || marker === 0xd9) throw invalid("no frame header before the image data");
    if (at + 2 > bytes.length) break;
    const length = (bytes[at] << 8) | bytes[at + 1];
    if (length < 2) throw invalid(`segment 0xFF${marker.toString(16).toUpperCase()} has length ${length}`);
    if (SOF_MARKERS.has(marker)) {
      if (at + 7 > bytes.length) break;
      const height = (bytes[at + 3] << 8) | bytes[at + 4];
      const width = (bytes[at + 5] << 8) | bytes[at + 6];
      if (width === 0 || height === 0) throw invalid("width or height is zero");
      return { width, height };
    }
    at += length;
  }
  throw invalid("the file ends before a frame header");
}
