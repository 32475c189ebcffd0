import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import * as tf from "@tensorflow/tfjs";
import { encode as encodeRawPng } from "fast-png";
import jpeg from "jpeg-js";
import { RuntimeError } from "../src/errors.ts";
import { loadSharp } from "../src/data/_sharp.ts";
import {
  boundedImageFile,
  decodeImage,
  DEFAULT_MAX_SIDE,
  encodePng,
  type RgbImage,
} from "../src/data/image.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";

await tf.setBackend("cpu");

const PHOTOS = new URL("../fixtures/photos/", import.meta.url);

async function rejects(fn: () => unknown, kind: string, code: string): Promise<RuntimeError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof RuntimeError, `expected a RuntimeError, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.kind, kind);
    return err;
  }
  assert.fail(`expected ${code}`);
}

function rejectsSync(fn: () => unknown, kind: string, code: string): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof RuntimeError, `expected a RuntimeError, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.kind, kind);
    return;
  }
  assert.fail(`expected ${code}`);
}

const pixels = (img: RgbImage) => Array.from(img.data);

// --- PNG -------------------------------------------------------------------------------------------

Deno.test("a grey PNG decodes to RGB with R = G = B", async () => {
  const png = encodeRawPng({
    width: 3,
    height: 1,
    data: new Uint8Array([0, 128, 255]),
    channels: 1,
    depth: 8,
  });
  const img = await decodeImage(png);
  assert.deepEqual([img.width, img.height], [3, 1]);
  assert.deepEqual(pixels(img), [0, 0, 0, 128, 128, 128, 255, 255, 255]);
});

Deno.test("a grey+alpha PNG is composited onto white", async () => {
  const data = new Uint8Array([0, 0, 0, 255, 100, 128]); // (grey, alpha) pairs
  const img = await decodeImage(encodeRawPng({ width: 3, height: 1, data, channels: 2, depth: 8 }));
  const half = Math.round(255 * ((100 / 255) * (128 / 255) + 1 - 128 / 255));
  assert.deepEqual(pixels(img), [255, 255, 255, 0, 0, 0, half, half, half]);
});

Deno.test("an RGBA PNG is composited onto white", async () => {
  const data = new Uint8Array([255, 0, 0, 255, 0, 0, 255, 0, 10, 20, 30, 51]);
  const img = await decodeImage(encodeRawPng({ width: 3, height: 1, data, channels: 4, depth: 8 }));
  const over = (c: number) => Math.round(255 * ((c / 255) * 0.2 + 0.8));
  assert.deepEqual(pixels(img), [255, 0, 0, 255, 255, 255, over(10), over(20), over(30)]);
});

Deno.test("a palette PNG maps 2-bit indices to palette colours and palette alpha onto white", async () => {
  // Translucent entries first: fast-png's encoder writes tRNS for the non-opaque entries only, which is
  // right only when they lead the palette.
  const palette = [[9, 9, 9, 0], [200, 100, 0, 102], [255, 0, 0, 255], [0, 255, 0, 255]];
  // 5 pixels of 2 bits: indices 0 1 2 3 1 packed in two bytes, the last one padded.
  const data = new Uint8Array([0b00011011, 0b01000000]);
  const img = await decodeImage(encodeRawPng({ width: 5, height: 1, data, channels: 1, depth: 2, palette }));
  const over = (c: number) => Math.round(255 * ((c / 255) * 0.4 + 0.6));
  const orange = [over(200), over(100), over(0)];
  assert.deepEqual(pixels(img), [255, 255, 255, ...orange, 255, 0, 0, 0, 255, 0, ...orange]);
});

Deno.test("an 8-bit palette PNG without transparency decodes to its palette colours", async () => {
  const palette = [[10, 20, 30], [40, 50, 60]];
  const img = await decodeImage(
    encodeRawPng({ width: 2, height: 2, data: new Uint8Array([0, 1, 1, 0]), channels: 1, depth: 8, palette }),
  );
  assert.deepEqual(pixels(img), [10, 20, 30, 40, 50, 60, 40, 50, 60, 10, 20, 30]);
});

