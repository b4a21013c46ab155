// Scaled dot-product attention.
// - flash path (sm_80+, bf16/f16, head dim <= 128, Dv == D): FlashAttention-2 style, one CTA = 64 query rows
//   (4 warps x 16 rows), K/V tiles of 64 keys in shared memory, mma.sync m16n8k16 with f32 accumulators,
//   online softmax in registers (exp2 with the scale folded in), P re-used from the S accumulators as the A operand.
// - generic path (f32, other head dims, older GPUs): one warp per query row, online softmax.
// Both: optional bool mask read through broadcast strides, bottom-right aligned causal masking (as the CPU
// backend), and rows whose keys are all masked give zeros.
#include "common.cuh"
#include <cuda_bf16.h>

__device__ __forceinline__ bool allowed(const AttnArgs& a, int b, int h, int i, int j) {
  if (a.causal && j > i + (a.Lk - a.Lq)) return false;
  if (a.mask && !a.mask[b * a.mstride[0] + h * a.mstride[1] + (int64_t)i * a.mstride[2] + (int64_t)j * a.mstride[3]]) return false;
  return true;
}

// ---------------------------------------------------------------- generic path
template <int CH>  // CH = ceil(D / 32) chunks per lane
__global__ void kAttnGeneric(AttnArgs a) {
  int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
  int64_t rows = (int64_t)a.B * a.H * a.Lq;
  if (warp >= rows) return;
  int i = warp % a.Lq, bh = warp / a.Lq, b = bh / a.H, h = bh % a.H;
  const int64_t qb = (int64_t)warp * a.D, kb = (int64_t)bh * a.Lk * a.D, vb = (int64_t)bh * a.Lk * a.Dv;
  float q[CH], acc[CH];
#pragma unroll
  for (int c = 0; c < CH; c++) {
    int d = c * 32 + lane;
    q[c] = d < a.D ? ld<float>(a.q, a.dt, qb + d) * a.scale : 0.f;
    acc[c] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int j = 0; j < a.Lk; j++) {
    if (!allowed(a, b, h, i, j)) continue;
    float s = 0.f;
#pragma unroll
    for (int c = 0; c < CH; c++) {
      int d = c * 32 + lane;
      if (d < a.D) s += q[c] * ld<float>(a.k, a.dt, kb + (int64_t)j * a.D + d);
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    float mn = fmaxf(m, s), alpha = expf(m - mn), p = expf(s - mn);
    l = l * alpha + p;
#pragma unroll
    for (int c = 0; c < CH; c++) {
      int d = c * 32 + lane;
      acc[c] = acc[c] * alpha + (d < a.Dv ? p * ld<float>(a.v, a.dt, vb + (int64_t)j * a.Dv + d) : 0.f);
    }
    m = mn;
  }
  const int64_t ob = (int64_t)warp * a.Dv;
#pragma unroll
  for (int c = 0; c < CH; c++) {
    int d = c * 32 + lane;
    if (d < a.Dv) st<float>(a.o, a.dt, ob + d, l > 0.f ? acc[c] / l : 0.f);
  }
}

// ---------------------------------------------------------------- flash path
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
template <bool BF16>
__device__ __forceinline__ void mma16816(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  if constexpr (BF16)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <bool BF16>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (BF16) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
}
__device__ __forceinline__ void ldmatrixT4(uint32_t* r, const void* p) {
  uint32_t addr = (uint32_t)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
#endif

constexpr int FA_BM = 64, FA_BN = 64;

/** Copy rows [r0, r0+64) x [0, DP) of a (rows, D) bf16/f16 matrix into shared memory, zero-filling past the ends. */
template <int DP>
__device__ __forceinline__ void loadTile(uint16_t (*dst)[DP + 8], const uint16_t* src, int r0, int rows, int D) {
  constexpr int VEC = 8, PER_ROW = DP / VEC;
  const bool vec = (D % 8) == 0 && ((uintptr_t)src & 15) == 0;
  for (int t = threadIdx.x; t < FA_BN * PER_ROW; t += blockDim.x) {
    int r = t / PER_ROW, c = (t % PER_ROW) * VEC, gr = r0 + r;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (gr < rows) {
      const uint16_t* p = src + (int64_t)gr * D + c;
      if (vec && c + VEC <= D) v = *reinterpret_cast<const uint4*>(p);
      else {
        uint16_t tmp[8];
#pragma unroll
        for (int e = 0; e < 8; e++) tmp[e] = c + e < D ? p[e] : 0;
        v = *reinterpret_cast<uint4*>(tmp);
      }
    }
    *reinterpret_cast<uint4*>(&dst[r][c]) = v;
  }
}

template <int DP, bool BF16>
__global__ void __launch_bounds__(128) kFlash(AttnArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  __shared__ __align__(16) uint16_t Ks[FA_BN][DP + 8];
  __shared__ __align__(16) uint16_t Vs[FA_BN][DP + 8];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c2 = (lane & 3) * 2;
  const int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, q0 = blockIdx.x * FA_BM;
  const uint16_t* Q = (const uint16_t*)a.q + (int64_t)bh * a.Lq * a.D;
  const uint16_t* K = (const uint16_t*)a.k + (int64_t)bh * a.Lk * a.D;
  const uint16_t* V = (const uint16_t*)a.v + (int64_t)bh * a.Lk * a.D;

  // Q fragments (A operand, 16 rows per warp), staged through Ks
  loadTile<DP>(Ks, Q, q0, a.Lq, a.D);
  __syncthreads();
  uint32_t qa[DP / 16][4];
#pragma unroll
  for (int kc = 0; kc < DP / 16; kc++) {
    const int r = warp * 16 + g, col = kc * 16 + c2;
    qa[kc][0] = *reinterpret_cast<const uint32_t*>(&Ks[r][col]);
    qa[kc][1] = *reinterpret_cast<const uint32_t*>(&Ks[r + 8][col]);
    qa[kc][2] = *reinterpret_cast<const uint32_t*>(&Ks[r][col + 8]);
    qa[kc][3] = *reinterpret_cast<const uint32_t*>(&Ks[r + 8][col + 8]);
  }
  __syncthreads();

  float o[DP / 8][4];
#pragma unroll
  for (int i = 0; i < DP / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
  const float sl2 = a.scale * 1.4426950408889634f;
  const int rowA = q0 + warp * 16 + g, rowB = rowA + 8;  // the two query rows this thread holds
  int kvEnd = a.Lk;
  if (a.causal) kvEnd = min(a.Lk, q0 + FA_BM - 1 + (a.Lk - a.Lq) + 1);

  for (int kv0 = 0; kv0 < kvEnd; kv0 += FA_BN) {
    loadTile<DP>(Ks, K, kv0, a.Lk, a.D);
    loadTile<DP>(Vs, V, kv0, a.Lk, a.D);
    __syncthreads();
    float s[FA_BN / 8][4];
#pragma unroll
    for (int nb = 0; nb < FA_BN / 8; nb++) {
      s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.f;
#pragma unroll
      for (int kc = 0; kc < DP / 16; kc++) {
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(&Ks[nb * 8 + g][kc * 16 + c2]);
        const uint32_t b1 = *reinterpret_cast<const uint32_t*>(&Ks[nb * 8 + g][kc * 16 + 8 + c2]);
        mma16816<BF16>(s[nb], qa[kc], b0, b1);
      }
    }
    // scale, mask, online softmax (rows rowA: s[.][0..1], rowB: s[.][2..3])
    const bool needMask = a.mask || a.causal || kv0 + FA_BN > a.Lk;
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nb = 0; nb < FA_BN / 8; nb++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int j = kv0 + nb * 8 + c2 + (e & 1), i = e < 2 ? rowA : rowB;
        float v = s[nb][e] * sl2;
        if (needMask && (j >= a.Lk || i >= a.Lq || !allowed(a, b, h, i, j))) v = -INFINITY;
        s[nb][e] = v;
        mx[e >> 1] = fmaxf(mx[e >> 1], v);
      }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float mn = fmaxf(mrow[r], mx[r]);
      const float base = mn == -INFINITY ? 0.f : mn;  // a fully masked row so far: keep exp2 at 0, not NaN
      alpha[r] = exp2f(mrow[r] - base);
      mrow[r] = mn;
      mx[r] = base;
    }
    float rs[2] = {0.f, 0.f};
#pragma unroll
    for (int nb = 0; nb < FA_BN / 8; nb++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const float p = exp2f(s[nb][e] - mx[e >> 1]);
        s[nb][e] = p;
        rs[e >> 1] += p;
      }
    lrow[0] = lrow[0] * alpha[0] + rs[0];
    lrow[1] = lrow[1] * alpha[1] + rs[1];
#pragma unroll
    for (int i = 0; i < DP / 8; i++) {
      o[i][0] *= alpha[0];
      o[i][1] *= alpha[0];
      o[i][2] *= alpha[1];
      o[i][3] *= alpha[1];
    }
    // O += P V: P from the S accumulators (C layout == A layout pairs), V^T fragments via ldmatrix.trans
#pragma unroll
    for (int kc = 0; kc < FA_BN / 16; kc++) {
      uint32_t pa[4] = {pack2<BF16>(s[2 * kc][0], s[2 * kc][1]), pack2<BF16>(s[2 * kc][2], s[2 * kc][3]),
                        pack2<BF16>(s[2 * kc + 1][0], s[2 * kc + 1][1]), pack2<BF16>(s[2 * kc + 1][2], s[2 * kc + 1][3])};
#pragma unroll
      for (int db = 0; db < DP / 8; db += 2) {
        uint32_t vb[4];
        const int vr = kc * 16 + ((lane >> 3) & 1) * 8 + (lane & 7), vc = (db + (lane >> 4)) * 8;
        ldmatrixT4(vb, &Vs[vr][vc]);
        mma16816<BF16>(o[db], pa, vb[0], vb[1]);
        mma16816<BF16>(o[db + 1], pa, vb[2], vb[3]);
      }
    }
    __syncthreads();
  }
  // finish: full row sums across the 4 lanes of a row, normalize, store
#pragma unroll
  for (int r = 0; r < 2; r++) {
    lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);
    lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);
  }
  const float inv0 = lrow[0] > 0.f ? 1.f / lrow[0] : 0.f, inv1 = lrow[1] > 0.f ? 1.f / lrow[1] : 0.f;
  uint16_t* O = (uint16_t*)a.o + (int64_t)bh * a.Lq * a.D;
