// Training kernels for tfjs-backend-wasm, compiled to WebAssembly SIMD (with relaxed SIMD's multiply-add,
// which every Deno 2 runs) by ./build.sh and run on the wasm backend's own heap (the module imports its
// memory): batch norm with batch statistics forward and backward, ReLU6 forward and backward, and
// convolution gradients. Tensors are float32, channels last.
//
// The module has no stack, no data and no allocator of its own: every buffer, scratch included, is
// allocated by the caller on the tfjs heap and passed by address. Keep it so (build.sh checks that the
// output has no data segment and never moves the stack pointer), since the memory belongs to tfjs.

#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

// Channel ranges: conv2d_filter_grad and depthwise_filter_grad compute only channels [c0, c1) of their
// output (output channels, for conv2d_filter_grad) and write nothing outside them, so that two threads can
// share a call on one heap; [0, c) is the whole call. The other kernels share by rows (a range of rows is a
// smaller tensor at an offset), batch norm in the steps below.

// Rows summed in float32 lanes before the partial sums are added into float64 totals.
#define FLUSH_ROWS 64

static inline v128_t load(const float* p) { return wasm_v128_load(p); }
static inline void store(float* p, v128_t v) { wasm_v128_store(p, v); }
// a * b + c, one fused multiply-add where the machine has one (relaxed SIMD: V8 emits FMA on x64 with FMA3
// and on arm64, a multiply and an add elsewhere).
static inline v128_t madd(v128_t a, v128_t b, v128_t c) { return __builtin_wasm_relaxed_madd_f32x4(a, b, c); }

static void clear(float* p, int n) {
  for (int k = 0; k < n; k++) p[k] = 0.0f;
}

static void flush(float* part, double* total, int c) {
  for (int k = 0; k < c; k++) {
    total[k] += (double)part[k];
    part[k] = 0.0f;
  }
}

// y = (x - center) * scale + shift per channel, clipped to [0, 6] if relu6: centred first, so that a mean far
// from zero costs no precision.
static void centered_affine(const float* x, float* y, int rows, int c, const float* center, const float* scale,
                            const float* shift, int relu6) {
  int c4 = c & ~3;
  v128_t zero = wasm_f32x4_splat(0.0f), six = wasm_f32x4_splat(6.0f);
  for (int r = 0; r < rows; r++) {
    const float* in = x + (long)r * c;
    float* out = y + (long)r * c;
    int k = 0;
    for (; k < c4; k += 4) {
      v128_t d = wasm_f32x4_sub(load(in + k), load(center + k));
      v128_t z = madd(d, load(scale + k), load(shift + k));
      store(out + k, relu6 ? wasm_f32x4_pmin(six, wasm_f32x4_pmax(zero, z)) : z);
    }
    for (; k < c; k++) {
      float z = (in[k] - center[k]) * scale[k] + shift[k];
      out[k] = relu6 ? (z > 0.0f ? (z < 6.0f ? z : 6.0f) : 0.0f) : z;
    }
  }
}

// ---- Batch norm with batch statistics ---------------------------------------------------------------------
//
// Each direction is three steps: sums over rows into float64 totals (bn_sums, bn_grad_sums), per-channel
// coefficients from the totals (bn_statistics, bn_grad_coefficients), and a pass over the rows that applies
// them (bn_apply, bn_grad_apply). The row passes run in chunks of rows, each on whichever thread is free, and
// each chunk sums into totals of its own; the coefficients add the chunks' totals in chunk order, so results
// do not depend on which thread ran which chunk. Tensors are float32, channels last, `rows` x `c`; `part` is
// float32 scratch of 2c, `totals` float64 of 2c.