Deno.test("a grey PNG's tRNS colour key makes that grey value transparent, composited onto white", async () => {
  const scanline = new Uint8Array([0, 50, 60]); // filter type 0, then two grey samples
  const png = pngFile(2, 1, 0, deflateSync(scanline), [chunk("tRNS", new Uint8Array([0, 50]))]);
  assert.deepEqual(pixels(await decodeImage(png)), [255, 255, 255, 60, 60, 60]);
});

Deno.test("a 1-bit grey PNG unpacks every row's bits, row padding included", async () => {
  // 10 x 2: row 0 is 1010101010, row 1 is 0000000001; each row is 2 bytes.
  const data = new Uint8Array([0b10101010, 0b10000000, 0b00000000, 0b01000000]);
  const img = await decodeImage(encodeRawPng({ width: 10, height: 2, data, channels: 1, depth: 1 }));
  const grey = pixels(img).filter((_, i) => i % 3 === 0);
  assert.deepEqual(grey, [255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255]);
});

Deno.test("a 16-bit grey and a 16-bit RGB PNG round to the nearest 8-bit value", async () => {
  const grey = await decodeImage(
    encodeRawPng({
      width: 2,
      height: 1,
      data: new Uint16Array([65535, 257 * 100 + 128]),
      channels: 1,
      depth: 16,
    }),
  );
  assert.deepEqual(pixels(grey), [255, 255, 255, 100, 100, 100]);
  const rgb = await decodeImage(
    encodeRawPng({ width: 1, height: 1, data: new Uint16Array([0, 32896, 65535]), channels: 3, depth: 16 }),
  );
  assert.deepEqual(pixels(rgb), [0, 128, 255]);
});

Deno.test("an Adam7-interlaced 8-bit PNG decodes to the same pixels as a plain one", async () => {
  const width = 9, height = 7;
  const data = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37) % 256);
  const interlaced = encodeRawPng({ width, height, data, channels: 3, depth: 8 }, { interlace: "Adam7" });
  assert.equal(interlaced[28], 1, "the encoder wrote an interlaced PNG");
  assert.deepEqual(pixels(await decodeImage(interlaced)), Array.from(data));
});

Deno.test("encodePng then decodeImage returns the same RGB bytes", async () => {
  const img: RgbImage = {
    width: 4,
    height: 3,
    data: Uint8Array.from({ length: 36 }, (_, i) => (i * 71) % 256),
  };
  const png = encodePng(img);
  assert.equal(png[25], 2, "colour type 2 (RGB)");
  assert.deepEqual(await decodeImage(png), img);
});

Deno.test("encodePng writes a grey PNG when every pixel has R = G = B", async () => {
  const img: RgbImage = { width: 2, height: 1, data: new Uint8Array([5, 5, 5, 200, 200, 200]) };
  const png = encodePng(img);
  assert.equal(png[25], 0, "colour type 0 (grey)");
  assert.deepEqual(await decodeImage(png), img);
});

Deno.test("encodePng rejects data whose length is not width x height x 3", async () => {
  await rejects(
    () => encodePng({ width: 2, height: 2, data: new Uint8Array(11) }),
    "invalid",
    "invalid_image",
  );
});

// --- JPEG ------------------------------------------------------------------------------------------

Deno.test("a JPEG round trip keeps the size and the colours within JPEG's error", async () => {
  const width = 16, height = 8;
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) rgba.set([200, 100, 50, 255], p * 4);
  const bytes = new Uint8Array(jpeg.encode({ width, height, data: rgba }, 100).data);
  const img = await decodeImage(bytes);
  assert.deepEqual([img.width, img.height, img.data.length], [width, height, width * height * 3]);
  for (let p = 0; p < width * height; p++) {
    [200, 100, 50].forEach((v, c) => assert.ok(Math.abs(img.data[p * 3 + c] - v) <= 3, `pixel ${p}`));
  }
});

Deno.test("the committed photo fixtures decode to their documented sizes", async () => {
  const sizes: Record<string, [number, number]> = {
    "astronaut.jpg": [256, 256],
    "chelsea.jpg": [256, 170],
    "coffee.jpg": [256, 171],
    "rocket.jpg": [256, 171],
    "camera.png": [256, 256],
  };
  for (const [name, [width, height]] of Object.entries(sizes)) {
    const img = await decodeImage(await Deno.readFile(new URL(name, PHOTOS)));
    assert.deepEqual([img.width, img.height, img.data.length], [width, height, width * height * 3], name);
  }
});