#pragma unroll
  for (int db = 0; db < DP / 8; db++) {
    const int col = db * 8 + c2;
    if (col >= a.D) continue;
    const bool two = col + 1 < a.D;
    if (rowA < a.Lq) {
      uint32_t v = pack2<BF16>(o[db][0] * inv0, o[db][1] * inv0);
      uint16_t* p = O + (int64_t)rowA * a.D + col;
      if (two && (a.D % 2) == 0) *reinterpret_cast<uint32_t*>(p) = v;
      else { p[0] = (uint16_t)(v & 0xffff); if (two) p[1] = (uint16_t)(v >> 16); }
    }
    if (rowB < a.Lq) {
      uint32_t v = pack2<BF16>(o[db][2] * inv1, o[db][3] * inv1);
      uint16_t* p = O + (int64_t)rowB * a.D + col;
      if (two && (a.D % 2) == 0) *reinterpret_cast<uint32_t*>(p) = v;
      else { p[0] = (uint16_t)(v & 0xffff); if (two) p[1] = (uint16_t)(v >> 16); }
    }
  }
#endif
}


// ---------------------------------------------------------------- flash path, pipelined (aligned inputs)
// 128 query rows per CTA (8 warps x 16), K/V tiles of 64 keys double-buffered in dynamic shared memory and
// filled with cp.async while the previous tile is computed; K fragments via ldmatrix, V^T via ldmatrix.trans.
__device__ __forceinline__ float fastExp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
constexpr int F2_BM = 128, F2_BN = 64, F2_THREADS = 256;
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
__device__ __forceinline__ void cpAsync16(void* smem, const void* gmem, bool pred) {
  const uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
  const int n = pred ? 16 : 0;  // 0 = zero-fill without reading
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cpCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cpWait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
__device__ __forceinline__ void ldmatrix4(uint32_t* r, const void* p) {
  uint32_t addr = (uint32_t)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
#endif
/** Queue rows [r0, r0+ROWS) x [0, DP) of a (rows, D) matrix into shared memory (zero-filled past the ends). */
template <int DP, int ROWS>
__device__ __forceinline__ void asyncTile(uint16_t* dst, const uint16_t* src, int r0, int rows, int D) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int PER_ROW = DP / 8;
  for (int t = threadIdx.x; t < ROWS * PER_ROW; t += F2_THREADS) {
    const int r = t / PER_ROW, c = (t % PER_ROW) * 8, gr = r0 + r;
    const bool in = gr < rows && c < D;
    cpAsync16(dst + r * (DP + 8) + c, in ? src + (int64_t)gr * D + c : src, in);
  }
#endif
}

template <int DP, bool BF16>
__global__ void __launch_bounds__(F2_THREADS, 1) kFlash2(AttnArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(16) uint16_t sm[];
  constexpr int LD = DP + 8, TILE = F2_BN * LD;
  uint16_t* Kb = sm;               // [2][64][LD]
  uint16_t* Vb = sm + 2 * TILE;    // [2][64][LD]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c2 = (lane & 3) * 2;
  const int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, q0 = blockIdx.x * F2_BM;
  const uint16_t* Q = (const uint16_t*)a.q + (int64_t)bh * a.Lq * a.D;
  const uint16_t* K = (const uint16_t*)a.k + (int64_t)bh * a.Lk * a.D;
  const uint16_t* V = (const uint16_t*)a.v + (int64_t)bh * a.Lk * a.D;

  // Q (128 rows) staged through the K buffers, then held as A fragments
  asyncTile<DP, F2_BM>(Kb, Q, q0, a.Lq, a.D);
  cpCommit();
  cpWait<0>();
  __syncthreads();
  uint32_t qa[DP / 16][4];
#pragma unroll
  for (int kc = 0; kc < DP / 16; kc++) {
    const uint16_t* base = Kb + (warp * 16 + (lane & 15)) * LD + kc * 16 + (lane >> 4) * 8;
    uint32_t r[4];
    ldmatrix4(r, base);  // m0 rows 0-7 k0-7, m1 rows 8-15 k0-7, m2 rows 0-7 k8-15, m3 rows 8-15 k8-15
    qa[kc][0] = r[0], qa[kc][1] = r[1], qa[kc][2] = r[2], qa[kc][3] = r[3];
  }
  __syncthreads();

  float o[DP / 8][4];
#pragma unroll
  for (int i = 0; i < DP / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
  const float sl2 = a.scale * 1.4426950408889634f;
  const int rowA = q0 + warp * 16 + g, rowB = rowA + 8;
  int kvEnd = a.Lk;
  if (a.causal) kvEnd = min(a.Lk, q0 + F2_BM - 1 + (a.Lk - a.Lq) + 1);
  const int nt = kvEnd > 0 ? (kvEnd + F2_BN - 1) / F2_BN : 0;

  if (nt > 0) {
    asyncTile<DP, F2_BN>(Kb, K, 0, a.Lk, a.D);
    asyncTile<DP, F2_BN>(Vb, V, 0, a.Lk, a.D);
  }
  cpCommit();
  for (int t = 0; t < nt; t++) {
    const int kv0 = t * F2_BN, buf = t & 1;
    if (t + 1 < nt) {
      asyncTile<DP, F2_BN>(Kb + (buf ^ 1) * TILE, K, kv0 + F2_BN, a.Lk, a.D);
      asyncTile<DP, F2_BN>(Vb + (buf ^ 1) * TILE, V, kv0 + F2_BN, a.Lk, a.D);
    }
    cpCommit();
    cpWait<1>();
    __syncthreads();
    const uint16_t* Ks = Kb + buf * TILE;
    const uint16_t* Vs = Vb + buf * TILE;
    float s[F2_BN / 8][4];
#pragma unroll
    for (int nb = 0; nb < F2_BN / 8; nb++) {
      s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.f;
#pragma unroll
      for (int kc = 0; kc < DP / 16; kc += 2) {
        uint32_t kb[4];
        ldmatrix4(kb, Ks + (nb * 8 + (lane & 7)) * LD + kc * 16 + (lane >> 3) * 8);
        mma16816<BF16>(s[nb], qa[kc], kb[0], kb[1]);
        mma16816<BF16>(s[nb], qa[kc + 1], kb[2], kb[3]);
      }
    }
    // Masking, cheapest first: key-only masks (no query stride, e.g. padded text) are read once per column
    // and skipped when the warp's whole tile is allowed; causal only on tiles that cross the diagonal.
    const bool tail = kv0 + F2_BN > a.Lk;
    const bool causalHere = a.causal && kv0 + F2_BN - 1 > q0 + warp * 16 + (a.Lk - a.Lq);
    uint32_t colOk = 0xffffu;  // bit (nb * 2 + e&1): column kv0 + nb*8 + c2 + (e&1) may be attended
    bool general = false;
    if (a.mask && a.mstride[2] == 0) {
      const uint8_t* mrow = a.mask + b * a.mstride[0] + h * a.mstride[1];
#pragma unroll
      for (int nb = 0; nb < F2_BN / 8; nb++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          const int j = kv0 + nb * 8 + c2 + e;
          if (j >= a.Lk || !mrow[(int64_t)j * a.mstride[3]]) colOk &= ~(1u << (nb * 2 + e));
        }
    } else if (a.mask) {
      general = true;
    } else if (tail) {
#pragma unroll
      for (int nb = 0; nb < F2_BN / 8; nb++)
#pragma unroll
        for (int e = 0; e < 2; e++)
          if (kv0 + nb * 8 + c2 + e >= a.Lk) colOk &= ~(1u << (nb * 2 + e));
    }
    const bool needMask = general || causalHere || !__all_sync(0xffffffffu, colOk == 0xffffu);
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nb = 0; nb < F2_BN / 8; nb++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        float v = s[nb][e] * sl2;
        if (needMask) {
          const int j = kv0 + nb * 8 + c2 + (e & 1), i = e < 2 ? rowA : rowB;
          bool ok = (colOk >> (nb * 2 + (e & 1))) & 1u;
          if (causalHere && j > i + (a.Lk - a.Lq)) ok = false;
          if (general && ok && (j >= a.Lk || i >= a.Lq || !allowed(a, b, h, i, j))) ok = false;
          if (!ok) v = -INFINITY;
        }
        s[nb][e] = v;
        mx[e >> 1] = fmaxf(mx[e >> 1], v);
      }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float mn = fmaxf(mrow[r], mx[r]);
      const float base = mn == -INFINITY ? 0.f : mn;
      alpha[r] = fastExp2(mrow[r] - base);
      mrow[r] = mn;
      mx[r] = base;
    }
    float rs[2] = {0.f, 0.f};
#pragma unroll
    for (int nb = 0; nb < F2_BN / 8; nb++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const float p = fastExp2(s[nb][e] - mx[e >> 1]);
        s[nb][e] = p;
        rs[e >> 1] += p;
      }
    lrow[0] = lrow[0] * alpha[0] + rs[0];
    lrow[1] = lrow[1] * alpha[1] + rs[1];
#pragma unroll
    for (int i = 0; i < DP / 8; i++) {
      o[i][0] *= alpha[0];
      o[i][1] *= alpha[0];
      o[i][2] *= alpha[1];
      o[i][3] *= alpha[1];
    }
#pragma unroll
    for (int kc = 0; kc < F2_BN / 16; kc++) {
      uint32_t pa[4] = {pack2<BF16>(s[2 * kc][0], s[2 * kc][1]), pack2<BF16>(s[2 * kc][2], s[2 * kc][3]),
                        pack2<BF16>(s[2 * kc + 1][0], s[2 * kc + 1][1]), pack2<BF16>(s[2 * kc + 1][2], s[2 * kc + 1][3])};
#pragma unroll
      for (int db = 0; db < DP / 8; db += 2) {
        uint32_t vb[4];
        ldmatrixT4(vb, Vs + (kc * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LD + (db + (lane >> 4)) * 8);
        mma16816<BF16>(o[db], pa, vb[0], vb[1]);
        mma16816<BF16>(o[db + 1], pa, vb[2], vb[3]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < 2; r++) {
    lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);
    lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);
  }
  const float inv0 = lrow[0] > 0.f ? 1.f / lrow[0] : 0.f, inv1 = lrow[1] > 0.f ? 1.f / lrow[1] : 0.f;
  uint16_t* O = (uint16_t*)a.o + (int64_t)bh * a.Lq * a.D;
#pragma unroll
  for (int db = 0; db < DP / 8; db++) {
    const int col = db * 8 + c2;
    if (col >= a.D) continue;  // D % 8 == 0 here, so col + 1 < D too
    if (rowA < a.Lq) *reinterpret_cast<uint32_t*>(O + (int64_t)rowA * a.D + col) = pack2<BF16>(o[db][0] * inv0, o[db][1] * inv0);
    if (rowB < a.Lq) *reinterpret_cast<uint32_t*>(O + (int64_t)rowB * a.D + col) = pack2<BF16>(o[db][2] * inv1, o[db][3] * inv1);
  }
#endif
}
// ---------------------------------------------------------------- flash path v4: 32 query rows per warp
// Same pipeline as v2, but each warp owns two 16-row tiles, so every K / V^T fragment read from shared memory
// feeds two MMAs (v2 is bound by shared-memory bandwidth: one ldmatrix per two MMAs). 4 warps x 32 rows = 128
// rows per CTA, 32-key tiles (registers: Q fragments 64, O accumulators 128), 2 CTAs per SM. Masks are checked
// per element (simple code keeps this loop fast; masked calls go to v2, which reads key masks per column).
constexpr int F4_BM = 128, F4_BN = 32, F4_THREADS = 128;
template <int DP, int ROWS>
__device__ __forceinline__ void asyncTile4(uint16_t* dst, const uint16_t* src, int r0, int rows, int D) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int PER_ROW = DP / 8;
  for (int t = threadIdx.x; t < ROWS * PER_ROW; t += F4_THREADS) {
    const int r = t / PER_ROW, c = (t % PER_ROW) * 8, gr = r0 + r;
    const bool in = gr < rows && c < D;
    cpAsync16(dst + r * (DP + 8) + c, in ? src + (int64_t)gr * D + c : src, in);
  }
#endif
}
template <int DP, bool BF16>
__global__ void __launch_bounds__(F4_THREADS, 2) kFlash4(AttnArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(16) uint16_t sm[];
  constexpr int LD = DP + 8, TILE = F4_BN * LD;
  uint16_t* Kb = sm;             // [2][32][LD]
  uint16_t* Vb = sm + 2 * TILE;  // [2][32][LD]; Q (128 rows) is staged over all four
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c2 = (lane & 3) * 2;
  const int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, q0 = blockIdx.x * F4_BM;
  const uint16_t* Q = (const uint16_t*)a.q + (int64_t)bh * a.Lq * a.D;
  const uint16_t* K = (const uint16_t*)a.k + (int64_t)bh * a.Lk * a.D;
  const uint16_t* V = (const uint16_t*)a.v + (int64_t)bh * a.Lk * a.D;

  asyncTile4<DP, F4_BM>(Kb, Q, q0, a.Lq, a.D);
  cpCommit();
  cpWait<0>();
  __syncthreads();
  uint32_t qa[2][DP / 16][4];
#pragma unroll
  for (int mt = 0; mt < 2; mt++)
#pragma unroll
    for (int kc = 0; kc < DP / 16; kc++) ldmatrix4(qa[mt][kc], Kb + (warp * 32 + mt * 16 + (lane & 15)) * LD + kc * 16 + (lane >> 4) * 8);
  __syncthreads();

  float o[2][DP / 8][4];
#pragma unroll
  for (int mt = 0; mt < 2; mt++)
#pragma unroll
    for (int i = 0; i < DP / 8; i++) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.f;
  float mrow[2][2] = {{-INFINITY, -INFINITY}, {-INFINITY, -INFINITY}}, lrow[2][2] = {{0.f, 0.f}, {0.f, 0.f}};
  const float sl2 = a.scale * 1.4426950408889634f;
  const int row0 = q0 + warp * 32 + g;  // rows: row0 + mt*16 (+8)
  int kvEnd = a.Lk;
  if (a.causal) kvEnd = min(a.Lk, q0 + F4_BM - 1 + (a.Lk - a.Lq) + 1);
  const int nt = kvEnd > 0 ? (kvEnd + F4_BN - 1) / F4_BN : 0;

  if (nt > 0) {
    asyncTile4<DP, F4_BN>(Kb, K, 0, a.Lk, a.D);
    asyncTile4<DP, F4_BN>(Vb, V, 0, a.Lk, a.D);
  }
  cpCommit();
  for (int t = 0; t < nt; t++) {
    const int kv0 = t * F4_BN, buf = t & 1;
    if (t + 1 < nt) {
      asyncTile4<DP, F4_BN>(Kb + (buf ^ 1) * TILE, K, kv0 + F4_BN, a.Lk, a.D);
      asyncTile4<DP, F4_BN>(Vb + (buf ^ 1) * TILE, V, kv0 + F4_BN, a.Lk, a.D);
    }
    cpCommit();
    cpWait<1>();
    __syncthreads();
    const uint16_t* Ks = Kb + buf * TILE;
    const uint16_t* Vs = Vb + buf * TILE;
    float s[2][F4_BN / 8][4];
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
      for (int nb = 0; nb < F4_BN / 8; nb++) s[mt][nb][0] = s[mt][nb][1] = s[mt][nb][2] = s[mt][nb][3] = 0.f;
#pragma unroll
    for (int nb = 0; nb < F4_BN / 8; nb++)
#pragma unroll
      for (int kc = 0; kc < DP / 16; kc += 2) {
        uint32_t kb[4];
        ldmatrix4(kb, Ks + (nb * 8 + (lane & 7)) * LD + kc * 16 + (lane >> 3) * 8);
#pragma unroll
        for (int mt = 0; mt < 2; mt++) {
          mma16816<BF16>(s[mt][nb], qa[mt][kc], kb[0], kb[1]);
          mma16816<BF16>(s[mt][nb], qa[mt][kc + 1], kb[2], kb[3]);
        }
      }
    const bool needMask = a.mask || a.causal || kv0 + F4_BN > a.Lk;
    uint32_t pa[2][F4_BN / 16][4];
#pragma unroll
    for (int mt = 0; mt < 2; mt++) {
      const int rA = row0 + mt * 16, rB = rA + 8;
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int nb = 0; nb < F4_BN / 8; nb++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          float v = s[mt][nb][e] * sl2;
          if (needMask) {
            const int j = kv0 + nb * 8 + c2 + (e & 1), i = e < 2 ? rA : rB;
            if (j >= a.Lk || i >= a.Lq || !allowed(a, b, h, i, j)) v = -INFINITY;
          }
          s[mt][nb][e] = v;
          mx[e >> 1] = fmaxf(mx[e >> 1], v);
        }
      float alpha[2];
#pragma unroll
      for (int r = 0; r < 2; r++) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        const float mn = fmaxf(mrow[mt][r], mx[r]);
        const float base = mn == -INFINITY ? 0.f : mn;
        alpha[r] = fastExp2(mrow[mt][r] - base);
        mrow[mt][r] = mn;
        mx[r] = base;
      }
      float rs[2] = {0.f, 0.f};
#pragma unroll
      for (int nb = 0; nb < F4_BN / 8; nb++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const float p = fastExp2(s[mt][nb][e] - mx[e >> 1]);
          s[mt][nb][e] = p;
          rs[e >> 1] += p;
        }
      lrow[mt][0] = lrow[mt][0] * alpha[0] + rs[0];
      lrow[mt][1] = lrow[mt][1] * alpha[1] + rs[1];
#pragma unroll
      for (int i = 0; i < DP / 8; i++) {
        o[mt][i][0] *= alpha[0];
        o[mt][i][1] *= alpha[0];
        o[mt][i][2] *= alpha[1];
        o[mt][i][3] *= alpha[1];
      }
#pragma unroll
      for (int kc = 0; kc < F4_BN / 16; kc++) {
        pa[mt][kc][0] = pack2<BF16>(s[mt][2 * kc][0], s[mt][2 * kc][1]);
        pa[mt][kc][1] = pack2<BF16>(s[mt][2 * kc][2], s[mt][2 * kc][3]);
        pa[mt][kc][2] = pack2<BF16>(s[mt][2 * kc + 1][0], s[mt][2 * kc + 1][1]);
        pa[mt][kc][3] = pack2<BF16>(s[mt][2 * kc + 1][2], s[mt][2 * kc + 1][3]);
      }
    }
#pragma unroll
    for (int kc = 0; kc < F4_BN / 16; kc++)
#pragma unroll
      for (int db = 0; db < DP / 8; db += 2) {
        uint32_t vb[4];
        ldmatrixT4(vb, Vs + (kc * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LD + (db + (lane >> 4)) * 8);
#pragma unroll
        for (int mt = 0; mt < 2; mt++) {
          mma16816<BF16>(o[mt][db], pa[mt][kc], vb[0], vb[1]);
          mma16816<BF16>(o[mt][db + 1], pa[mt][kc], vb[2], vb[3]);
        }
      }
    __syncthreads();
  }
  uint16_t* O = (uint16_t*)a.o + (int64_t)bh * a.Lq * a.D;
#pragma unroll
  for (int mt = 0; mt < 2; mt++) {
    float l0 = lrow[mt][0], l1 = lrow[mt][1];
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
    const int rA = row0 + mt * 16, rB = rA + 8;
#pragma unroll
    for (int db = 0; db < DP / 8; db++) {
      const int col = db * 8 + c2;
      if (col >= a.D) continue;
      if (rA < a.Lq) *reinterpret_cast<uint32_t*>(O + (int64_t)rA * a.D + col) = pack2<BF16>(o[mt][db][0] * inv0, o[mt][db][1] * inv0);
      if (rB < a.Lq) *reinterpret_cast<uint32_t*>(O + (int64_t)rB * a.D + col) = pack2<BF16>(o[mt][db][2] * inv1, o[mt][db][3] * inv1);
    }
  }
#endif
}
template <int DP>
static bool flash4(const AttnArgs& a) {
  auto kern = a.dt == DT_BF16 ? kFlash4<DP, true> : kFlash4<DP, false>;
  static int ok[2] = {-1, -1};
  int& k = ok[a.dt == DT_BF16];
  const int smem = 4 * F4_BN * (DP + 8) * 2;
  if (k < 0) {
    cudaFuncAttributes attr;
    k = cudaFuncGetAttributes(&attr, kern) == cudaSuccess && attr.ptxVersion >= 80 && attr.binaryVersion >= 80 &&
        cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) == cudaSuccess;
    cudaGetLastError();
  }
  if (k != 1) return false;
  dim3 grid((a.Lq + F4_BM - 1) / F4_BM, a.B * a.H);
  kern<<<grid, F4_THREADS, smem, g_stream>>>(a);
  return true;
}