// totals [sum d, sum d^2] per channel over the rows, d = x - shift: with the shift near the mean (the caller
// passes the whole tensor's first row), sum(d^2) - sum(d)^2 / rows loses nothing to cancellation, and one
// pass gives both. Sums are additive, so row ranges' totals with the same shift add up.
//
// Each channel sums its rows in float32, in row order, over blocks of FLUSH_ROWS rows, each block's sum then
// added into the float64 total. Up to four groups of four channels keep their block sums in registers while
// the block's rows go by (a sum kept in memory would make every row wait for the previous row's store).
EXPORT(bn_sums)
void bn_sums(const float* x, int rows, int c, const float* shift, float* part, double* totals) {
  float* part_sq = part + c;
  double* total_sq = totals + c;
  int c4 = c & ~3;
  v128_t zero = wasm_f32x4_splat(0.0f);
  for (int k = 0; k < 2 * c; k++) totals[k] = 0.0;
  for (int r0 = 0; r0 < rows; r0 += FLUSH_ROWS) {
    int r1 = r0 + FLUSH_ROWS < rows ? r0 + FLUSH_ROWS : rows;
    for (int k = 0; k < c4; k += 16) {
      int groups = (c4 - k) / 4 < 4 ? (c4 - k) / 4 : 4;
      v128_t s0 = zero, s1 = zero, s2 = zero, s3 = zero, q0 = zero, q1 = zero, q2 = zero, q3 = zero;
      const float* row = x + (long)r0 * c + k;
      const float* sh = shift + k;
#define SUM(j, sj, qj)                                                                                       \
  {                                                                                                         \
    v128_t d = wasm_f32x4_sub(load(row + 4 * (j)), load(sh + 4 * (j)));                                    \
    sj = wasm_f32x4_add(sj, d);                                                                             \
    qj = madd(d, d, qj);                                                                                    \
  }
      if (groups == 4) {
        for (int r = r0; r < r1; r++, row += c) {
          SUM(0, s0, q0) SUM(1, s1, q1) SUM(2, s2, q2) SUM(3, s3, q3)
        }
      } else if (groups == 3) {
        for (int r = r0; r < r1; r++, row += c) {
          SUM(0, s0, q0) SUM(1, s1, q1) SUM(2, s2, q2)
        }
      } else if (groups == 2) {
        for (int r = r0; r < r1; r++, row += c) {
          SUM(0, s0, q0) SUM(1, s1, q1)
        }
      } else {
        for (int r = r0; r < r1; r++, row += c) SUM(0, s0, q0)
      }
#undef SUM
      // One store per group, no array: an array of vectors would need a stack, which the module must not have.
      store(part + k, s0);
      store(part_sq + k, q0);
      if (groups > 1) store(part + k + 4, s1), store(part_sq + k + 4, q1);
      if (groups > 2) store(part + k + 8, s2), store(part_sq + k + 8, q2);
      if (groups > 3) store(part + k + 12, s3), store(part_sq + k + 12, q3);
    }
    for (int k = c4; k < c; k++) {
      float sum = 0.0f, sum_sq = 0.0f;
      for (int r = r0; r < r1; r++) {
        float d = x[(long)r * c + k] - shift[k];
        sum += d;
        sum_sq += d * d;
      }
      part[k] = sum;
      part_sq[k] = sum_sq;
    }
    flush(part, totals, c);
    flush(part_sq, total_sq, c);
  }
}

static float bn_scale(float gamma, float variance, float epsilon) {
  return (float)(gamma / __builtin_sqrt((double)variance + epsilon));
}

// scale [c] = gamma / sqrt(variance + epsilon), computed from the float32 variance, as both directions use it.
EXPORT(bn_scales)
void bn_scales(int c, const float* gamma, const float* variance, float epsilon, float* scale) {
  for (int k = 0; k < c; k++) scale[k] = bn_scale(gamma[k], variance[k], epsilon);
}

// The batch's mean and (biased) variance from bn_sums' totals of `chunks` row ranges (their totals `stride`
// doubles apart, added in chunk order), `rows` rows in all around `shift`, and the affine map bn_apply takes:
// scale (bn_scales) and offset = beta.
EXPORT(bn_statistics)
void bn_statistics(int rows, int c, const float* shift, const double* totals, int chunks, int stride,
                   const float* gamma, const float* beta, float epsilon, float* mean, float* variance,
                   float* scale, float* offset) {
  double inv_rows = rows > 0 ? 1.0 / rows : 0.0;
  for (int k = 0; k < c; k++) {
    double sum = 0.0, sum_sq = 0.0;
    for (int j = 0; j < chunks; j++) {
      sum += totals[(long)j * stride + k];
      sum_sq += totals[(long)j * stride + c + k];
    }
    double d = sum * inv_rows;
    double v = sum_sq * inv_rows - d * d;
    if (v < 0.0) v = 0.0;
    mean[k] = (float)((rows > 0 ? shift[k] : 0.0f) + d);
    variance[k] = (float)v;
    scale[k] = bn_scale(gamma[k], variance[k], epsilon);
    offset[k] = beta[k];
  }
}