// --- errors ----------------------------------------------------------------------------------------

Deno.test("bytes in a format outside the list are unsupported, and BMP, SVG and HEIC are named", async () => {
  const bmp = new Uint8Array(64);
  bmp.set([0x42, 0x4d]);
  const svg = new TextEncoder().encode("<svg xmlns='http://www.w3.org/2000/svg' width='9' height='9'/>");
  const heic = new Uint8Array([0, 0, 0, 24, ...new TextEncoder().encode("ftypheic"), 0, 0, 0, 0]);
  for (const [bytes, name] of [[bmp, "bmp"], [svg, "svg"], [heic, "heic"]] as const) {
    const err = await rejects(() => decodeImage(bytes), "unsupported", "unsupported_image_type");
    assert.equal(err.details.detected, name);
  }
  await rejects(
    () => decodeImage(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])),
    "unsupported",
    "unsupported_image_type",
  );
});

Deno.test("empty bytes are an invalid image", async () => {
  await rejects(() => decodeImage(new Uint8Array(0)), "invalid", "invalid_image");
});

Deno.test("a truncated PNG is an invalid image", async () => {
  const png = encodePng({ width: 8, height: 8, data: Uint8Array.from({ length: 192 }, (_, i) => i) });
  await rejects(() => decodeImage(png.subarray(0, png.length - 20)), "invalid", "invalid_image");
  await rejects(() => decodeImage(png.subarray(0, 20)), "invalid", "invalid_image");
});

Deno.test("a PNG whose image data is not zlib is an invalid image", async () => {
  const idat = new Uint8Array(64).fill(0xab);
  await rejects(() => decodeImage(pngFile(4, 4, 2, idat)), "invalid", "invalid_image");
});

Deno.test("a corrupt JPEG is an invalid image", async () => {
  await rejects(
    () => decodeImage(new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3])),
    "invalid",
    "invalid_image",
  );
  const good = new Uint8Array(
    jpeg.encode({ width: 8, height: 8, data: new Uint8Array(256).fill(255) }, 90).data,
  );
  const broken = good.slice();
  broken.fill(0x00, 4, 40); // keep SOI and the first marker, wipe its segment and those after
  await rejects(() => decodeImage(broken), "invalid", "invalid_image");
});

Deno.test("a PNG whose header declares more than maxPixels is refused before decoding", async () => {
  // 100 000 x 100 000 with 16 bytes of image data: decoding would never finish.
  const err = await rejects(
    () => decodeImage(pngFile(100_000, 100_000, 2, new Uint8Array(16))),
    "too_large",
    "image_too_large",
  );
  assert.equal(err.details.width, 100_000);
  const small = encodePng({ width: 10, height: 10, data: new Uint8Array(300) });
  await rejects(() => decodeImage(small, { maxPixels: 99 }), "too_large", "image_too_large");
  assert.equal((await decodeImage(small, { maxPixels: 100 })).width, 10);
});

Deno.test("a PNG whose image data inflates past its declared size decodes to its declared size only", async () => {
  // A 1x1 header over 64 MB of zeros that deflate to about 64 KB: the decoder stops at the declared rows.
  const bomb = pngFile(1, 1, 2, deflateSync(new Uint8Array(64 * 2 ** 20)));
  const image = await decodeImage(bomb);
  assert.deepEqual([image.width, image.height, image.data.length], [1, 1, 3]);
});

Deno.test("a JPEG whose frame header declares more than maxPixels is refused before decoding", async () => {
  // An 8 x 8 JPEG whose frame header is patched to declare 20 000 x 20 000.
  const small = new Uint8Array(jpeg.encode({ width: 8, height: 8, data: new Uint8Array(256) }, 90).data);
  const bomb = small.slice();
  const sof = bomb.findIndex((b, i) => b === 0xff && bomb[i + 1] === 0xc0);
  bomb.set([0x4e, 0x20, 0x4e, 0x20], sof + 5);
  const err = await rejects(() => decodeImage(bomb), "too_large", "image_too_large");
  assert.equal(err.details.width, 20_000);
  await rejects(() => decodeImage(small, { maxPixels: 63 }), "too_large", "image_too_large");
});

