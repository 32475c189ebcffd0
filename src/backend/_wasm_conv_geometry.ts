import * as tf from "@tensorflow/tfjs";
import { view, type WasmScratch } from "./_wasm_scratch.ts";

/** Padding as the conv kernels accept it: `"same"`, `"valid"`, a number, or explicit NHWC pairs. */
export type ConvPad = "same" | "valid" | number | [
  [number, number],
  [number, number],
  [number, number],
  [number, number],
];

/** The attributes every conv backprop kernel shares. */
export interface ConvGradAttrs {
  strides: number | [number, number];
  pad: ConvPad;
  dimRoundingMode?: "floor" | "round" | "ceil";
  dataFormat?: "NHWC" | "NCHW";
  dilations?: number | [number, number];
}

/**
 * The geometry of the forward convolution a gradient belongs to, checked for what the composed kernels
 * support: rank-4 NHWC, dilation 1. `inShape` is the forward input `[N, H, W, Cin]`, `filterShape` the
 * filter (`[kh, kw, Cin, Cout]`, or `[kh, kw, C, multiplier]` when depthwise).
 */
export function convGeometry(
  kernel: string,
  inShape: number[],
  filterShape: number[],
  attrs: ConvGradAttrs,
  depthwise: boolean,
): tf.backend_util.Conv2DInfo {
  if (inShape.length !== 4 || filterShape.length !== 4) {
    throw new Error(
      `${kernel} (wasm training): expected a rank-4 input and filter, got input [${inShape}] and filter [${filterShape}]`,
    );
  }
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== "NHWC") {
    throw new Error(
      `${kernel} (wasm training): only NHWC is supported, got dataFormat '${attrs.dataFormat}'`,
    );
  }
  const dilations = attrs.dilations ?? 1;
  if (!tf.backend_util.tupleValuesAreOne(dilations as number | number[])) {
    throw new Error(
      `${kernel} (wasm training): only dilations of 1 are supported, got ${JSON.stringify(dilations)}`,
    );
  }
  const info = tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    depthwise,
    "channelsLast",
  );
  if (depthwise && filterShape[3] !== 1) {
    throw new Error(
      `${kernel} (wasm training): only channel multiplier 1 is supported, got filter [${filterShape}]`,
    );
  }
  return info;
}

/** Checks `dy` against the output shape of the forward convolution. */
export function checkDy(kernel: string, dy: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): void {
  const want = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  if (dy.shape.length !== 4 || dy.shape.some((d, i) => d !== want[i])) {
    throw new Error(
      `${kernel} (wasm training): dy must be [${want}] for this convolution, got [${dy.shape}]`,
    );
  }
}

/**
 * `dy` `[N, Ho, Wo, C]` with `sh - 1` zero rows after every row and `sw - 1` zero columns after every
 * column: `[N, Ho*sh, Wo*sw, C]`. A strided convolution's input gradient is a stride-1 convolution over it.
 */
export function dilate(s: WasmScratch, dy: tf.TensorInfo, sh: number, sw: number): tf.TensorInfo {
  if (sh === 1 && sw === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const padded = s.run(tf.PadV2, { x: view(dy, [n, h, 1, w, 1, c]) }, {
    paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]],
    constantValue: 0,
  });
  return view(padded, [n, h * sh, w * sw, c]);
}

/**
 * The input gradient of a convolution as a stride-1 convolution (`conv`: Conv2D or DepthwiseConv2dNative) of
 * the stride-dilated `dy` `[N, Ho, Wo, Cout]` with `flipped`, the forward filter reversed in both spatial axes
 * (and, for Conv2D, with its channel axes swapped). Returns `[N, H, W, Cin]`.
 */
export function transposedConv(
  s: WasmScratch,
  conv: string,
  dy: tf.TensorInfo,
  flipped: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, inHeight, inWidth } = info;
  let d = dilate(s, dy, sh, sw);
  // Padding of the dilated dy that makes a stride-1 correlation land on the forward input's grid.
  let top = kh - 1 - info.padInfo.top;
  let left = kw - 1 - info.padInfo.left;
  let bottom = inHeight + info.padInfo.top - d.shape[1];
  let right = inWidth + info.padInfo.left - d.shape[2];
  if (top < 0 || left < 0 || bottom < 0 || right < 0) {
    // Negative padding is a crop: padding wider than the filter, or rows the forward pass never reached.
    const [n, h, w, c] = d.shape;
    const cropTop = Math.max(0, -top), cropLeft = Math.max(0, -left);
    d = s.run(tf.Slice, { x: d }, {
      begin: [0, cropTop, cropLeft, 0],
      size: [n, h - cropTop - Math.max(0, -bottom), w - cropLeft - Math.max(0, -right), c],
    });
    [top, left, bottom, right] = [top, left, bottom, right].map((p) => Math.max(0, p));
  }
  const pad = top === 0 && left === 0 && bottom === 0 && right === 0
    ? "valid"
    : [[0, 0], [top, bottom], [left, right], [0, 0]];
  return s.run(conv, { x: d, filter: flipped }, {
    strides: [1, 1],
    pad,
    dilations: [1, 1],
    dataFormat: "NHWC",
  });
}