static int g_smMajor = -1;
static int smMajor() {
  if (g_smMajor < 0) {
    int dev = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&g_smMajor, cudaDevAttrComputeCapabilityMajor, dev);
  }
  return g_smMajor;
}

/** Whether the flash kernel was compiled for sm_80+ in the image the driver picked (a compute_75 PTX build has it empty). */
template <int DP, bool BF16>
static bool flashCompiled() {
  static int ok = -1;
  if (ok < 0) {
    cudaFuncAttributes attr;
    ok = cudaFuncGetAttributes(&attr, kFlash<DP, BF16>) == cudaSuccess && attr.ptxVersion >= 80 && attr.binaryVersion >= 80;
  }
  return ok == 1;
}
template <int DP>
static bool flash(const AttnArgs& a) {
  dim3 grid((a.Lq + FA_BM - 1) / FA_BM, a.B * a.H);
  if (a.dt == DT_BF16) {
    if (!flashCompiled<DP, true>()) return false;
    kFlash<DP, true><<<grid, 128, 0, g_stream>>>(a);
  } else {
    if (!flashCompiled<DP, false>()) return false;
    kFlash<DP, false><<<grid, 128, 0, g_stream>>>(a);
  }
  return true;
}

template <int DP>
static bool flash2(const AttnArgs& a) {
  auto kern = a.dt == DT_BF16 ? kFlash2<DP, true> : kFlash2<DP, false>;
  static int ok[2] = {-1, -1};
  int& k = ok[a.dt == DT_BF16];
  const int smem = 4 * F2_BN * (DP + 8) * 2;
  if (k < 0) {
    cudaFuncAttributes attr;
    k = cudaFuncGetAttributes(&attr, kern) == cudaSuccess && attr.ptxVersion >= 80 && attr.binaryVersion >= 80 &&
        cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) == cudaSuccess;
    cudaGetLastError();
  }
  if (k != 1) return false;
  dim3 grid((a.Lq + F2_BM - 1) / F2_BM, a.B * a.H);
  kern<<<grid, F2_THREADS, smem, g_stream>>>(a);
  return true;
}

