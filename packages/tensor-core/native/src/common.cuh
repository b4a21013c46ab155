// Shared device helpers: dtype codes (the TS DType order), f32 load/store for every storage dtype,
// broadcast index math, and error checks. Everything computes in f32 (or f64 for integer dtypes).
#pragma once
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <cstring>
#include <cstdlib>

enum DT : int { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2, DT_I32 = 3, DT_I64 = 4, DT_U8 = 5, DT_BOOL = 6 };
inline int dtSize(int dt) { return dt == DT_F32 || dt == DT_I32 ? 4 : dt == DT_I64 ? 8 : dt == DT_U8 || dt == DT_BOOL ? 1 : 2; }
inline bool dtIsFloat(int dt) { return dt <= DT_BF16; }

constexpr int MAXD = 10;

/** Output shape plus, per operand, element strides into it (0 on broadcast dims). mode: 0 same index, 1 scalar, 2 strided. */
struct Bcast {
  int nd;
  int mode[3];
  int64_t shape[MAXD];
  int64_t st[3][MAXD];
};

#ifdef __CUDACC__
// ---- conversions (round to nearest even, as torch; bf16 by bit manipulation so every arch can use it)
__device__ __forceinline__ float bf2f(uint16_t b) { return __uint_as_float(((uint32_t)b) << 16); }
__device__ __forceinline__ uint16_t f2bf(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (uint16_t)(((u >> 16) | 0x40) & 0xffff);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

template <typename C>
__device__ __forceinline__ C ld(const void* p, int dt, int64_t i) {
  switch (dt) {
    case DT_F32: return (C)((const float*)p)[i];
    case DT_F16: return (C)__half2float(((const __half*)p)[i]);
    case DT_BF16: return (C)bf2f(((const uint16_t*)p)[i]);
    case DT_I32: return (C)((const int32_t*)p)[i];
    case DT_I64: return (C)((const long long*)p)[i];
    default: return (C)((const uint8_t*)p)[i];
  }
}
template <typename C>
__device__ __forceinline__ void st(void* p, int dt, int64_t i, C v) {
  switch (dt) {
    case DT_F32: ((float*)p)[i] = (float)v; break;
    case DT_F16: ((__half*)p)[i] = __float2half_rn((float)v); break;
    case DT_BF16: ((uint16_t*)p)[i] = f2bf((float)v); break;
    case DT_I32: ((int32_t*)p)[i] = (int32_t)v; break;
    case DT_I64: ((long long*)p)[i] = (long long)v; break;
    case DT_U8: ((uint8_t*)p)[i] = (uint8_t)(int64_t)v; break;
    default: ((uint8_t*)p)[i] = v != (C)0 ? 1 : 0; break;
  }
}

__device__ __forceinline__ void bcastOffsets(const Bcast& b, int64_t i, int nops, int64_t* off) {
  for (int k = 0; k < nops; k++) off[k] = b.mode[k] == 0 ? i : 0;
  bool any = false;
  for (int k = 0; k < nops; k++) any |= b.mode[k] == 2;
  if (!any) return;
  int64_t r = i;
  for (int d = b.nd - 1; d >= 0; d--) {
    int64_t c = r % b.shape[d];
    r /= b.shape[d];
    for (int k = 0; k < nops; k++)
      if (b.mode[k] == 2) off[k] += c * b.st[k][d];
  }
}

#endif  // __CUDACC__

inline void checkLaunch(const char* what) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}
inline void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}
inline unsigned gridFor(int64_t n, int threads = 256) {
  int64_t b = (n + threads - 1) / threads;
  if (b > 65535LL * 32) b = 65535LL * 32;
  return (unsigned)(b < 1 ? 1 : b);
}
#define GRID_STRIDE(i, n) for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/** The stream every op runs on (legacy default stream unless set). */
extern cudaStream_t g_stream;

