// Flash attention on Hopper tensor cores (sm_90a wgmma), for bf16/f16 with head dim 64 or 128.
// CTA = 2 warpgroups x 64 query rows; K/V tiles of 128 keys double-buffered with cp.async. S = Q K^T is a
// shared-memory x shared-memory wgmma, P stays in registers (accumulator layout == A-operand layout) for
// O += P V, with V read transposed from the same tile layout. Tiles are stored as 8-row x 16-byte core matrices
// (no swizzle): element (r, c) of a [rows][D] tile sits at (r/8)*(D/8)*64 + (c/8)*64 + (r%8)*8 + c%8.
#include "common.cuh"
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FP_WGMMA 1
#include "wgmma.cuh"
#endif

namespace {

#ifdef FP_WGMMA
__device__ __forceinline__ uint64_t desc(const void* p, uint32_t lbo, uint32_t sbo) {
  const uint64_t addr = (uint64_t)__cvta_generic_to_shared(p);
  return ((addr & 0x3FFFF) >> 4) | ((uint64_t)((lbo >> 4) & 0x3FFF) << 16) | ((uint64_t)((sbo >> 4) & 0x3FFF) << 32);
}
__device__ __forceinline__ void wgFence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgCommit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgWait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
__device__ __forceinline__ void cpAsync16z(void* smem, const void* gmem, bool pred) {
  const uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(pred ? 16 : 0));
}
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
template <bool BF16>
__device__ __forceinline__ uint32_t pk(float lo, float hi) {
  if constexpr (BF16) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
}
template <int D, int ROWS, int THREADS>
__device__ __forceinline__ void tileAsync(uint16_t* dst, const uint16_t* src, int r0, int rows) {
  constexpr int CH = D / 8;
  for (int t = threadIdx.x; t < ROWS * CH; t += THREADS) {
    const int r = t / CH, c = t % CH, gr = r0 + r;
    const bool in = gr < rows;
    cpAsync16z(dst + (r >> 3) * (CH * 64) + c * 64 + (r & 7) * 8, in ? src + (int64_t)gr * D + c * 8 : src, in);
  }
}
#endif

