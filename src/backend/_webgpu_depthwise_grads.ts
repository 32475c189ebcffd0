import * as tf from "@tensorflow/tfjs";
import { dispatch, elementwiseGroups, output, type WebGPUBackend } from "./_webgpu_dispatch.ts";

// tfjs-backend-webgpu's depthwise input gradient walks every filter tap of every input element with float
// division and fract() to find the taps that reach it, one channel per invocation: in a MobileNetV2 training
// step it is the costliest kernel on the software adapter. This one takes four channels per invocation as
// vec4 loads and finds the reaching taps with integer arithmetic.

type Args = {
  inputs: { dy: tf.TensorInfo; filter: tf.TensorInfo };
  backend: WebGPUBackend;
  attrs: tf.DepthwiseConv2dNativeBackpropInputAttrs;
};

const INPUT_GRAD = `
struct U { n: u32, inH: i32, inW: i32, outH: i32, outW: i32, c4: i32, kH: i32, kW: i32, strideH: i32,
  strideW: i32, padTop: i32, padLeft: i32 }
@group(0) @binding(0) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dx: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  for (var i = id.x; i < u.n; i = i + groups.x * 256u) {
    let k = i32(i);
    let c = k % u.c4;
    let pos = k / u.c4;
    let ix = pos % u.inW;
    let iy = (pos / u.inW) % u.inH;
    let b = pos / (u.inW * u.inH);
    var acc = vec4<f32>(0.0);
    for (var kh = 0; kh < u.kH; kh = kh + 1) {
      let ty = iy + u.padTop - kh;
      if (ty < 0 || ty % u.strideH != 0) { continue; }
      let oy = ty / u.strideH;
      if (oy >= u.outH) { continue; }
      for (var kw = 0; kw < u.kW; kw = kw + 1) {
        let tx = ix + u.padLeft - kw;
        if (tx < 0 || tx % u.strideW != 0) { continue; }
        let ox = tx / u.strideW;
        if (ox >= u.outW) { continue; }
        acc = acc + dy[((b * u.outH + oy) * u.outW + ox) * u.c4 + c] * w[(kh * u.kW + kw) * u.c4 + c];
      }
    }
    dx[i] = acc;
  }
}`;

/**
 * DepthwiseConv2dNativeBackpropInput for the `webgpu` backend, for NHWC, channel multiplier 1, dilation 1
 * and a channel count divisible by 4 (every depthwise layer of MobileNetV2); anything else by `stock`.
 */
export function depthwiseBackpropInput(stock: tf.KernelFunc): tf.KernelFunc {
  return ((args: Args) => {
    const { dy, filter } = args.inputs;
    const { strides, pad, dimRoundingMode, inputShape, dilations } = args.attrs;
    const [kH, kW, c, multiplier] = filter.shape;
    const dilated = dilations !== undefined &&
      (Array.isArray(dilations) ? dilations.some((d) => d !== 1) : dilations !== 1);
    if (multiplier !== 1 || c % 4 !== 0 || dilated || dy.dtype !== "float32" || inputShape.length !== 4) {
      return stock(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const info = tf.backend_util.computeConv2DInfo(
      inputShape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      strides,
      1,
      pad,
      dimRoundingMode,
      true,
    );
    const dx = output(args.backend, inputShape);
    const n = inputShape.reduce((a, b) => a * b, 1) / 4;
    if (n > 0) {
      dispatch(
        args.backend,
        INPUT_GRAD,
        [dy, filter],
        [dx],
        [
          { u32: n },
          ...[
            info.inHeight,
            info.inWidth,
            info.outHeight,
            info.outWidth,
            c / 4,
            kH,
            kW,
            info.strideHeight,
            info.strideWidth,
            info.padInfo.top,
            info.padInfo.left,
          ].map((v) => ({ i32: v })),
        ],
        elementwiseGroups(n),
        "DepthwiseConv2dNativeBackpropInput",
      );
    }
    return dx;
  }) as unknown as tf.KernelFunc;
}
