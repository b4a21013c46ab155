// conv3d as an implicit GEMM: out[co, p] = sum_k w[co, k] * im2col(x)[k, p] + bias[co], with
// p = (n, ot, oh, ow) and k = (ci, kt, kh, kw); the im2col matrix is never materialized.
// 64x64 output tiles, K steps of 16, 256 threads with 4x4 f32 accumulators each.
#include "common.cuh"

struct ConvArgs {
  int64_t N, Ci, T, H, W, Co, KT, KH, KW, OT, OH, OW;
  int st, sh, sw, pt, ph, pw;
};

__global__ void __launch_bounds__(256) kConv3d(const void* x, const void* w, const void* bias, void* y, int dt, ConvArgs c) {
  __shared__ float As[16][64 + 4];
  __shared__ float Bs[16][64 + 4];
  const int64_t P = c.N * c.OT * c.OH * c.OW, K = c.Ci * c.KT * c.KH * c.KW, kvol = c.KT * c.KH * c.KW;
  const int64_t p0 = (int64_t)blockIdx.x * 64, m0 = (int64_t)blockIdx.y * 64;
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  // each thread loads 4 elements of each tile: column/row index fixed, k varies
  const int lcol = threadIdx.x & 63, lk = threadIdx.x >> 6;  // lk in 0..3, k = lk + 4*e
  // decompose this thread's B column once
  const int64_t p = p0 + lcol;
  int64_t pn = 0, pot = 0, poh = 0, pow_ = 0;
  if (p < P) {
    int64_t r = p;
    pow_ = r % c.OW; r /= c.OW;
    poh = r % c.OH; r /= c.OH;
    pot = r % c.OT; pn = r / c.OT;
  }
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += 16) {
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int kk = lk + 4 * e;
      const int64_t k = k0 + kk;
      // A: weights (Co, K) row-major
      const int64_t m = m0 + lcol;
      As[kk][lcol] = (m < c.Co && k < K) ? ld<float>(w, dt, m * K + k) : 0.f;
      float bv = 0.f;
      if (p < P && k < K) {
        const int64_t ci = k / kvol, rem = k % kvol;
        const int64_t kt = rem / (c.KH * c.KW), kh = (rem / c.KW) % c.KH, kw = rem % c.KW;
        const int64_t it = pot * c.st + kt - c.pt, ih = poh * c.sh + kh - c.ph, iw = pow_ * c.sw + kw - c.pw;
        if (it >= 0 && it < c.T && ih >= 0 && ih < c.H && iw >= 0 && iw < c.W)
          bv = ld<float>(x, dt, (((pn * c.Ci + ci) * c.T + it) * c.H + ih) * c.W + iw);
      }
      Bs[kk][lcol] = bv;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 16; kk++) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; i++) av[i] = As[kk][ty * 4 + i], bv[i] = Bs[kk][tx * 4 + i];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }
  const int64_t plane = c.OT * c.OH * c.OW;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int64_t m = m0 + ty * 4 + i;
    if (m >= c.Co) continue;
    const float bb = bias ? ld<float>(bias, dt, m) : 0.f;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int64_t pp = p0 + tx * 4 + j;
      if (pp >= P) continue;
      const int64_t n = pp / plane, q = pp % plane;
      st<float>(y, dt, (n * c.Co + m) * plane + q, acc[i][j] + bb);
    }
  }
}

void launchConv3d(const void* x, const void* w, const void* b, void* y, int dt, const int64_t* xs, const int64_t* ws, const int64_t* os, const int* stride, const int* pad) {
  ConvArgs c{xs[0], xs[1], xs[2], xs[3], xs[4], ws[0], ws[2], ws[3], ws[4], os[2], os[3], os[4], stride[0], stride[1], stride[2], pad[0], pad[1], pad[2]};
  const int64_t P = c.N * c.OT * c.OH * c.OW;
  if (P == 0 || c.Co == 0) return;
  dim3 grid((unsigned)((P + 63) / 64), (unsigned)((c.Co + 63) / 64));
  kConv3d<<<grid, 256, 0, g_stream>>>(x, w, b, y, dt, c);
  checkLaunch("conv3d");
}