// ---- entry points (kernels_*.cu), all asynchronous on g_stream
struct Strided { int nd; int64_t shape[MAXD]; int64_t src[MAXD]; int64_t dst[MAXD]; };
void launchFill(void* p, int64_t n, int esize, uint64_t bits);
void launchCast(const void* x, int dtIn, void* y, int dtOut, int64_t n);
bool launchVec(int kind, int op, const void* a, const void* b, void* y, int dt, int64_t n, int bm, int64_t M, int64_t Q, double p0, double p1);
void launchUnary(int op, const void* x, void* y, int dt, int64_t n);
void launchBinary(int op, const void* a, const void* b, void* y, int dt, const Bcast& bc, int64_t n);
void launchCompare(int op, const void* a, const void* b, void* y, int dt, const Bcast& bc, int64_t n);
void launchWhere(const void* c, const void* a, const void* b, void* y, int esize, const Bcast& bc, int64_t n);
void launchAffine(int op, const void* x, void* y, int dt, int64_t n, double p0, double p1);
void launchRope(const void* x, const void* c, const void* s, void* y, int dt, const Bcast& bc, int64_t n, int64_t D, int half);
void launchStrided(const void* x, void* y, int esize, const Strided& s, int64_t n);
void launchPad(const void* x, void* y, int esize, int nd, const int64_t* outShape, const int64_t* inShape, const int64_t* before, int replicate, uint64_t bits, int64_t n);
void launchIndexSelect(const void* x, void* y, int esize, const void* idx, int idt, int64_t outer, int64_t len, int64_t inner, int64_t nidx, int* flag);
void launchGather(const void* x, void* y, int esize, const void* idx, int idt, int nd, const int64_t* idxShape, const int64_t* inShape, int axis, int64_t n, int* flag);
void launchReduce(int op, const void* x, void* y, int dt, int64_t outer, int64_t len, int64_t inner);
void launchVariance(const void* x, void* y, int dt, int64_t outer, int64_t len, int64_t inner, double correction);
void launchSoftmax(const void* x, void* y, int dt, int64_t rows, int64_t d);
void launchLayerNorm(const void* x, const void* w, const void* b, void* y, int dt, int64_t rows, int64_t d, float eps, int rms);
void launchGroupNorm(const void* x, const void* w, const void* b, void* y, int dt, int64_t n, int64_t c, int64_t spatial, int64_t groups, float eps);
struct AttnArgs {
  const void *q, *k, *v;
  void* o;
  const uint8_t* mask;
  int64_t mstride[4];  // element strides of the mask over (B, H, Lq, Lk), 0 = broadcast
  int dt, B, H, Lq, Lk, D, Dv, causal;
  float scale;
  int blhd;  // 1: q/k/v/o are (B, L, H, D) instead of (B, H, L, D) (the Hopper path only: launchAttention returns false elsewhere)
};
/** False only for a (B, L, H, D) request that no kernel here serves (the caller permutes and asks again). */
bool launchAttention(const AttnArgs& a);
bool launchAttentionSm90(const AttnArgs& a);
/** im2col of one sample's output columns [p0, p0 + pc): col (K, pc) with K = (ci, kt, kh, kw). */
void launchIm2col(const void* x, void* col, int dt, const int64_t* xs, const int64_t* ws, const int64_t* os, const int* stride, const int* pad, int64_t n, int64_t p0, int64_t pc, int64_t Kp);
void launchExtendWeight(const void* w, const void* b, void* w2, int dt, int64_t Co, int64_t K, int64_t Kp);
/** y[n, c, :] += b[c] over (N, C, plane). */
void launchChannelBias(void* y, const void* b, int dt, int64_t N, int64_t C, int64_t plane);
bool launchConv3dMma(const void* x, const void* w, const void* b, void* y, int dt, const int64_t* xs, const int64_t* ws, const int64_t* os, const int* stride, const int* pad);
void launchConv3d(const void* x, const void* w, const void* b, void* y, int dt, const int64_t* xs, const int64_t* ws, const int64_t* os, const int* stride, const int* pad);