bool launchAttention(const AttnArgs& a) {
  if ((int64_t)a.B * a.H * a.Lq == 0) return true;
  if (a.blhd) {
    // (B, L, H, D) operands: only the Hopper kernel reads them in place (its tensor maps take any strides)
    const bool ok = a.dt != DT_F32 && a.Lk > 0 && smMajor() == 9 && !getenv("FRAMEPACK_ATTN_GENERIC") && !getenv("FRAMEPACK_ATTN_V1") &&
                    !getenv("FRAMEPACK_ATTN_V2") && ((uintptr_t)a.q & 15) == 0 && ((uintptr_t)a.k & 15) == 0 && ((uintptr_t)a.v & 15) == 0 &&
                    ((uintptr_t)a.o & 15) == 0;
    return ok && launchAttentionSm90(a);
  }
  const bool half = a.dt == DT_BF16 || a.dt == DT_F16;
  if (half && a.D == a.Dv && a.D <= 128 && a.Lk > 0 && smMajor() >= 8 && getenv("FRAMEPACK_ATTN_GENERIC") == nullptr) {
    const bool aligned = a.D % 8 == 0 && ((uintptr_t)a.q & 15) == 0 && ((uintptr_t)a.k & 15) == 0 && ((uintptr_t)a.v & 15) == 0 && ((uintptr_t)a.o & 15) == 0;
    if (aligned && smMajor() == 9 && !getenv("FRAMEPACK_ATTN_V1") && !getenv("FRAMEPACK_ATTN_V2") && launchAttentionSm90(a)) return true;
    // unmasked (the DiT at batch 1, causal LLaMA): v4 with 32 rows per warp; masked: v2 (per-column key masks).
    // FRAMEPACK_ATTN_V2=1 / FRAMEPACK_ATTN_V1=1 force the older kernels (benchmarks, checks).
    if (aligned && a.D >= 48 && !a.mask && getenv("FRAMEPACK_ATTN_V2") == nullptr && getenv("FRAMEPACK_ATTN_V1") == nullptr) {
      bool ran4 = a.D <= 64 ? flash4<64>(a) : a.D <= 96 ? flash4<96>(a) : flash4<128>(a);
      if (ran4) {
        checkLaunch("attention (flash v4)");
        return true;
      }
    }
    if (aligned && a.D >= 48 && getenv("FRAMEPACK_ATTN_V1") == nullptr) {
      bool ran2 = a.D <= 64 ? flash2<64>(a) : a.D <= 96 ? flash2<96>(a) : flash2<128>(a);
      if (ran2) {
        checkLaunch("attention (flash, pipelined)");
        return true;
      }
    }
    bool ran = a.D <= 32 ? flash<32>(a) : a.D <= 64 ? flash<64>(a) : a.D <= 80 ? flash<80>(a) : flash<128>(a);
    if (ran) {
      checkLaunch("attention (flash)");
      return true;
    }
  }
  const int dmax = a.D > a.Dv ? a.D : a.Dv;
  if (dmax > 512) throw std::runtime_error("attention: head dim above 512 is not supported on CUDA");
  int64_t rows = (int64_t)a.B * a.H * a.Lq;
  unsigned blocks = (unsigned)((rows * 32 + 255) / 256);
  if (dmax <= 32) kAttnGeneric<1><<<blocks, 256, 0, g_stream>>>(a);
  else if (dmax <= 64) kAttnGeneric<2><<<blocks, 256, 0, g_stream>>>(a);
  else if (dmax <= 128) kAttnGeneric<4><<<blocks, 256, 0, g_stream>>>(a);
  else if (dmax <= 256) kAttnGeneric<8><<<blocks, 256, 0, g_stream>>>(a);
  else kAttnGeneric<16><<<blocks, 256, 0, g_stream>>>(a);  // the VAE mid-block attention: one head of 512 channels
  checkLaunch("attention");
  return true;
}
