// Data movement: strided copies (permute, slice, upsample, concat, writeRegion), pad, index-select, gather.
#include "common.cuh"

template <int E> struct U;
template <> struct U<1> { using T = uint8_t; };
template <> struct U<2> { using T = uint16_t; };
template <> struct U<4> { using T = uint32_t; };
template <> struct U<8> { using T = unsigned long long; };
template <> struct U<16> { using T = uint4; };

template <int E>
__global__ void kStrided(const void* x, void* y, Strided s, int64_t n) {
  using T = typename U<E>::T;
  GRID_STRIDE(i, n) {
    int64_t r = i, so = 0, dof = 0;
    for (int d = s.nd - 1; d >= 0; d--) {
      int64_t c = r % s.shape[d];
      r /= s.shape[d];
      so += c * s.src[d];
      dof += c * s.dst[d];
    }
    ((T*)y)[dof] = ((const T*)x)[so];
  }
}
void launchStrided(const void* x, void* y, int esize, const Strided& s, int64_t n) {
  if (n == 0) return;
  // 16-byte moves when the innermost dim is contiguous on both sides and every offset stays 16-byte aligned
  const int64_t vw = 16 / esize;
  if (esize < 16 && s.nd >= 1 && s.src[s.nd - 1] == 1 && s.dst[s.nd - 1] == 1 && s.shape[s.nd - 1] % vw == 0 &&
      (((uintptr_t)x | (uintptr_t)y) & 15) == 0) {
    bool ok = true;
    for (int d = 0; d < s.nd - 1; d++) ok &= s.src[d] % vw == 0 && s.dst[d] % vw == 0;
    if (ok) {
      Strided v = s;
      v.shape[s.nd - 1] /= vw;
      for (int d = 0; d < s.nd - 1; d++) v.src[d] /= vw, v.dst[d] /= vw;
      const int64_t nv = n / vw;
      kStrided<16><<<gridFor(nv), 256, 0, g_stream>>>(x, y, v, nv);
      checkLaunch("strided copy (16-byte)");
      return;
    }
  }
  switch (esize) {
    case 1: kStrided<1><<<gridFor(n), 256, 0, g_stream>>>(x, y, s, n); break;
    case 2: kStrided<2><<<gridFor(n), 256, 0, g_stream>>>(x, y, s, n); break;
    case 4: kStrided<4><<<gridFor(n), 256, 0, g_stream>>>(x, y, s, n); break;
    default: kStrided<8><<<gridFor(n), 256, 0, g_stream>>>(x, y, s, n); break;
  }
  checkLaunch("strided copy");
}

struct PadArgs { int nd; int64_t out[MAXD]; int64_t in[MAXD]; int64_t before[MAXD]; };
template <int E>
__global__ void kPad(const void* x, void* y, PadArgs p, int replicate, uint64_t bits, int64_t n) {
  using T = typename U<E>::T;
  GRID_STRIDE(i, n) {
    int64_t r = i, off = 0, stride = 1;
    bool inside = true;
    for (int d = p.nd - 1; d >= 0; d--) {
      int64_t c = r % p.out[d] - p.before[d];
      r /= p.out[d];
      if (c < 0 || c >= p.in[d]) {
        inside = false;
        c = c < 0 ? 0 : p.in[d] - 1;
      }
      off += c * stride;
      stride *= p.in[d];
    }
    ((T*)y)[i] = inside || replicate ? ((const T*)x)[off] : (T)bits;
  }
}
void launchPad(const void* x, void* y, int esize, int nd, const int64_t* outShape, const int64_t* inShape, const int64_t* before, int replicate, uint64_t bits, int64_t n) {
  if (n == 0) return;
  PadArgs p;
  p.nd = nd;
  for (int d = 0; d < nd; d++) p.out[d] = outShape[d], p.in[d] = inShape[d], p.before[d] = before[d];
  switch (esize) {
    case 1: kPad<1><<<gridFor(n), 256, 0, g_stream>>>(x, y, p, replicate, bits, n); break;
    case 2: kPad<2><<<gridFor(n), 256, 0, g_stream>>>(x, y, p, replicate, bits, n); break;
    case 4: kPad<4><<<gridFor(n), 256, 0, g_stream>>>(x, y, p, replicate, bits, n); break;
    default: kPad<8><<<gridFor(n), 256, 0, g_stream>>>(x, y, p, replicate, bits, n); break;
  }
  checkLaunch("pad");
}