template <int D, int F3_BN, int WG, bool BF16>
__global__ void __launch_bounds__(128 * WG) kFlash3(AttnArgs a) {
#ifdef FP_WGMMA
  constexpr int F3_BM = 64 * WG, F3_THREADS = 128 * WG;
  extern __shared__ __align__(128) uint16_t sm[];
  constexpr int CH = D / 8, QSZ = F3_BM * D, KSZ = F3_BN * D;
  uint16_t* Qs = sm;
  uint16_t* Kb = sm + QSZ;
  uint16_t* Vb = Kb + 2 * KSZ;
  const int tid = threadIdx.x, wg = tid >> 7, wl = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, c2 = (lane & 3) * 2;
  const int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, q0 = blockIdx.x * F3_BM;
  const uint16_t* Q = (const uint16_t*)a.q + (int64_t)bh * a.Lq * D;
  const uint16_t* K = (const uint16_t*)a.k + (int64_t)bh * a.Lk * D;
  const uint16_t* V = (const uint16_t*)a.v + (int64_t)bh * a.Lk * D;
  const int rowA = q0 + wg * 64 + wl * 16 + g, rowB = rowA + 8;
  int kvEnd = a.Lk;
  if (a.causal) kvEnd = min(a.Lk, q0 + F3_BM - 1 + (a.Lk - a.Lq) + 1);
  const int nt = kvEnd > 0 ? (kvEnd + F3_BN - 1) / F3_BN : 0;

  tileAsync<D, F3_BM, F3_THREADS>(Qs, Q, q0, a.Lq);
  if (nt > 0) {
    tileAsync<D, F3_BN, F3_THREADS>(Kb, K, 0, a.Lk);
    tileAsync<D, F3_BN, F3_THREADS>(Vb, V, 0, a.Lk);
  }
  asm volatile("cp.async.commit_group;\n" ::);

  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; i++) o[i] = 0.f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
  const float sl2 = a.scale * 1.4426950408889634f;
  const uint32_t rowGroupBytes = CH * 128;  // one 8-row group of a tile
  // V is read transposed (MN-major): LBO = stride between 8-key groups (along K), SBO = between 8-column chunks
  const uint32_t vl = rowGroupBytes, vs = 128;
  const uint16_t* Qw = Qs + wg * 8 * (CH * 64);  // this warpgroup's 64 rows

  for (int t = 0; t < nt; t++) {
    const int kv0 = t * F3_BN, buf = t & 1;
    if (t + 1 < nt) {
      tileAsync<D, F3_BN, F3_THREADS>(Kb + (buf ^ 1) * KSZ, K, kv0 + F3_BN, a.Lk);
      tileAsync<D, F3_BN, F3_THREADS>(Vb + (buf ^ 1) * KSZ, V, kv0 + F3_BN, a.Lk);
    }
    asm volatile("cp.async.commit_group;\n" ::);
    asm volatile("cp.async.wait_group 1;\n" ::);
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    const uint16_t* Ks = Kb + buf * KSZ;
    const uint16_t* Vs = Vb + buf * KSZ;

    // masking (as the sm_80 kernel): key-only masks per column, causal only on tiles crossing the diagonal
    const bool tail = kv0 + F3_BN > a.Lk;
    const bool causalHere = a.causal && kv0 + F3_BN - 1 > q0 + wg * 64 + wl * 16 + (a.Lk - a.Lq);
    uint32_t colOk = 0xffffffffu;  // bit j*2+e: column kv0 + 8j + c2 + e
    constexpr uint32_t ALL = F3_BN == 128 ? 0xffffffffu : 0xffffu;
    colOk = ALL;
    bool general = false;
    if (a.mask && a.mstride[2] == 0) {
      const uint8_t* mr = a.mask + b * a.mstride[0] + h * a.mstride[1];
#pragma unroll
      for (int j = 0; j < F3_BN / 8; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          const int col = kv0 + j * 8 + c2 + e;
          if (col >= a.Lk || !mr[(int64_t)col * a.mstride[3]]) colOk &= ~(1u << (j * 2 + e));
        }
    } else if (a.mask) {
      general = true;
    } else if (tail) {
#pragma unroll
      for (int j = 0; j < F3_BN / 8; j++)
#pragma unroll
        for (int e = 0; e < 2; e++)
          if (kv0 + j * 8 + c2 + e >= a.Lk) colOk &= ~(1u << (j * 2 + e));
    }
    float s[F3_BN / 2];
    wgFence();
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
      if constexpr (F3_BN == 128) wgmmaSS_n128<BF16>(s, desc(Qw + kk * 128, 128, rowGroupBytes), desc(Ks + kk * 128, 128, rowGroupBytes), kk > 0);
      else wgmmaSS_n64<BF16>(s, desc(Qw + kk * 128, 128, rowGroupBytes), desc(Ks + kk * 128, 128, rowGroupBytes), kk > 0);
    wgCommit();
    wgWait0();

    const bool needMask = general || causalHere || !__all_sync(0xffffffffu, colOk == ALL);
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < F3_BN / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        float v = s[j * 4 + e] * sl2;
        if (needMask) {
          const int col = kv0 + j * 8 + c2 + (e & 1), row = e < 2 ? rowA : rowB;
          bool ok = (colOk >> (j * 2 + (e & 1))) & 1u;
          if (causalHere && col > row + (a.Lk - a.Lq)) ok = false;
          if (general && ok) {
            if (col >= a.Lk || row >= a.Lq) ok = false;
            else ok = a.mask[b * a.mstride[0] + h * a.mstride[1] + (int64_t)row * a.mstride[2] + (int64_t)col * a.mstride[3]] != 0;
          }
          if (!ok) v = -INFINITY;
        }
        s[j * 4 + e] = v;
        mx[e >> 1] = fmaxf(mx[e >> 1], v);
      }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float mn = fmaxf(mrow[r], mx[r]);
      const float base = mn == -INFINITY ? 0.f : mn;
      alpha[r] = ex2(mrow[r] - base);
      mrow[r] = mn;
      mx[r] = base;
    }
    float rs[2] = {0.f, 0.f};
#pragma unroll
    for (int i = 0; i < F3_BN / 2; i++) {
      const float p = ex2(s[i] - mx[(i >> 1) & 1]);
      s[i] = p;
      rs[(i >> 1) & 1] += p;
    }
    lrow[0] = lrow[0] * alpha[0] + rs[0];
    lrow[1] = lrow[1] * alpha[1] + rs[1];
#pragma unroll
    for (int i = 0; i < D / 2; i++) o[i] *= alpha[(i >> 1) & 1];
    uint32_t pa[F3_BN / 16][4];
