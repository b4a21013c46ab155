// Flash attention on Hopper (sm_90a), bf16/f16, head dim 64 or 128, warp-specialised in the FlashAttention-3 style:
//   - warpgroup 0 is the producer: one thread issues bulk tensor copies (TMA) of the Q tile once and of the K/V tiles
//     into a 2-stage ring, each completing on an mbarrier; it gives its registers to the consumers (setmaxnreg);
//   - warpgroups 1 and 2 are consumers, 64 query rows each: S = Q K^T (wgmma, both operands in shared memory),
//     online softmax in registers, O += P V (wgmma, P from registers: the accumulator layout is the A layout).
//     Each issues S_t together with P_{t-1} V_{t-1} and runs tile t's softmax while that product is on the tensor
//     cores; the two take turns issuing (pingpong, named barriers), so one's softmax also overlaps the other's
//     products. K is loaded one tile ahead of V (a consumer needs K_t with V_{t-1}); 176-key tiles at head dim 128.
// History and measurements: native/PERF.md.
// Tiles use the 128-byte swizzle that TMA writes and wgmma reads: a [rows][D] tile is stored as D/64 column halves of
// [rows][64] (128-byte rows, 16-byte chunk index XOR row % 8), each half 1024-byte aligned.
#include "common.cuh"
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mutex>

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FP_WGMMA 1
#include "wgmma.cuh"
#endif