// --- imagesToTensor --------------------------------------------------------------------------------

Deno.test("imagesToTensor stacks images of different sizes into [N, height, width, channels] float32", () => {
  const a: RgbImage = { width: 5, height: 3, data: new Uint8Array(45).fill(10) };
  const b: RgbImage = { width: 2, height: 7, data: new Uint8Array(42).fill(20) };
  const t = imagesToTensor([a, b], { height: 4, width: 6, channels: 3, range: [0, 1] });
  assert.deepEqual(t.shape, [2, 4, 6, 3]);
  assert.equal(t.dtype, "float32");
  t.dispose();
});

Deno.test("imagesToTensor maps byte 0 and 255 to the ends of the range, linearly", () => {
  const img: RgbImage = { width: 3, height: 1, data: new Uint8Array([0, 0, 0, 51, 51, 51, 255, 255, 255]) };
  const t = imagesToTensor([img], { height: 1, width: 3, channels: 3, range: [-1, 1] });
  assertClose(Array.from(t.dataSync()), [-1, -1, -1, -0.6, -0.6, -0.6, 1, 1, 1]);
  t.dispose();
  const down = imagesToTensor([img], { height: 1, width: 3, channels: 1, range: [1, 0] });
  assertClose(Array.from(down.dataSync()), [1, 0.8, 0]);
  down.dispose();
});

Deno.test("imagesToTensor averages a 2x2 image to one pixel (bilinear, half-pixel centres)", () => {
  const img: RgbImage = {
    width: 2,
    height: 2,
    data: new Uint8Array([0, 0, 0, 51, 0, 0, 102, 0, 0, 153, 255, 0]),
  };
  const t = imagesToTensor([img], { height: 1, width: 1, channels: 3, range: [0, 1] });
  assertClose(Array.from(t.dataSync()), [0.3, 0.25, 0]);
  t.dispose();
});

Deno.test("imagesToTensor reduces colour to grey with ITU-R 601 luma weights", () => {
  const data = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
  const t = imagesToTensor([{ width: 4, height: 1, data }], {
    height: 1,
    width: 4,
    channels: 1,
    range: [0, 1],
  });
  assert.deepEqual(t.shape, [1, 1, 4, 1]);
  assertClose(Array.from(t.dataSync()), [0.299, 0.587, 0.114, (0.299 * 10 + 0.587 * 20 + 0.114 * 30) / 255]);
  t.dispose();
});

Deno.test("imagesToTensor leaves only its result tensor behind", () => {
  const before = tf.memory().numTensors;
  const img: RgbImage = { width: 3, height: 3, data: new Uint8Array(27).fill(7) };
  const t = imagesToTensor([img, img], { height: 2, width: 2, channels: 1, range: [0, 1] });
  assert.equal(tf.memory().numTensors, before + 1);
  t.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("imagesToTensor rejects an empty list, a short image and a bad spec as invalid input", () => {
  const spec = { height: 2, width: 2, channels: 3, range: [0, 1] } as const;
  const img: RgbImage = { width: 2, height: 2, data: new Uint8Array(12) };
  rejectsSync(() => imagesToTensor([], { ...spec, range: [0, 1] }), "invalid", "invalid_input");
  rejectsSync(
    () => imagesToTensor([{ ...img, data: new Uint8Array(11) }], { ...spec, range: [0, 1] }),
    "invalid",
    "invalid_input",
  );
  rejectsSync(
    () => imagesToTensor([img], { ...spec, channels: 2 as 1, range: [0, 1] }),
    "invalid",
    "invalid_input",
  );
  rejectsSync(() => imagesToTensor([img], { ...spec, range: [1, 1] }), "invalid", "invalid_input");
  rejectsSync(() => imagesToTensor([img], { ...spec, height: 0, range: [0, 1] }), "invalid", "invalid_input");
});

Deno.test("imagesToTensor shrinks with PIL's antialiased bilinear filter (values from PIL 9.4 resize)", () => {
  // One row of 7 grey pixels to 3: each output averages about 2 x 7/3 inputs with triangle weights.
  const row = [0, 60, 120, 180, 240, 255, 30];
  const img: RgbImage = { width: 7, height: 1, data: new Uint8Array(row.flatMap((v) => [v, v, v])) };
  const t = imagesToTensor([img], { height: 1, width: 3, channels: 1, range: [0, 255] });
  assertClose(Array.from(t.dataSync()), [51.42857, 177.35294, 171.42857], 1e-3);
  t.dispose();
});

Deno.test("imagesToTensor enlarges exactly as tf.image.resizeBilinear with half-pixel centres", () => {
  // Digits (28 x 28) go up to the backbone's 96 x 96: that path is unchanged by the antialiasing.
  const data = Uint8Array.from({ length: 28 * 28 * 3 }, (_, i) => (i * 97) % 256);
  const t = imagesToTensor([{ width: 28, height: 28, data }], {
    height: 96,
    width: 96,
    channels: 3,
    range: [0, 255],
  });
  const reference = tf.tidy(() =>
    tf.image.resizeBilinear(tf.tensor3d(data, [28, 28, 3], "float32"), [96, 96], false, true)
  );
  assertClose(Array.from(t.dataSync()), Array.from(reference.dataSync()), 1e-3);
  t.dispose();
  reference.dispose();
});

// --- helpers ---------------------------------------------------------------------------------------

function assertClose(actual: number[], expected: number[], tolerance = 1e-5): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) <= tolerance, `[${i}] ${v} != ${expected[i]}`)
  );
}