#pragma unroll
    for (int kk = 0; kk < F3_BN / 16; kk++) {
      pa[kk][0] = pk<BF16>(s[8 * kk + 0], s[8 * kk + 1]);
      pa[kk][1] = pk<BF16>(s[8 * kk + 2], s[8 * kk + 3]);
      pa[kk][2] = pk<BF16>(s[8 * kk + 4], s[8 * kk + 5]);
      pa[kk][3] = pk<BF16>(s[8 * kk + 6], s[8 * kk + 7]);
    }
    wgFence();
#pragma unroll
    for (int kk = 0; kk < F3_BN / 16; kk++) {
      const uint64_t dv = desc(Vs + kk * 2 * (CH * 64), vl, vs);
      if constexpr (D == 128) wgmmaRS_n128<BF16>(o, pa[kk], dv);
      else wgmmaRS_n64<BF16>(o, pa[kk], dv);
    }
    wgCommit();
    wgWait0();
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < 2; r++) {
    lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);
    lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);
  }
  const float inv0 = lrow[0] > 0.f ? 1.f / lrow[0] : 0.f, inv1 = lrow[1] > 0.f ? 1.f / lrow[1] : 0.f;
  uint16_t* O = (uint16_t*)a.o + (int64_t)bh * a.Lq * D;
#pragma unroll
  for (int j = 0; j < D / 8; j++) {
    const int col = j * 8 + c2;
    if (rowA < a.Lq) *reinterpret_cast<uint32_t*>(O + (int64_t)rowA * D + col) = pk<BF16>(o[4 * j] * inv0, o[4 * j + 1] * inv0);
    if (rowB < a.Lq) *reinterpret_cast<uint32_t*>(O + (int64_t)rowB * D + col) = pk<BF16>(o[4 * j + 2] * inv1, o[4 * j + 3] * inv1);
  }
#endif
}

template <int D, int BN, int WG, bool BF16>
bool run3(const AttnArgs& a) {
  static int ok = -1;
  const int smem = (64 * WG * D + 4 * BN * D) * 2;
  if (ok < 0) {
    cudaFuncAttributes attr;
    ok = cudaFuncGetAttributes(&attr, kFlash3<D, BN, WG, BF16>) == cudaSuccess && attr.binaryVersion == 90 &&
         cudaFuncSetAttribute(kFlash3<D, BN, WG, BF16>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) == cudaSuccess;
    cudaGetLastError();
  }
  if (ok != 1) return false;
  dim3 grid((a.Lq + 64 * WG - 1) / (64 * WG), a.B * a.H);
  kFlash3<D, BN, WG, BF16><<<grid, 128 * WG, smem, g_stream>>>(a);
  return true;
}
template <int D, bool BF16>
bool pick(const AttnArgs& a, int variant) {
  switch (variant) {
    case 1: return run3<D, 128, 2, BF16>(a);  // 128 rows (2 warpgroups), 128-key tiles, 1 CTA per SM
    default: return run3<D, 64, 1, BF16>(a);  // 64 rows (1 warpgroup), 64-key tiles, 2 CTAs per SM
  }
}
}  // namespace

/** The Hopper path (FRAMEPACK_ATTN_WGMMA=1): true when it ran (sm_90 device, built with the 90a target, head dim 64/128, aligned halves). */
bool launchAttentionSm90(const AttnArgs& a) {
  if (!strstr(FRAMEPACK_CUDA_ARCHS, "90a")) return false;
  // opt-in for now: measured on an H100 it trails the sm_80 mma.sync kernel (no warp specialization yet)
  const char* on = getenv("FRAMEPACK_ATTN_WGMMA");
  if (!on || on[0] != '1') return false;
  if (a.D != a.Dv || (a.D != 64 && a.D != 128) || (a.dt != DT_BF16 && a.dt != DT_F16)) return false;
  const bool bf = a.dt == DT_BF16;
  const char* v = getenv("FRAMEPACK_WGMMA_VARIANT");
  const int variant = v ? atoi(v) : 1;
  bool ran = a.D == 128 ? (bf ? pick<128, true>(a, variant) : pick<128, false>(a, variant)) : (bf ? pick<64, true>(a, variant) : pick<64, false>(a, variant));
  if (ran) checkLaunch("attention (flash, wgmma)");
  return ran;
}