__device__ __forceinline__ int64_t ldIdx(const void* idx, int idt, int64_t j) {
  return idt == DT_I64 ? (int64_t)((const long long*)idx)[j] : (int64_t)((const int32_t*)idx)[j];
}

template <int E>
__global__ void kIndexSelect(const void* x, void* y, const void* idx, int idt, int64_t outer, int64_t len, int64_t inner, int64_t nidx, int* flag) {
  using T = typename U<E>::T;
  int64_t n = outer * nidx * inner;
  GRID_STRIDE(i, n) {
    int64_t in_ = i % inner, r = i / inner, j = r % nidx, o = r / nidx;
    int64_t k = ldIdx(idx, idt, j);
    if (k < 0) k += len;
    if (k < 0 || k >= len) {
      *flag = 1;
      ((T*)y)[i] = 0;
      continue;
    }
    ((T*)y)[i] = ((const T*)x)[(o * len + k) * inner + in_];
  }
}
void launchIndexSelect(const void* x, void* y, int esize, const void* idx, int idt, int64_t outer, int64_t len, int64_t inner, int64_t nidx, int* flag) {
  int64_t n = outer * nidx * inner;
  if (n == 0) return;
  switch (esize) {
    case 1: kIndexSelect<1><<<gridFor(n), 256, 0, g_stream>>>(x, y, idx, idt, outer, len, inner, nidx, flag); break;
    case 2: kIndexSelect<2><<<gridFor(n), 256, 0, g_stream>>>(x, y, idx, idt, outer, len, inner, nidx, flag); break;
    case 4: kIndexSelect<4><<<gridFor(n), 256, 0, g_stream>>>(x, y, idx, idt, outer, len, inner, nidx, flag); break;
    default: kIndexSelect<8><<<gridFor(n), 256, 0, g_stream>>>(x, y, idx, idt, outer, len, inner, nidx, flag); break;
  }
  checkLaunch("indexSelect");
}

struct GatherArgs { int nd, axis; int64_t ishape[MAXD]; int64_t xstride[MAXD]; int64_t len; };
template <int E>
__global__ void kGather(const void* x, void* y, const void* idx, int idt, GatherArgs g, int64_t n, int* flag) {
  using T = typename U<E>::T;
  GRID_STRIDE(i, n) {
    int64_t r = i, off = 0;
    bool bad = false;
    for (int d = g.nd - 1; d >= 0; d--) {
      int64_t c = r % g.ishape[d];
      r /= g.ishape[d];
      if (d == g.axis) {
        c = ldIdx(idx, idt, i);
        if (c < 0) c += g.len;
        if (c < 0 || c >= g.len) bad = true;
      }
      off += c * g.xstride[d];
    }
    if (bad) {
      *flag = 1;
      ((T*)y)[i] = 0;
    } else ((T*)y)[i] = ((const T*)x)[off];
  }
}
void launchGather(const void* x, void* y, int esize, const void* idx, int idt, int nd, const int64_t* idxShape, const int64_t* inShape, int axis, int64_t n, int* flag) {
  if (n == 0) return;
  GatherArgs g;
  g.nd = nd;
  g.axis = axis;
  g.len = inShape[axis];
  int64_t s = 1;
  for (int d = nd - 1; d >= 0; d--) g.ishape[d] = idxShape[d], g.xstride[d] = s, s *= inShape[d];
  switch (esize) {
    case 1: kGather<1><<<gridFor(n), 256, 0, g_stream>>>(x, y, idx, idt, g, n, flag); break;
    case 2: kGather<2><<<gridFor(n), 256, 0, g_stream>>>(x, y, idx, idt, g, n, flag); break;
    case 4: kGather<4><<<gridFor(n), 256, 0, g_stream>>>(x, y, idx, idt, g, n, flag); break;
    default: kGather<8><<<gridFor(n), 256, 0, g_stream>>>(x, y, idx, idt, g, n, flag); break;
  }
  checkLaunch("gather");
}