/**
 * An 8-bit PNG file with the given IHDR size and colour type, the chunks `before` (complete chunks), and
 * one IDAT chunk holding `idat` as it is.
 */
function pngFile(
  width: number,
  height: number,
  colorType: number,
  idat: Uint8Array,
  before: Uint8Array[] = [],
): Uint8Array {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, colorType, 0, 0, 0], 8);
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    ...before,
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

// --- orientation, formats, bounded size ------------------------------------------------------------

const ORIENTATION = new URL("../fixtures/orientation/", import.meta.url);

/** `image` turned a quarter clockwise (`turns` = 1), half (2) or three quarters (3). */
function turned(image: RgbImage, turns: number): RgbImage {
  let { width, height, data } = image;
  for (let t = 0; t < turns; t++) {
    const out = new Uint8Array(data.length);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        // (x, y) goes to (height - 1 - y, x) in a width-`height` image.
        out.set(
          data.subarray((y * width + x) * 3, (y * width + x) * 3 + 3),
          (x * height + height - 1 - y) * 3,
        );
      }
    }
    [width, height, data] = [height, width, out];
  }
  return { width, height, data };
}

for (
  const [file, turns] of [["orientation-6.jpg", 1], ["orientation-3.jpg", 2], [
    "orientation-8.jpg",
    3,
  ]] as const
) {
  Deno.test(`a JPEG tagged by exiftool with EXIF ${file.slice(0, -4)} decodes the right way up`, async () => {
    const upright = await decodeImage(await Deno.readFile(new URL("upright.jpg", ORIENTATION)));
    const tagged = await decodeImage(await Deno.readFile(new URL(file, ORIENTATION)));
    assert.deepEqual(tagged, turned(upright, turns));
  });
}

Deno.test("a WebP tagged by exiftool with EXIF orientation 6 decodes the right way up", async () => {
  const upright = await decodeImage(await Deno.readFile(new URL("upright.webp", ORIENTATION)));
  const tagged = await decodeImage(await Deno.readFile(new URL("orientation-6.webp", ORIENTATION)));
  assert.deepEqual([upright.width, upright.height, tagged.width, tagged.height], [48, 32, 32, 48]);
  assert.deepEqual(tagged, turned(upright, 1));
});