// y = (x - mean) * scale + offset, clipped to [0, 6] if relu6.
EXPORT(bn_apply)
void bn_apply(const float* x, float* y, int rows, int c, const float* mean, const float* scale, const float* offset,
              int relu6) {
  centered_affine(x, y, rows, c, mean, scale, offset, relu6);
}

// If relu6, the forward output was clipped to [0, 6]: dy first passes where 0 < z <= 6 (the gradient of
// tfjs-layers' relu-then-clip), z the unclipped output recomputed exactly as bn_apply computed it, from
// zscale (bn_scales) and beta.
#define MASKED(g, xc, k)                                                                                    \
  (relu6 ? wasm_v128_and(g, ({                                                                              \
    v128_t z_ = madd(xc, load(zscale + k), load(beta + k));                                                 \
    wasm_v128_and(wasm_f32x4_gt(z_, zero), wasm_f32x4_le(z_, six));                                         \
  }))                                                                                                       \
         : g)
#define MASKED1(g, xc, k) (relu6 && !((xc) * zscale[k] + beta[k] > 0.0f && (xc) * zscale[k] + beta[k] <= 6.0f) ? 0.0f : (g))

// totals [sum dy, sum dy * (x - mean)] per channel over the rows, dy masked if relu6.
EXPORT(bn_grad_sums)
void bn_grad_sums(const float* dy, const float* x, int rows, int c, const float* mean, const float* zscale,
                  const float* beta, int relu6, float* part, double* totals) {
  float* part_dyx = part + c;
  double* sum_dyx = totals + c;
  int c4 = c & ~3;
  v128_t zero = wasm_f32x4_splat(0.0f), six = wasm_f32x4_splat(6.0f);
  clear(part, 2 * c);
  for (int k = 0; k < 2 * c; k++) totals[k] = 0.0;
  for (int r = 0; r < rows; r++) {
    const float* g = dy + (long)r * c;
    const float* in = x + (long)r * c;
    int k = 0;
    for (; k < c4; k += 4) {
      v128_t xc = wasm_f32x4_sub(load(in + k), load(mean + k));
      v128_t d = MASKED(load(g + k), xc, k);
      store(part + k, wasm_f32x4_add(load(part + k), d));
      store(part_dyx + k, madd(d, xc, load(part_dyx + k)));
    }
    for (; k < c; k++) {
      float xc = in[k] - mean[k];
      float d = MASKED1(g[k], xc, k);
      part[k] += d;
      part_dyx[k] += d * xc;
    }
    if ((r + 1) % FLUSH_ROWS == 0 || r + 1 == rows) {
      flush(part, totals, c);
      flush(part_dyx, sum_dyx, c);
    }
  }
}

// With xhat = (x - mean) * inv_std and bn_grad_sums' totals of `chunks` row ranges (`stride` doubles apart,
// added in chunk order), `rows` in all: dbeta = sum(dy), dgamma = sum(dy * xhat), and the coefficients of
// dx = gamma * inv_std * (dy - dbeta / rows - xhat * dgamma / rows) = a * dy + b * (x - mean) + offset.
EXPORT(bn_grad_coefficients)
void bn_grad_coefficients(int rows, int c, const double* totals, int chunks, int stride, const float* variance,
                          const float* gamma, float epsilon, float* a, float* b, float* offset, float* dgamma,
                          float* dbeta) {
  double inv_rows = rows > 0 ? 1.0 / rows : 0.0;
  for (int k = 0; k < c; k++) {
    double sum_dy = 0.0, sum_dyx = 0.0;
    for (int j = 0; j < chunks; j++) {
      sum_dy += totals[(long)j * stride + k];
      sum_dyx += totals[(long)j * stride + c + k];
    }
    double inv_std = 1.0 / __builtin_sqrt((double)variance[k] + epsilon);
    double dg = sum_dyx * inv_std;
    double scale = gamma[k] * inv_std;
    a[k] = (float)scale;
    b[k] = (float)(-scale * dg * inv_std * inv_rows);
    offset[k] = (float)(-scale * sum_dy * inv_rows);
    dgamma[k] = (float)dg;
    dbeta[k] = (float)sum_dy;
  }
}

