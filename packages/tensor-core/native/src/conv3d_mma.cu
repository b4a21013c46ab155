// conv3d as an implicit GEMM on tensor cores (sm_80+, bf16/f16): out[co, p] = sum_k W[co, k] * col[k, p] + b[co],
// the im2col column tile gathered straight into shared memory. CTA tile 128 (Co) x 128 (positions) x 32 (k),
// 8 warps of 64 x 32, mma.sync m16n8k16 with f32 accumulators; one rounding at the end (bias included).
#include "common.cuh"
#include <cuda_bf16.h>

namespace {
constexpr int CM = 128, CN = 128, CK = 32, LDS = CK + 8;

struct ConvMmaArgs {
  int64_t N, Ci, T, H, W, Co, KT, KH, KW, OT, OH, OW;
  int st, sh, sw, pt, ph, pw;
};

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
template <bool BF16>
__device__ __forceinline__ void mma(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  if constexpr (BF16)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void ldsm4(uint32_t* r, const void* p) {
  const uint32_t addr = (uint32_t)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
#endif

template <bool BF16>
__global__ void __launch_bounds__(256) kConvMma(const uint16_t* __restrict__ x, const uint16_t* __restrict__ w, const uint16_t* __restrict__ bias, uint16_t* __restrict__ y, ConvMmaArgs c) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  __shared__ __align__(16) uint16_t As[CM][LDS];
  __shared__ __align__(16) uint16_t Bs[CN][LDS];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, c2 = (lane & 3) * 2;
  const int wm = warp >> 2, wn = warp & 3;  // warp tile: rows wm*64.., positions wn*32..
  const int64_t plane = c.OT * c.OH * c.OW, P = c.N * plane;
  const int K = (int)(c.Ci * c.KT * c.KH * c.KW), khw = (int)(c.KH * c.KW), kvol = (int)c.KT * khw;
  const int64_t p0 = (int64_t)blockIdx.x * CN;
  const int m0 = blockIdx.y * CM;
  // this thread's gather slot: one position, 16 consecutive k
  const int bp = tid & (CN - 1), bk = (tid >> 7) * 16;
  const int64_t pg = p0 + bp;
  int64_t xb = 0;
  int t0 = 0, h0 = 0, w0 = 0;
  const bool pin = pg < P;
  if (pin) {
    const int64_t n = pg / plane, q = pg % plane;
    const int ot = (int)(q / (c.OH * c.OW)), r = (int)(q % (c.OH * c.OW)), oh = r / (int)c.OW, ow = r % (int)c.OW;
    t0 = ot * c.st - c.pt, h0 = oh * c.sh - c.ph, w0 = ow * c.sw - c.pw;
    xb = n * c.Ci * c.T * c.H * c.W;
  }
  const bool avec = (K % 8) == 0;
  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.f;

  for (int k0 = 0; k0 < K; k0 += CK) {
    // A: weights (Co, K) rows, 16-byte chunks when K % 8 == 0
    for (int t = tid; t < CM * (CK / 8); t += 256) {
      const int r = t / (CK / 8), cc = (t % (CK / 8)) * 8, gm = m0 + r, gk = k0 + cc;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (gm < c.Co) {
        if (avec && gk + 8 <= K) v = *reinterpret_cast<const uint4*>(w + (int64_t)gm * K + gk);
        else {
          uint16_t tmp[8];
#pragma unroll
          for (int e = 0; e < 8; e++) tmp[e] = gk + e < K ? w[(int64_t)gm * K + gk + e] : 0;
          v = *reinterpret_cast<uint4*>(tmp);
        }
      }
      *reinterpret_cast<uint4*>(&As[r][cc]) = v;
    }
    // B: the im2col gather for 16 consecutive k of one position, walking (ci, kt, kh, kw) incrementally
    {
      uint16_t tmp[16];
      int k = k0 + bk;
      int ci = k / kvol, rem = k - ci * kvol, kt = rem / khw, r2 = rem - kt * khw, kh = r2 / (int)c.KW, kw = r2 - kh * (int)c.KW;
#pragma unroll
      for (int e = 0; e < 16; e++) {
        uint16_t v = 0;
        if (pin && k + e < K) {
          const int it = t0 + kt, ih = h0 + kh, iw = w0 + kw;
          if (it >= 0 && it < c.T && ih >= 0 && ih < c.H && iw >= 0 && iw < c.W) v = x[xb + ((ci * c.T + it) * c.H + ih) * c.W + iw];
        }
        tmp[e] = v;
        if (++kw == c.KW) {
          kw = 0;
          if (++kh == c.KH) {
            kh = 0;
            if (++kt == c.KT) kt = 0, ci++;
          }
        }
      }
      *reinterpret_cast<uint4*>(&Bs[bp][bk]) = *reinterpret_cast<uint4*>(tmp);
      *reinterpret_cast<uint4*>(&Bs[bp][bk + 8]) = *reinterpret_cast<uint4*>(tmp + 8);
    }
    __syncthreads();
    uint32_t af[4][2][4];
#pragma unroll
    for (int mt = 0; mt < 4; mt++)
#pragma unroll
      for (int kc = 0; kc < 2; kc++) ldsm4(af[mt][kc], &As[wm * 64 + mt * 16 + (lane & 15)][kc * 16 + (lane >> 4) * 8]);
#pragma unroll
    for (int nb = 0; nb < 4; nb++) {
      uint32_t kb[4];
      ldsm4(kb, &Bs[wn * 32 + nb * 8 + (lane & 7)][(lane >> 3) * 8]);
#pragma unroll
      for (int mt = 0; mt < 4; mt++) {
        mma<BF16>(acc[mt][nb], af[mt][0], kb[0], kb[1]);
        mma<BF16>(acc[mt][nb], af[mt][1], kb[2], kb[3]);
      }
    }
    __syncthreads();
  }
  // epilogue: + bias, one rounding, scatter to (N, Co, plane)
#pragma unroll
  for (int mt = 0; mt < 4; mt++)
#pragma unroll
    for (int half = 0; half < 2; half++) {
      const int m = m0 + wm * 64 + mt * 16 + g + half * 8;
      if (m >= c.Co) continue;
      float bb = 0.f;
      if (bias) bb = BF16 ? bf2f(bias[m]) : __half2float(*reinterpret_cast<const __half*>(bias + m));
#pragma unroll
      for (int nb = 0; nb < 4; nb++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          const int64_t p = p0 + wn * 32 + nb * 8 + c2 + e;
          if (p >= P) continue;
          const float v = acc[mt][nb][half * 2 + e] + bb;
          const int64_t n = p / plane, q = p % plane;
          uint16_t o;
          if constexpr (BF16) o = f2bf(v);
          else {
            __half hv = __float2half_rn(v);
            o = *reinterpret_cast<uint16_t*>(&hv);
          }
          y[(n * c.Co + m) * plane + q] = o;
        }
    }
#endif
}
}  // namespace

/** Tensor-core implicit GEMM for bf16/f16 conv3d; false when not compiled for this GPU (the caller falls back). */
bool launchConv3dMma(const void* x, const void* w, const void* b, void* y, int dt, const int64_t* xs, const int64_t* ws, const int64_t* os, const int* stride, const int* pad) {
  if (dt != DT_BF16 && dt != DT_F16) return false;
  static int ok[2] = {-1, -1};
  int& k = ok[dt == DT_BF16];
  if (k < 0) {
    cudaFuncAttributes attr;
    k = (dt == DT_BF16 ? cudaFuncGetAttributes(&attr, kConvMma<true>) : cudaFuncGetAttributes(&attr, kConvMma<false>)) == cudaSuccess && attr.ptxVersion >= 80 && attr.binaryVersion >= 80;
    cudaGetLastError();
  }
  if (k != 1) return false;
  ConvMmaArgs c{xs[0], xs[1], xs[2], xs[3], xs[4], ws[0], ws[2], ws[3], ws[4], os[2], os[3], os[4], stride[0], stride[1], stride[2], pad[0], pad[1], pad[2]};
  const int64_t P = c.N * c.OT * c.OH * c.OW;
  if (P == 0 || c.Co == 0) return true;
  dim3 grid((unsigned)((P + CN - 1) / CN), (unsigned)((c.Co + CM - 1) / CM));
  if (dt == DT_BF16) kConvMma<true><<<grid, 256, 0, g_stream>>>((const uint16_t*)x, (const uint16_t*)w, (const uint16_t*)b, (uint16_t*)y, c);
  else kConvMma<false><<<grid, 256, 0, g_stream>>>((const uint16_t*)x, (const uint16_t*)w, (const uint16_t*)b, (uint16_t*)y, c);
  checkLaunch("conv3d (tensor cores)");
  return true;
}