namespace {

constexpr int BM = 128, THREADS = 384;

template <int D, int BN, int STAGES>
struct Smem {
  static constexpr int Q = BM * D * 2, KV = BN * D * 2;
  static constexpr int BYTES = Q + 2 * STAGES * KV + 1024 /* barriers */ + 1024 /* alignment slack */;
};

#ifdef FP_WGMMA
__device__ __forceinline__ uint32_t sAddr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }
// wgmma matrix descriptor, 128-byte swizzle. K-major operands (Q, K): SBO = 1024 (8-row groups), LBO unused.
// MN-major operand (V read as B = V with N = head dim): LBO = stride between 64-column halves, SBO = 1024.
__device__ __forceinline__ uint64_t desc128(uint32_t addr, uint32_t lbo) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)((lbo >> 4) & 0x3FFF) << 16) | ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}
__device__ __forceinline__ void wgFence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgCommit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgWait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
__device__ __forceinline__ void wgWait1() { asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory"); }
// named barriers between the two consumer warpgroups (256 threads: 128 wait, 128 arrive)
__device__ __forceinline__ void namedSync(int id) { asm volatile("bar.sync %0, 256;\n" ::"r"(id) : "memory"); }
__device__ __forceinline__ void namedArrive(int id) { asm volatile("bar.arrive %0, 256;\n" ::"r"(id) : "memory"); }

__device__ __forceinline__ void mbarInit(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbarExpectTx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbarArrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbarWait(uint32_t bar, uint32_t parity) {
  uint32_t done;
  do {
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done) : "r"(bar), "r"(parity) : "memory");
  } while (!done);
}
// One [rows][64] box of a (BH, L, D) tensor into shared memory; completes `bytes` on the mbarrier.
__device__ __forceinline__ void tmaLoad3(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, uint32_t bar) {
  asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n"
               ::"r"(dst), "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(bar) : "memory");
}
__device__ __forceinline__ void tmaLoad4(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, int c3, uint32_t bar) {
  asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];\n"
               ::"r"(dst), "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar) : "memory");
}
// rows [r0, r0 + box) of one head, columns [c0, c0 + 64): (BH, L, D) maps are 3-d, (B, L, H, D) maps 4-d
__device__ __forceinline__ void tmaRows(uint32_t dst, const CUtensorMap* map, bool blhd, int c0, int r0, int b, int h, int bh, uint32_t bar) {
  if (blhd) tmaLoad4(dst, map, c0, h, r0, b, bar);
  else tmaLoad3(dst, map, c0, r0, bh, bar);
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
#endif

struct Maps {
  CUtensorMap q, k, v;
};

template <int D, int BN, int STAGES, bool BF16>
__global__ void __launch_bounds__(THREADS, 1) kFlashWs(const __grid_constant__ Maps maps, AttnArgs a, int pingpong) {
#ifdef FP_WGMMA
  constexpr int HALVES = D / 64;
  using SM = Smem<D, BN, STAGES>;
  extern __shared__ uint8_t smRaw[];
  // 1024-byte alignment for the swizzled tiles (the swizzle pattern is taken from address bits)
  uint8_t* sm = (uint8_t*)(((uintptr_t)smRaw + 1023) & ~(uintptr_t)1023);
  const uint32_t qS = sAddr(sm), kS = qS + SM::Q, vS = kS + STAGES * SM::KV;
  uint64_t* bars = reinterpret_cast<uint64_t*>(sm + SM::Q + 2 * STAGES * SM::KV);
  const uint32_t barQ = sAddr(bars), barK = barQ + 8, barV = barK + 8 * STAGES, barEK = barV + 8 * STAGES, barEV = barEK + 8 * STAGES;

  const int tid = threadIdx.x, wg = tid >> 7;
  const int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, q0 = blockIdx.x * BM;
  int kvEnd = a.Lk;
  if (a.causal) kvEnd = min(a.Lk, q0 + BM - 1 + (a.Lk - a.Lq) + 1);
  const int nt = kvEnd > 0 ? (kvEnd + BN - 1) / BN : 0;

  if (tid == 0) {
    mbarInit(barQ, 1);
    for (int s = 0; s < STAGES; s++) {
      mbarInit(barK + 8 * s, 1);
      mbarInit(barV + 8 * s, 1);
      mbarInit(barEK + 8 * s, 256);
      mbarInit(barEV + 8 * s, 256);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    // ---- producer
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
    if (tid == 0) {
      mbarExpectTx(barQ, SM::Q);
      for (int hf = 0; hf < HALVES; hf++) tmaRows(qS + hf * BM * 128, &maps.q, a.blhd, hf * 64, q0, b, h, bh, barQ);
      // K runs one tile ahead of V: the consumers need K_t together with V_{t-1}
      auto loadK = [&](int t) {
        const int s = t % STAGES;
        if (t >= STAGES) mbarWait(barEK + 8 * s, ((t / STAGES) - 1) & 1);
        mbarExpectTx(barK + 8 * s, SM::KV);
        for (int hf = 0; hf < HALVES; hf++) tmaRows(kS + s * SM::KV + hf * BN * 128, &maps.k, a.blhd, hf * 64, t * BN, b, h, bh, barK + 8 * s);
      };
      if (nt > 0) loadK(0);
      for (int t = 0; t < nt; t++) {
        if (t + 1 < nt) loadK(t + 1);
        const int s = t % STAGES;
        if (t >= STAGES) mbarWait(barEV + 8 * s, ((t / STAGES) - 1) & 1);
        mbarExpectTx(barV + 8 * s, SM::KV);
        for (int hf = 0; hf < HALVES; hf++) tmaRows(vS + s * SM::KV + hf * BN * 128, &maps.v, a.blhd, hf * 64, t * BN, b, h, bh, barV + 8 * s);
      }
    }
  } else {
    // ---- consumers: warpgroup cw owns query rows q0 + 64 cw .. + 63
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
    const int cw = wg - 1, wl = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, c2 = (lane & 3) * 2;
    const int rowA = q0 + cw * 64 + wl * 16 + g, rowB = rowA + 8;
    float o[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; i++) o[i] = 0.f;
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
    const float sl2 = a.scale * 1.4426950408889634f;
    const uint32_t qW = qS + cw * 64 * 128;  // this warpgroup's 64 rows inside each Q half
    const uint8_t* mrowp = a.mask ? a.mask + b * a.mstride[0] + h * a.mstride[1] : nullptr;
    const int warpRow0 = q0 + cw * 64 + wl * 16;
    // Pingpong: the two consumers take turns issuing their products (named barriers 1 and 2), so one warpgroup's
    // softmax runs while the other's products use the tensor cores. Consumer 1 lets consumer 0 go first.
    const int myBar = 1 + cw, otherBar = 2 - cw;
    if (pingpong && cw == 1) namedArrive(otherBar);

    // S = Q K^T for tile t into sc (issued, not waited)
    auto issueS = [&](float* sc, int t) {
      const uint32_t kb = kS + (t % STAGES) * SM::KV;
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
        const uint32_t off = (kk & 3) * 32;  // 16 columns = 32 bytes into the 128-byte row
        const uint64_t dq = desc128(qW + (kk >> 2) * BM * 128 + off, 16), dk = desc128(kb + (kk >> 2) * BN * 128 + off, 16);
        if constexpr (BN == 176) wgmmaSS_n176<BF16>(sc, dq, dk, kk > 0);
        else wgmmaSS_n128<BF16>(sc, dq, dk, kk > 0);
      }
    };
    // O += P V for tile t (issued, not waited): 16 keys = two 8-row swizzle atoms (SBO 1024) from key 16 kk; the
    // head dim's 64-column halves are LBO apart
    auto issuePV = [&](const uint32_t (*pa)[4], int t) {
      const uint32_t vb = vS + (t % STAGES) * SM::KV;
#pragma unroll
      for (int kk = 0; kk < BN / 16; kk++) {
        const uint64_t dv = desc128(vb + kk * 16 * 128, BN * 128);
        if constexpr (D == 128) wgmmaRS_n128<BF16>(o, pa[kk], dv);
        else wgmmaRS_n64<BF16>(o, pa[kk], dv);
      }
    };
    // online softmax of tile t: scores -> probabilities (in place); alpha rescales O and l
    auto softmax = [&](float* sc, int t, float* alpha) {
      const int kv0 = t * BN;
      // columns to drop: key-only masks (read per column), the zero-filled tail past Lk; causal per element
      constexpr uint64_t ALL = (1ull << (BN / 4)) - 1;  // bit j*2+e: column kv0 + 8j + c2 + e
      uint64_t colOk = ALL;
      const bool tailTile = kv0 + BN > a.Lk;
      if (mrowp) {
#pragma unroll
        for (int j = 0; j < BN / 8; j++)
#pragma unroll
          for (int e = 0; e < 2; e++) {
            const int col = kv0 + j * 8 + c2 + e;
            if (col >= a.Lk || !mrowp[(int64_t)col * a.mstride[3]]) colOk &= ~(1ull << (j * 2 + e));
          }
      } else if (tailTile) {
#pragma unroll
        for (int j = 0; j < BN / 8; j++)
#pragma unroll
          for (int e = 0; e < 2; e++)
            if (kv0 + j * 8 + c2 + e >= a.Lk) colOk &= ~(1ull << (j * 2 + e));
      }
      const bool causalHere = a.causal && kv0 + BN - 1 > warpRow0 + (a.Lk - a.Lq);
      // uniform per warpgroup (no vote): the common tile (no mask, not the tail, off the diagonal) skips the mask code
      const bool needMask = causalHere || tailTile || mrowp != nullptr;
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < BN / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          float v = sc[j * 4 + e];
          if (needMask) {
            const int col = kv0 + j * 8 + c2 + (e & 1), row = e < 2 ? rowA : rowB;
            bool ok = (colOk >> (j * 2 + (e & 1))) & 1ull;
            if (causalHere && col > row + (a.Lk - a.Lq)) ok = false;
            if (!ok) v = -INFINITY;
            sc[j * 4 + e] = v;
          }
          mx[e >> 1] = fmaxf(mx[e >> 1], v);
        }
#pragma unroll
      for (int r = 0; r < 2; r++) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        const float mn = fmaxf(mrow[r], mx[r] * sl2);  // running max, in log2 units
        const float base = mn == -INFINITY ? 0.f : mn;
        alpha[r] = ex2(mrow[r] - base);
        mrow[r] = mn;
        mx[r] = base;
      }
      float rs[2] = {0.f, 0.f};
#pragma unroll
      for (int i = 0; i < BN / 2; i++) {
        const float p = ex2(fmaf(sc[i], sl2, -mx[(i >> 1) & 1]));
        sc[i] = p;
        rs[(i >> 1) & 1] += p;
      }
      lrow[0] = lrow[0] * alpha[0] + rs[0];
      lrow[1] = lrow[1] * alpha[1] + rs[1];
    };
    // probabilities -> bf16/f16 pairs in the A-operand layout of P V (once the previous P V has read the old ones)
    auto pack = [&](const float* sc, uint32_t (*pa)[4]) {
#pragma unroll
      for (int kk = 0; kk < BN / 16; kk++) {
        pa[kk][0] = pk<BF16>(sc[8 * kk + 0], sc[8 * kk + 1]);
        pa[kk][1] = pk<BF16>(sc[8 * kk + 2], sc[8 * kk + 3]);
        pa[kk][2] = pk<BF16>(sc[8 * kk + 4], sc[8 * kk + 5]);
        pa[kk][3] = pk<BF16>(sc[8 * kk + 6], sc[8 * kk + 7]);
      }
    };

    mbarWait(barQ, 0);
    float sc[BN / 2], alpha[2];
    uint32_t pa[BN / 16][4];
    if (nt > 0) {
      // tile 0: S, softmax (O is still zero: no rescale)
      mbarWait(barK, 0);
      if (pingpong) namedSync(myBar);
      wgFence();
      issueS(sc, 0);
      wgCommit();
      if (pingpong) namedArrive(otherBar);
      wgWait0();
      mbarArrive(barEK);
      softmax(sc, 0, alpha);
      pack(sc, pa);
    }
    // Tile t: issue S_t, then O += P_{t-1} V_{t-1}; the softmax of S_t runs while that product is on the tensor cores.
    for (int t = 1; t < nt; t++) {
      const int s = t % STAGES, sp = (t - 1) % STAGES;
      mbarWait(barK + 8 * s, (t / STAGES) & 1);
      mbarWait(barV + 8 * sp, ((t - 1) / STAGES) & 1);
      if (pingpong) namedSync(myBar);
      wgFence();
      issueS(sc, t);
      wgCommit();
      issuePV(pa, t - 1);
      wgCommit();
      if (pingpong) namedArrive(otherBar);
      wgWait1();
      mbarArrive(barEK + 8 * s);
      softmax(sc, t, alpha);
      wgWait0();
      mbarArrive(barEV + 8 * sp);
#pragma unroll
      for (int i = 0; i < D / 2; i++) o[i] *= alpha[(i >> 1) & 1];
      pack(sc, pa);
    }
    if (nt > 0) {
      const int sp = (nt - 1) % STAGES;
      mbarWait(barV + 8 * sp, ((nt - 1) / STAGES) & 1);
      if (pingpong) namedSync(myBar);
      wgFence();
      issuePV(pa, nt - 1);
      wgCommit();
      if (pingpong) namedArrive(otherBar);
      wgWait0();
      mbarArrive(barEV + 8 * sp);
    }
    // consumer 0 takes the arrival consumer 1 made last (every arrival on a named barrier is matched)
    if (pingpong && cw == 0) namedSync(myBar);
#pragma unroll
    for (int r = 0; r < 2; r++) {
      lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);
      lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);
    }
    const float inv0 = lrow[0] > 0.f ? 1.f / lrow[0] : 0.f, inv1 = lrow[1] > 0.f ? 1.f / lrow[1] : 0.f;
    // (B, H, L, D): row r of head bh at (bh * Lq + r) * D; (B, L, H, D): at ((b * Lq + r) * H + h) * D
    uint16_t* O = (uint16_t*)a.o + (a.blhd ? (int64_t)h * D : (int64_t)bh * a.Lq * D);
    const int64_t rowStride = a.blhd ? (int64_t)a.H * D : D;
    if (a.blhd) O += (int64_t)b * a.Lq * a.H * D;