// dx = a * dy + b * (x - mean) + offset, dy masked if relu6.
EXPORT(bn_grad_apply)
void bn_grad_apply(const float* dy, const float* x, float* dx, int rows, int c, const float* mean,
                   const float* zscale, const float* beta, const float* a, const float* b, const float* offset,
                   int relu6) {
  int c4 = c & ~3;
  v128_t zero = wasm_f32x4_splat(0.0f), six = wasm_f32x4_splat(6.0f);
  for (int r = 0; r < rows; r++) {
    const float* g = dy + (long)r * c;
    const float* in = x + (long)r * c;
    float* out = dx + (long)r * c;
    int k = 0;
    for (; k < c4; k += 4) {
      v128_t xc = wasm_f32x4_sub(load(in + k), load(mean + k));
      v128_t d = MASKED(load(g + k), xc, k);
      store(out + k, madd(load(a + k), d, madd(load(b + k), xc, load(offset + k))));
    }
    for (; k < c; k++) {
      float xc = in[k] - mean[k];
      out[k] = a[k] * MASKED1(g[k], xc, k) + b[k] * xc + offset[k];
    }
  }
}
#undef MASKED
#undef MASKED1

EXPORT(relu6)
void relu6(const float* x, float* y, int n) {
  v128_t zero = wasm_f32x4_splat(0.0f), six = wasm_f32x4_splat(6.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) store(y + i, wasm_f32x4_pmin(six, wasm_f32x4_pmax(zero, load(x + i))));
  for (; i < n; i++) {
    float v = x[i];
    y[i] = v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
  }
}

// dx = dy where 0 < x <= 6, else 0 (the gradient tfjs-layers' relu-then-clip has).
EXPORT(relu6_grad)
void relu6_grad(const float* dy, const float* x, float* dx, int n) {
  v128_t zero = wasm_f32x4_splat(0.0f), six = wasm_f32x4_splat(6.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t v = load(x + i);
    v128_t keep = wasm_v128_and(wasm_f32x4_gt(v, zero), wasm_f32x4_le(v, six));
    store(dx + i, wasm_v128_and(load(dy + i), keep));
  }
  for (; i < n; i++) dx[i] = x[i] > 0.0f && x[i] <= 6.0f ? dy[i] : 0.0f;
}

// ---- Convolution filter gradients ------------------------------------------------------------------------
//
// Shapes, NHWC: x [n, h, w, cin], dy [n, ho, wo, cout]; output position (b, p, q) reads input
// (b, sh*p + i - top, sw*q + j - left) at filter tap (i, j). A tap's valid output rows are those whose input
// row falls inside x (the rest meet padding zeros): [first, last) from `valid_range`.

static void valid_range(int taps_offset, int stride, int in_size, int out_size, int* first, int* last) {
  // sh*p + offset in [0, in_size)  <=>  p in [ceil(-offset / sh), ceil((in_size - offset) / sh))
  int lo = taps_offset >= 0 ? 0 : (-taps_offset + stride - 1) / stride;
  int hi = in_size - taps_offset <= 0 ? 0 : (in_size - taps_offset + stride - 1) / stride;
  if (hi > out_size) hi = out_size;
  *first = lo;
  *last = hi > lo ? hi : lo;
}