Deno.test("WebP, GIF, AVIF and TIFF decode to the size and about the colour they hold", async () => {
  const sharp = await loadSharp();
  const source = sharp({
    create: { width: 20, height: 10, channels: 3, background: { r: 200, g: 60, b: 30 } },
  });
  const files = {
    webp: await source.clone().webp({ quality: 90 }).toBuffer(),
    gif: await source.clone().gif().toBuffer(),
    avif: await source.clone().avif({ quality: 90 }).toBuffer(),
    tiff: await source.clone().tiff().toBuffer(),
  };
  for (const [format, bytes] of Object.entries(files)) {
    const image = await decodeImage(new Uint8Array(bytes));
    assert.deepEqual([image.width, image.height], [20, 10], format);
    const centre = Array.from(image.data.subarray((5 * 20 + 10) * 3, (5 * 20 + 10) * 3 + 3));
    [200, 60, 30].forEach((v, c) => assert.ok(Math.abs(centre[c] - v) <= 12, `${format}: ${centre}`));
  }
});

Deno.test("an image longer than maxSide is shrunk to it, aspect ratio kept; a smaller one is kept", async () => {
  const sharp = await loadSharp();
  const big = new Uint8Array(
    await sharp({ create: { width: 1200, height: 800, channels: 3, background: "#808080" } }).jpeg()
      .toBuffer(),
  );
  const shrunk = await decodeImage(big, { maxSide: 300 });
  assert.deepEqual([shrunk.width, shrunk.height], [300, 200]);
  const full = await decodeImage(big, { maxSide: Infinity });
  assert.deepEqual([full.width, full.height], [1200, 800]);
  assert.deepEqual([(await decodeImage(big)).width], [DEFAULT_MAX_SIDE]);
});

Deno.test("a shrunk image averages fine stripes to grey instead of aliasing them", async () => {
  // 1-pixel black and white columns, 1024 wide: any sampling resize picks mostly one colour.
  const data = new Uint8Array(1024 * 64 * 3);
  for (let p = 0; p < 1024 * 64; p++) data.fill((p % 1024) % 2 ? 255 : 0, p * 3, p * 3 + 3);
  const image = await decodeImage(encodePng({ width: 1024, height: 64, data }), { maxSide: 96 });
  const [min, max] = [Math.min(...image.data), Math.max(...image.data)];
  assert.ok(min >= 110 && max <= 145, `${min}..${max}`);
});

/** Mean absolute difference of two images' bytes, after checking they are the same size. */
function meanAbsDifference(a: RgbImage, b: RgbImage): number {
  assert.deepEqual([a.width, a.height], [b.width, b.height]);
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i] - b.data[i]);
  return sum / a.data.length;
}

Deno.test("boundedImageFile keeps a small upright file as it is", async () => {
  const small = await Deno.readFile(new URL("upright.jpg", ORIENTATION));
  const kept = await boundedImageFile(small);
  assert.equal(kept.bytes, small);
  assert.deepEqual([kept.format, kept.width, kept.height], ["jpeg", 48, 32]);
});

Deno.test("boundedImageFile stores a turned or large JPEG as an upright, bounded JPEG within a level of it", async () => {
  const tagged = await Deno.readFile(new URL("orientation-6.jpg", ORIENTATION));
  const upright = await boundedImageFile(tagged);
  assert.deepEqual([upright.format, upright.width, upright.height], ["jpeg", 32, 48]);
  assert.ok(meanAbsDifference(await decodeImage(upright.bytes), await decodeImage(tagged)) < 1.5);
  const sharp = await loadSharp();
  const big = new Uint8Array(await sharp(tagged).resize(960, 640).jpeg().toBuffer());
  const bounded = await boundedImageFile(big, { maxSide: 120 });
  assert.deepEqual([bounded.format, bounded.width, bounded.height], ["jpeg", 120, 80]);
  const difference = meanAbsDifference(
    await decodeImage(bounded.bytes, { maxSide: 120 }),
    await decodeImage(big, { maxSide: 120 }),
  );
  assert.ok(difference < 1.5, `${difference}`);
});

Deno.test("boundedImageFile stores a large lossless image as a PNG that decodes to exactly the same pixels", async () => {
  const data = Uint8Array.from({ length: 700 * 300 * 3 }, (_, i) => (i * 31) % 251);
  const big = encodePng({ width: 700, height: 300, data });
  const bounded = await boundedImageFile(big, { maxSide: 140 });
  assert.deepEqual([bounded.format, bounded.width, bounded.height], ["png", 140, 60]);
  assert.deepEqual(
    await decodeImage(bounded.bytes, { maxSide: 140 }),
    await decodeImage(big, { maxSide: 140 }),
  );
});