#pragma unroll
    for (int j = 0; j < D / 8; j++) {
      const int col = j * 8 + c2;
      if (rowA < a.Lq) *reinterpret_cast<uint32_t*>(O + rowA * rowStride + col) = pk<BF16>(o[4 * j] * inv0, o[4 * j + 1] * inv0);
      if (rowB < a.Lq) *reinterpret_cast<uint32_t*>(O + rowB * rowStride + col) = pk<BF16>(o[4 * j + 2] * inv1, o[4 * j + 3] * inv1);
    }
  }
#endif
}

// cuTensorMapEncodeTiled from the driver, found through the runtime (no -lcuda at link time).
using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*, const cuuint64_t*,
                                 const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                 CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
EncodeTiled encodeTiled() {
  static EncodeTiled fn = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) == cudaSuccess && q == cudaDriverEntryPointSuccess)
      fn = reinterpret_cast<EncodeTiled>(p);
    cudaGetLastError();
  });
  return fn;
}
// A (BH, L, D) contiguous tensor as a 3-d map, or a (B, L, H, D) one as a 4-d map, with [rows][64] boxes of one head
// and 128-byte swizzle; rows past L read as zeros.
bool makeMap(CUtensorMap* m, const void* base, const AttnArgs& a, int L, int D, int rows) {
  const cuuint64_t e = 2;
  const cuuint64_t dims3[3] = {(cuuint64_t)D, (cuuint64_t)L, (cuuint64_t)a.B * a.H}, str3[2] = {D * e, (cuuint64_t)L * D * e};
  const cuuint64_t dims4[4] = {(cuuint64_t)D, (cuuint64_t)a.H, (cuuint64_t)L, (cuuint64_t)a.B};
  const cuuint64_t str4[3] = {D * e, (cuuint64_t)a.H * D * e, (cuuint64_t)L * a.H * D * e};
  const cuuint32_t box3[3] = {64, (cuuint32_t)rows, 1}, box4[4] = {64, 1, (cuuint32_t)rows, 1}, estr[4] = {1, 1, 1, 1};
  return encodeTiled()(m, CU_TENSOR_MAP_DATA_TYPE_UINT16, a.blhd ? 4 : 3, const_cast<void*>(base), a.blhd ? dims4 : dims3, a.blhd ? str4 : str3,
                       a.blhd ? box4 : box3, estr, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                       CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <int D, int BN, int STAGES, bool BF16>
bool runWs(const AttnArgs& a) {
  static int ok = -1;
  const int smem = Smem<D, BN, STAGES>::BYTES;
  auto kern = kFlashWs<D, BN, STAGES, BF16>;
  if (ok < 0) {
    cudaFuncAttributes attr;
    ok = encodeTiled() != nullptr && cudaFuncGetAttributes(&attr, kern) == cudaSuccess && attr.binaryVersion == 90 &&
         cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) == cudaSuccess;
    cudaGetLastError();
  }
  if (ok != 1) return false;
  Maps m;
  if (!makeMap(&m.q, a.q, a, a.Lq, D, BM) || !makeMap(&m.k, a.k, a, a.Lk, D, BN) || !makeMap(&m.v, a.v, a, a.Lk, D, BN)) return false;
  dim3 grid((a.Lq + BM - 1) / BM, a.B * a.H);
  const char* pp = getenv("FRAMEPACK_ATTN_PINGPONG");  // 0: the consumers issue freely (measurements)
  kern<<<grid, THREADS, smem, g_stream>>>(m, a, pp && pp[0] == '0' ? 0 : 1);
  return true;
}
template <int D, bool BF16>
bool runTiles(const AttnArgs& a) {
  // 176-key tiles for head dim 128 (measured on the H100 at S = 19385: 578 TFLOP/s against 519 with 128 keys: fewer
  // per-tile fixed costs); FRAMEPACK_ATTN_BN=128 / FRAMEPACK_ATTN_STAGES=3 select the other shapes for measurements
  const char* st = getenv("FRAMEPACK_ATTN_STAGES");
  const char* bn = getenv("FRAMEPACK_ATTN_BN");
  const bool keys176 = bn ? !strcmp(bn, "176") : D == 128;
  if (keys176) return runWs<D, 176, 2, BF16>(a);  // 3 stages of 176 keys do not fit in shared memory
  return st && st[0] == '3' ? runWs<D, 128, 3, BF16>(a) : runWs<D, 128, 2, BF16>(a);
}
}  // namespace

/**
 * The Hopper path: true when it ran (sm_90 device, built with the 90a target, head dim 64/128, bf16/f16, no mask or a
 * key-only mask). FRAMEPACK_ATTN_WGMMA=0 turns it off (benchmarks against the sm_80 kernels).
 */
bool launchAttentionSm90(const AttnArgs& a) {
  if (!strstr(FRAMEPACK_CUDA_ARCHS, "90a")) return false;
  const char* on = getenv("FRAMEPACK_ATTN_WGMMA");
  if (on && on[0] == '0') return false;
  if (a.D != a.Dv || (a.D != 64 && a.D != 128) || (a.dt != DT_BF16 && a.dt != DT_F16)) return false;
  if (a.mask && a.mstride[2] != 0) return false;  // per-query masks: the sm_80 kernels
  if ((int64_t)a.B * a.H > 65535) return false;
  const bool bf = a.dt == DT_BF16;
  const bool ran = a.D == 128 ? (bf ? runTiles<128, true>(a) : runTiles<128, false>(a)) : (bf ? runTiles<64, true>(a) : runTiles<64, false>(a));
  if (ran) checkLaunch("attention (flash, warp-specialised wgmma)");
  return ran;
}