// dw[ci, co] += sum over `count` positions of x[ci] * dy[co], the positions `x_step` and `dy_step` floats
// apart: a 4 x 8 block of dw in registers per pass over the positions.
static void outer_products(const float* restrict x, int x_step, const float* restrict dy, int dy_step,
                           int count, int cin, int cout, int co0, int co1, float* restrict dw) {
  int ci = 0;
  for (; ci + 4 <= cin; ci += 4) {
    int co = co0;
    for (; co + 8 <= co1; co += 8) {
      float* d = dw + ci * cout + co;
      v128_t a0 = load(d), b0 = load(d + 4), a1 = load(d + cout), b1 = load(d + cout + 4);
      v128_t a2 = load(d + 2 * cout), b2 = load(d + 2 * cout + 4);
      v128_t a3 = load(d + 3 * cout), b3 = load(d + 3 * cout + 4);
      const float* xp = x + ci;
      const float* gp = dy + co;
      for (int k = 0; k < count; k++, xp += x_step, gp += dy_step) {
        v128_t g0 = load(gp), g1 = load(gp + 4);
        v128_t s = wasm_v128_load32_splat(xp);
        a0 = madd(s, g0, a0);
        b0 = madd(s, g1, b0);
        s = wasm_v128_load32_splat(xp + 1);
        a1 = madd(s, g0, a1);
        b1 = madd(s, g1, b1);
        s = wasm_v128_load32_splat(xp + 2);
        a2 = madd(s, g0, a2);
        b2 = madd(s, g1, b2);
        s = wasm_v128_load32_splat(xp + 3);
        a3 = madd(s, g0, a3);
        b3 = madd(s, g1, b3);
      }
      store(d, a0), store(d + 4, b0), store(d + cout, a1), store(d + cout + 4, b1);
      store(d + 2 * cout, a2), store(d + 2 * cout + 4, b2);
      store(d + 3 * cout, a3), store(d + 3 * cout + 4, b3);
    }
    for (; co < co1; co++) {
      for (int r = 0; r < 4; r++) {
        float acc = dw[(ci + r) * cout + co];
        for (int k = 0; k < count; k++) acc += x[k * x_step + ci + r] * dy[k * dy_step + co];
        dw[(ci + r) * cout + co] = acc;
      }
    }
  }
  for (; ci < cin; ci++) {
    int co = co0;
    for (; co + 8 <= co1; co += 8) {
      float* d = dw + ci * cout + co;
      v128_t a = load(d), b = load(d + 4);
      const float* xp = x + ci;
      const float* gp = dy + co;
      for (int k = 0; k < count; k++, xp += x_step, gp += dy_step) {
        v128_t s = wasm_v128_load32_splat(xp);
        a = madd(s, load(gp), a);
        b = madd(s, load(gp + 4), b);
      }
      store(d, a), store(d + 4, b);
    }
    for (; co < co1; co++) {
      float acc = dw[ci * cout + co];
      for (int k = 0; k < count; k++) acc += x[k * x_step + ci] * dy[k * dy_step + co];
      dw[ci * cout + co] = acc;
    }
  }
}

// Positions per pass of `outer_products` when they are contiguous (a 1x1 stride-1 unpadded convolution).
#define SEGMENT 64

// The input patches of output row p of image b: patches [wo, kh * kw * cin], in dw's (i, j, ci) order, zero
// where a tap meets padding.
static void row_patches(const float* x, float* patches, int b, int p, int h, int w, int cin, int wo, int kh,
                        int kw, int sh, int sw, int top, int left) {
  int taps = kh * kw * cin;
  for (int q = 0; q < wo; q++) {
    for (int i = 0; i < kh; i++) {
      int r = sh * p + i - top;
      for (int j = 0; j < kw; j++) {
        int s = sw * q + j - left;
        float* out = patches + (long)q * taps + (i * kw + j) * cin;
        const float* in = x + (((long)b * h + r) * w + s) * cin;
        int inside = r >= 0 && r < h && s >= 0 && s < w;
        for (int ci = 0; ci < cin; ci++) out[ci] = inside ? in[ci] : 0.0f;
      }
    }
  }
}

// Conv2DBackpropFilter: dw [kh, kw, cin, cout] = sum over positions of the tap's input times dy. A 1x1
// stride-1 unpadded filter reads x as it lies; any other goes row by row through `patches` (scratch of
// wo * kh * kw * cin floats, unused by the 1x1 case): the row's input patches gathered, then one pass of outer
// products over all taps at once (a stem's 3 input channels would leave most of a 4 x 8 block empty tap by
// tap).
EXPORT(conv2d_filter_grad)
void conv2d_filter_grad(const float* x, const float* dy, float* dw, int n, int h, int w, int cin, int ho, int wo,
                        int kh, int kw, int sh, int sw, int top, int left, int cout, float* patches, int co0,
                        int co1) {
  for (int t = 0; t < kh * kw * cin; t++) {
    for (int co = co0; co < co1; co++) dw[(long)t * cout + co] = 0.0f;
  }
  if (kh == 1 && kw == 1 && sh == 1 && sw == 1 && top == 0 && left == 0 && h == ho && w == wo) {
    long positions = (long)n * ho * wo;
    for (long p = 0; p < positions; p += SEGMENT) {
      int count = positions - p < SEGMENT ? (int)(positions - p) : SEGMENT;
      outer_products(x + p * cin, cin, dy + p * cout, cout, count, cin, cout, co0, co1, dw);
    }
    return;
  }
  int taps = kh * kw * cin;
  for (int b = 0; b < n; b++) {
    for (int p = 0; p < ho; p++) {
      row_patches(x, patches, b, p, h, w, cin, wo, kh, kw, sh, sw, top, left);
      outer_products(patches, taps, dy + ((long)b * ho + p) * wo * cout, cout, wo, taps, cout, co0, co1, dw);
    }
  }
}

