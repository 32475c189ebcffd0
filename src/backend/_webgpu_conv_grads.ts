import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "./_webgpu_dispatch.ts";

// tfjs-backend-webgpu computes a conv filter's gradient with one invocation per filter weight, each looping
// over every output position of the batch: for MobileNetV2's 1x1 convolutions (two in every block) that is a
// few thousand invocations each summing tens of thousands of products, the costliest kernel of a training
// step. A 1x1 convolution's filter gradient is a matrix product, `x^T dy` over the rows of the batch, which
// the backend's tiled (and, for long sums, split-K) matmul does far better.

type Args = {
  inputs: { x: tf.TensorInfo; dy: tf.TensorInfo };
  backend: WebGPUBackend;
  attrs: tf.Conv2DBackpropFilterAttrs;
};

/** Whether the filter gradient is a plain matrix product: 1x1, stride 1, no padding, NHWC, dilation 1. */
function isPointwise(args: Args): boolean {
  const { x, dy } = args.inputs;
  const { filterShape, strides, pad, dataFormat } = args.attrs;
  const stride = typeof strides === "number" ? [strides, strides] : strides;
  const zeroPad = pad === "valid" || pad === "same" ||
    (Array.isArray(pad) && pad.flat().every((p) => p === 0));
  return filterShape[0] === 1 && filterShape[1] === 1 && stride[0] === 1 && stride[1] === 1 && zeroPad &&
    dataFormat !== "NCHW" && x.dtype === "float32" && x.shape.length === 4 &&
    x.shape[1] === dy.shape[1] && x.shape[2] === dy.shape[2];
}

/**
 * Conv2DBackpropFilter for the `webgpu` backend: a 1x1 convolution's gradient as one BatchMatMul
 * (`[rows, Cin]^T x [rows, Cout]`), anything else by `stock` (tfjs-backend-webgpu's own kernel).
 */
export function conv2dBackpropFilter(stock: tf.KernelFunc): tf.KernelFunc {
  const batchMatMul = tf.getKernel(tf.BatchMatMul, "webgpu");
  return ((args: Args) => {
    if (!batchMatMul || !isPointwise(args)) return stock(args as unknown as Parameters<tf.KernelFunc>[0]);
    const { x, dy } = args.inputs;
    const [n, h, w, cin] = x.shape;
    const cout = dy.shape[3];
    // Views with the matmul's shapes over the same buffers (what the Reshape kernel returns, unowned).
    const a = { dataId: x.dataId, shape: [1, n * h * w, cin], dtype: x.dtype };
    const b = { dataId: dy.dataId, shape: [1, n * h * w, cout], dtype: dy.dtype };
    const product = batchMatMul.kernelFunc({
      inputs: { a, b },
      backend: args.backend,
      attrs: { transposeA: true, transposeB: false },
    }) as tf.TensorInfo;
    return { dataId: product.dataId, shape: args.attrs.filterShape, dtype: product.dtype };
  }) as unknown as tf.KernelFunc;
}
