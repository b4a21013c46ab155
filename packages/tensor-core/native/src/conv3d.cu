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

// ---- im2col + cuBLASLt path (the default; the kernel above is the fallback when the column buffer cannot be had)
// 32-bit index math (int64 division is slow on the GPU); rows K..Kp-1 of the column block are the bias row
// (ones) and zero padding, so a weight matrix extended with a bias column adds the bias inside the GEMM
// (f32 accumulation, one rounding).
__global__ void kIm2col(const void* __restrict__ x, void* __restrict__ col, int dt, ConvArgs c, int64_t n, int p0, int pc, int K, int Kp) {
  // grid: x over output positions, y over input channels; each thread walks its channel's kT*kH*kW rows,
  // so the position is decomposed once and the kernel offsets are loop counters
  const int ci = blockIdx.y, q = blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= pc) return;
  const int OW = (int)c.OW, OHW = (int)(c.OH * c.OW), T = (int)c.T, H = (int)c.H, W = (int)c.W;
  const int p = p0 + q, ot = p / OHW, r = p - ot * OHW, oh = r / OW, ow = r - oh * OW;
  const int t0 = ot * c.st - c.pt, h0 = oh * c.sh - c.ph, w0 = ow * c.sw - c.pw;
  const int64_t xb = (n * c.Ci + ci) * c.T * c.H * c.W;
  int64_t o = (int64_t)ci * c.KT * c.KH * c.KW * pc + q;
  for (int kt = 0; kt < (int)c.KT; kt++) {
    const int it = t0 + kt;
    const bool tin = it >= 0 && it < T;
    for (int kh = 0; kh < (int)c.KH; kh++) {
      const int ih = h0 + kh;
      const bool hin = tin && ih >= 0 && ih < H;
      const int64_t rowb = xb + ((int64_t)it * H + ih) * W;
      for (int kw = 0; kw < (int)c.KW; kw++, o += pc) {
        const int iw = w0 + kw;
        st<float>(col, dt, o, hin && iw >= 0 && iw < W ? ld<float>(x, dt, rowb + iw) : 0.f);
      }
    }
  }
  if (ci == 0)  // the bias row of ones and the zero padding rows
    for (int k = K; k < Kp; k++) st<float>(col, dt, (int64_t)k * pc + q, k == K ? 1.f : 0.f);
}
/** W' (Co, Kp) = [W | bias | 0...] so that W' @ [col; 1; 0...] = W @ col + bias. */
__global__ void kExtendWeight(const void* w, const void* b, void* w2, int dt, int64_t Co, int64_t K, int64_t Kp) {
  GRID_STRIDE(i, Co * Kp) {
    const int64_t m = i / Kp, k = i % Kp;
    st<float>(w2, dt, i, k < K ? ld<float>(w, dt, m * K + k) : k == K ? ld<float>(b, dt, m) : 0.f);
  }
}
void launchExtendWeight(const void* w, const void* b, void* w2, int dt, int64_t Co, int64_t K, int64_t Kp) {
  kExtendWeight<<<gridFor(Co * Kp), 256, 0, g_stream>>>(w, b, w2, dt, Co, K, Kp);
  checkLaunch("conv weight+bias");
}
void launchIm2col(const void* x, void* col, int dt, const int64_t* xs, const int64_t* ws, const int64_t* os, const int* stride, const int* pad, int64_t n, int64_t p0, int64_t pc, int64_t Kp) {
  ConvArgs c{xs[0], xs[1], xs[2], xs[3], xs[4], ws[0], ws[2], ws[3], ws[4], os[2], os[3], os[4], stride[0], stride[1], stride[2], pad[0], pad[1], pad[2]};
  const int64_t K = c.Ci * c.KT * c.KH * c.KW, total = Kp * pc;
  if (total == 0) return;
  if (c.Ci > 65535) throw std::runtime_error("conv3d: more than 65535 input channels is not supported on CUDA");
  dim3 grid((unsigned)((pc + 255) / 256), (unsigned)c.Ci);
  kIm2col<<<grid, 256, 0, g_stream>>>(x, col, dt, c, n, (int)p0, (int)pc, (int)K, (int)Kp);
  checkLaunch("im2col");
}
__global__ void kChannelBias(void* y, const void* b, int dt, int64_t C, int64_t plane, int64_t total) {
  GRID_STRIDE(i, total) st<float>(y, dt, i, ld<float>(y, dt, i) + ld<float>(b, dt, (i / plane) % C));
}
void launchChannelBias(void* y, const void* b, int dt, int64_t N, int64_t C, int64_t plane) {
  const int64_t total = N * C * plane;
  if (total == 0) return;
  kChannelBias<<<gridFor(total), 256, 0, g_stream>>>(y, b, dt, C, plane, total);
  checkLaunch("conv bias");
}

// y[n][c][:] = b[c]: the cuDNN path writes the bias first and lets the convolution blend onto it (beta = 1), so the
// sum is taken in its f32 accumulator and rounded once
__global__ void kBiasFill(void* __restrict__ y, const void* __restrict__ b, int dt, int64_t co, int64_t plane, int64_t total) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
    st<float>(y, dt, i, ld<float>(b, dt, (i / plane) % co));
}
void launchBiasFill(void* y, const void* b, int dt, int64_t n, int64_t co, int64_t plane) {
  const int64_t total = n * co * plane;
  if (!total) return;
  kBiasFill<<<(unsigned)std::min<int64_t>((total + 255) / 256, 65535), 256, 0, g_stream>>>(y, b, dt, co, plane, total);
  checkLaunch("bias fill");
}