// The output columns [q0[j], q1[j]) where tap column j of a 3-wide filter meets the input row, and the
// interior [lo, hi) where all three do.
static void tap_columns3(int w, int wo, int sw, int left, int q0[3], int q1[3], int* lo, int* hi) {
  for (int j = 0; j < 3; j++) valid_range(j - left, sw, w, wo, &q0[j], &q1[j]);
  *lo = q0[0] > q0[1] ? q0[0] : q0[1];
  *hi = q1[0] < q1[1] ? q1[0] : q1[1];
  if (q0[2] > *lo) *lo = q0[2];
  if (q1[2] < *hi) *hi = q1[2];
  if (*hi < *lo) *hi = *lo;
}

// One row of a 3-wide depthwise filter's gradient: taps [3, c] += the sums over one output row `grow`
// ([wo, c]) of dy times the input row `xrow` ([w, c]) at each tap's offset. Four channels at a time, the
// three taps' sums stay in registers over the row: positions where every tap meets the input first, then
// each tap's own edge positions.
static void depthwise_row3(const float* restrict xrow, const float* restrict grow, float* restrict taps, int w,
                           int c, int wo, int sw, int left, int c0, int c1) {
  int q0[3], q1[3], lo, hi;
  tap_columns3(w, wo, sw, left, q0, q1, &lo, &hi);
  int k = c0;
  v128_t zero = wasm_f32x4_splat(0.0f);
#define X_AT(q, j) (xrow + ((long)sw * (q) + (j) - left) * c + k)
#define EDGES(j, acc)                                                                                        \
  for (int q = q0[j]; q < q1[j] && q < lo; q++) acc = madd(load(X_AT(q, j)), load(grow + (long)q * c + k), acc); \
  for (int q = q0[j] > hi ? q0[j] : hi; q < q1[j]; q++) acc = madd(load(X_AT(q, j)), load(grow + (long)q * c + k), acc);
  for (; k + 4 <= c1; k += 4) {
    v128_t a0 = zero, a1 = zero, a2 = zero;
    const float* xp = X_AT(lo, 0);
    const float* gp = grow + (long)lo * c + k;
    for (int q = lo; q < hi; q++, xp += (long)sw * c, gp += c) {
      v128_t g = load(gp);
      a0 = madd(load(xp), g, a0);
      a1 = madd(load(xp + c), g, a1);
      a2 = madd(load(xp + 2 * c), g, a2);
    }
    EDGES(0, a0)
    EDGES(1, a1)
    EDGES(2, a2)
    store(taps + k, wasm_f32x4_add(load(taps + k), a0));
    store(taps + c + k, wasm_f32x4_add(load(taps + c + k), a1));
    store(taps + 2 * c + k, wasm_f32x4_add(load(taps + 2 * c + k), a2));
  }
#undef EDGES
#undef X_AT
  for (; k < c1; k++) {
    for (int j = 0; j < 3; j++) {
      float acc = 0.0f;
      for (int q = q0[j]; q < q1[j]; q++) acc += xrow[((long)sw * q + j - left) * c + k] * grow[(long)q * c + k];
      taps[j * c + k] += acc;
    }
  }
}

// One output row of a 3x3 depthwise filter's gradient where all three input rows it meets lie inside x:
// taps [3, 3, c] += the sums over the output row `grow` ([wo, c]) of dy times input rows `x0`, `x1`, `x2`
// ([w, c] each) at each tap's offset. Four channels at a time, the nine taps' sums in registers over the row
// (`depthwise_row3`, one input row at a time, loads dy three times and flushes its sums three times).
static void depthwise_row3x3(const float* restrict x0, const float* restrict x1, const float* restrict x2,
                             const float* restrict grow, float* restrict taps, int w, int c, int wo, int sw,
                             int left, int c0, int c1) {
  int q0[3], q1[3], lo, hi;
  tap_columns3(w, wo, sw, left, q0, q1, &lo, &hi);
  const float* rows[3] = {x0, x1, x2};
  long step = (long)sw * c;
  int k = c0;
  v128_t zero = wasm_f32x4_splat(0.0f);
#define X_AT(i, q, j) (rows[i] + ((long)sw * (q) + (j) - left) * c + k)
#define EDGES(i, j, acc)                                                                                    \
  for (int q = q0[j]; q < q1[j] && q < lo; q++) acc = madd(load(X_AT(i, q, j)), load(grow + (long)q * c + k), acc); \
  for (int q = q0[j] > hi ? q0[j] : hi; q < q1[j]; q++) acc = madd(load(X_AT(i, q, j)), load(grow + (long)q * c + k), acc);
#define FLUSH(i, j, acc) store(taps + ((i) * 3 + (j)) * c + k, wasm_f32x4_add(load(taps + ((i) * 3 + (j)) * c + k), acc));
  for (; k + 4 <= c1; k += 4) {
    v128_t a00 = zero, a01 = zero, a02 = zero, a10 = zero, a11 = zero, a12 = zero, a20 = zero, a21 = zero,
           a22 = zero;
    const float* p0 = X_AT(0, lo, 0);
    const float* p1 = X_AT(1, lo, 0);
    const float* p2 = X_AT(2, lo, 0);
    const float* gp = grow + (long)lo * c + k;
    for (int q = lo; q < hi; q++, p0 += step, p1 += step, p2 += step, gp += c) {
      v128_t g = load(gp);
      a00 = madd(load(p0), g, a00);
      a01 = madd(load(p0 + c), g, a01);
      a02 = madd(load(p0 + 2 * c), g, a02);
      a10 = madd(load(p1), g, a10);
      a11 = madd(load(p1 + c), g, a11);
      a12 = madd(load(p1 + 2 * c), g, a12);
      a20 = madd(load(p2), g, a20);
      a21 = madd(load(p2 + c), g, a21);
      a22 = madd(load(p2 + 2 * c), g, a22);
    }
    EDGES(0, 0, a00) EDGES(0, 1, a01) EDGES(0, 2, a02)
    EDGES(1, 0, a10) EDGES(1, 1, a11) EDGES(1, 2, a12)
    EDGES(2, 0, a20) EDGES(2, 1, a21) EDGES(2, 2, a22)
    FLUSH(0, 0, a00) FLUSH(0, 1, a01) FLUSH(0, 2, a02)
    FLUSH(1, 0, a10) FLUSH(1, 1, a11) FLUSH(1, 2, a12)
    FLUSH(2, 0, a20) FLUSH(2, 1, a21) FLUSH(2, 2, a22)
  }
#undef FLUSH
#undef EDGES
#undef X_AT
  // The channels past the last group of four, one input row at a time.
  if (k < c1) {
    for (int i = 0; i < 3; i++) depthwise_row3(rows[i], grow, taps + i * 3 * c, w, c, wo, sw, left, k, c1);
  }
}

// DepthwiseConv2dNativeBackpropFilter (channel multiplier 1): dw [kh, kw, c] = sum over positions of the
// tap's input times dy, channel by channel. 3-wide filters go output row by output row: a 3x3 filter whose
// three input rows lie inside x all at once (`depthwise_row3x3`), else one input row at a time
// (`depthwise_row3`); others tap by tap.
EXPORT(depthwise_filter_grad)
void depthwise_filter_grad(const float* x, const float* dy, float* dw, int n, int h, int w, int c, int ho, int wo,
                           int kh, int kw, int sh, int sw, int top, int left, int c0, int c1) {
  for (int t = 0; t < kh * kw; t++) {
    for (int k = c0; k < c1; k++) dw[t * c + k] = 0.0f;
  }
  if (kw == 3) {
    // Output row by output row, so that dy's row and the input rows it meets are read from memory once.
    for (int b = 0; b < n; b++) {
      for (int p = 0; p < ho; p++) {
        const float* grow = dy + ((long)b * ho + p) * wo * c;
        int r0 = sh * p - top;
        if (kh == 3 && r0 >= 0 && r0 + 2 < h) {
          const float* x0 = x + ((long)b * h + r0) * w * c;
          depthwise_row3x3(x0, x0 + (long)w * c, x0 + 2L * w * c, grow, dw, w, c, wo, sw, left, c0, c1);
          continue;
        }
        for (int i = 0; i < kh; i++) {
          int r = sh * p + i - top;
          if (r < 0 || r >= h) continue;
          depthwise_row3(x + ((long)b * h + r) * w * c, grow, dw + i * 3 * c, w, c, wo, sw, left, c0, c1);
        }
      }
    }
    return;
  }
  for (int i = 0; i < kh; i++) {
    int p0, p1;
    valid_range(i - top, sh, h, ho, &p0, &p1);
    for (int j = 0; j < kw; j++) {
      int q0, q1;
      valid_range(j - left, sw, w, wo, &q0, &q1);
      float* restrict tap = dw + (i * kw + j) * c;
      for (int b = 0; b < n; b++) {
        for (int p = p0; p < p1; p++) {
          for (int q = q0; q < q1; q++) {
            const float* restrict xs = x + (((long)b * h + sh * p + i - top) * w + sw * q + j - left) * c;
            const float* restrict gs = dy + (((long)b * ho + p) * wo + q) * c;
            int k = c0;
            for (; k + 4 <= c1; k += 4) store(tap + k, madd(load(xs + k), load(gs + k), load(tap + k)));
            for (; k < c1; k++) tap[k] += xs[k] * gs[k];
          }
        }
      }
    }
  }
}

// DepthwiseConv2dNativeBackpropInput (channel multiplier 1) for strides above 1, where a convolution of the
// stride-dilated dy would spend most of its work on zeros: dx [n, h, w, c] gathers, at each input position,
// the taps whose output position it feeds: input row r meets tap i from output row (r + top - i) / sh when
// that divides evenly.
EXPORT(depthwise_input_grad)
void depthwise_input_grad(const float* dy, const float* filter, float* dx, int n, int h, int w, int c, int ho,
                          int wo, int kh, int kw, int sh, int sw, int top, int left) {
  int c4 = c & ~3;
  for (int b = 0; b < n; b++) {
    for (int r = 0; r < h; r++) {
      for (int s = 0; s < w; s++) {
        float* restrict out = dx + (((long)b * h + r) * w + s) * c;
        int k = 0;
        for (; k < c; k++) out[k] = 0.0f;
        for (int i = 0; i < kh; i++) {
          int rp = r + top - i;
          if (rp < 0 || rp % sh != 0 || rp / sh >= ho) continue;
          for (int j = 0; j < kw; j++) {
            int sq = s + left - j;
            if (sq < 0 || sq % sw != 0 || sq / sw >= wo) continue;
            const float* restrict g = dy + (((long)b * ho + rp / sh) * wo + sq / sw) * c;
            const float* restrict f = filter + (i * kw + j) * c;
            for (k = 0; k < c4; k += 4) store(out + k, madd(load(g + k), load(f + k), load(out + k)));
            for (; k < c; k++) out[k] += g[k] * f[k];
          }
        }
      }
    }
  }
}

// Batch norm with given statistics (FusedBatchNorm, eval mode): y = (x - mean) / sqrt(variance + epsilon) *
// scale + offset per channel, one pass; scale and offset may be absent (has_scale, has_offset = 0).
// Scratch: 8 * c bytes.
EXPORT(bn_inference)
void bn_inference(const float* x, float* y, int rows, int c, const float* mean, const float* variance,
                  const float* scale, int has_scale, const float* offset, int has_offset, float epsilon,
                  void* scratch) {
  float* a = (float*)scratch;
  float* b = a + c;
  for (int k = 0; k < c; k++) {
    a[k] = (float)((has_scale ? scale[k] : 1.0) / __builtin_sqrt((double)variance[k] + epsilon));
    b[k] = has_offset ? offset[k] : 0.0f;
  }
  centered_affine(x, y, rows, c, mean, a, b, 0);
}
