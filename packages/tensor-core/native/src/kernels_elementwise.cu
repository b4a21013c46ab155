// Elementwise kernels: fill, cast, unary, binary/compare/where with broadcasting, affine/pow/clamp, rope.
#include "common.cuh"

template <int E> struct Bits;
template <> struct Bits<1> { using T = uint8_t; };
template <> struct Bits<2> { using T = uint16_t; };
template <> struct Bits<4> { using T = uint32_t; };
template <> struct Bits<8> { using T = unsigned long long; };

template <int E>
__global__ void kFill(void* p, int64_t n, uint64_t bits) {
  using T = typename Bits<E>::T;
  GRID_STRIDE(i, n) ((T*)p)[i] = (T)bits;
}
void launchFill(void* p, int64_t n, int esize, uint64_t bits) {
  if (n == 0) return;
  switch (esize) {
    case 1: kFill<1><<<gridFor(n), 256, 0, g_stream>>>(p, n, bits); break;
    case 2: kFill<2><<<gridFor(n), 256, 0, g_stream>>>(p, n, bits); break;
    case 4: kFill<4><<<gridFor(n), 256, 0, g_stream>>>(p, n, bits); break;
    default: kFill<8><<<gridFor(n), 256, 0, g_stream>>>(p, n, bits); break;
  }
  checkLaunch("fill");
}

template <typename C>
__global__ void kCast(const void* x, int dtIn, void* y, int dtOut, int64_t n) {
  GRID_STRIDE(i, n) st<C>(y, dtOut, i, ld<C>(x, dtIn, i));
}
void launchCast(const void* x, int dtIn, void* y, int dtOut, int64_t n) {
  if (n == 0) return;
  // integers on either side go through f64 so that i64 values survive exactly up to 2^53
  if (dtIsFloat(dtIn) && dtIsFloat(dtOut)) kCast<float><<<gridFor(n), 256, 0, g_stream>>>(x, dtIn, y, dtOut, n);
  else kCast<double><<<gridFor(n), 256, 0, g_stream>>>(x, dtIn, y, dtOut, n);
  checkLaunch("cast");
}

__device__ __forceinline__ float unaryOp(int op, float x) {
  switch (op) {
    case 0: return -x;
    case 1: return fabsf(x);
    case 2: return expf(x);
    case 3: return logf(x);
    case 4: return sqrtf(x);
    case 5: return 1.f / sqrtf(x);
    case 6: return x * x;
    case 7: return 1.f / x;
    case 8: return sinf(x);
    case 9: return cosf(x);
    case 10: return x / (1.f + expf(-x));
    case 11: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case 12: return 0.5f * x * (1.f + erff(x * 0.7071067811865476f));
    case 13: return x / (1.f + expf(-1.702f * x));
    case 14: return 1.f / (1.f + expf(-x));
    case 15: return tanhf(x);
    default: return x > 0.f ? x : 0.f;
  }
}
__global__ void kUnary(int op, const void* x, void* y, int dt, int64_t n) {
  GRID_STRIDE(i, n) st<float>(y, dt, i, unaryOp(op, ld<float>(x, dt, i)));
}
void launchUnary(int op, const void* x, void* y, int dt, int64_t n) {
  if (n == 0) return;
  if (launchVec(0, op, x, nullptr, y, dt, n, 0, 1, 1, 0, 0)) {
    const int64_t done = n / 8 * 8, es = dtSize(dt);
    if (done < n) kUnary<<<1, 32, 0, g_stream>>>(op, (const uint8_t*)x + done * es, (uint8_t*)y + done * es, dt, n - done);
  } else kUnary<<<gridFor(n), 256, 0, g_stream>>>(op, x, y, dt, n);
  checkLaunch("unary");
}

template <typename C>
__device__ __forceinline__ C binaryOp(int op, C a, C b, bool isInt) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: { C q = a / b; return isInt ? trunc(q) : q; }
    case 4: return (a > b || a != a) ? a : b;
    case 5: return (a < b || a != a) ? a : b;
    default: return pow(a, b);
  }
}
template <typename C>
__global__ void kBinary(int op, const void* a, const void* b, void* y, int dt, Bcast bc, int64_t n, bool isInt) {
  GRID_STRIDE(i, n) {
    int64_t off[2];
    bcastOffsets(bc, i, 2, off);
    st<C>(y, dt, i, binaryOp<C>(op, ld<C>(a, dt, off[0]), ld<C>(b, dt, off[1]), isInt));
  }
}
void launchBinary(int op, const void* a, const void* b, void* y, int dt, const Bcast& bc, int64_t n) {
  if (n == 0) return;
  if (dtIsFloat(dt)) kBinary<float><<<gridFor(n), 256, 0, g_stream>>>(op, a, b, y, dt, bc, n, false);
  else kBinary<double><<<gridFor(n), 256, 0, g_stream>>>(op, a, b, y, dt, bc, n, true);
  checkLaunch("binary");
}

template <typename C>
__global__ void kCompare(int op, const void* a, const void* b, void* y, int dt, Bcast bc, int64_t n) {
  GRID_STRIDE(i, n) {
    int64_t off[2];
    bcastOffsets(bc, i, 2, off);
    C x = ld<C>(a, dt, off[0]), z = ld<C>(b, dt, off[1]);
    bool r = op == 0 ? x == z : op == 1 ? x != z : op == 2 ? x < z : op == 3 ? x <= z : op == 4 ? x > z : x >= z;
    ((uint8_t*)y)[i] = r ? 1 : 0;
  }
}
void launchCompare(int op, const void* a, const void* b, void* y, int dt, const Bcast& bc, int64_t n) {
  if (n == 0) return;
  if (dtIsFloat(dt)) kCompare<float><<<gridFor(n), 256, 0, g_stream>>>(op, a, b, y, dt, bc, n);
  else kCompare<double><<<gridFor(n), 256, 0, g_stream>>>(op, a, b, y, dt, bc, n);
  checkLaunch("compare");
}

template <int E>
__global__ void kWhere(const uint8_t* c, const void* a, const void* b, void* y, Bcast bc, int64_t n) {
  using T = typename Bits<E>::T;
  GRID_STRIDE(i, n) {
    int64_t off[3];
    bcastOffsets(bc, i, 3, off);
    ((T*)y)[i] = c[off[0]] ? ((const T*)a)[off[1]] : ((const T*)b)[off[2]];
  }
}
void launchWhere(const void* c, const void* a, const void* b, void* y, int esize, const Bcast& bc, int64_t n) {
  if (n == 0) return;
  const uint8_t* cc = (const uint8_t*)c;
  switch (esize) {
    case 1: kWhere<1><<<gridFor(n), 256, 0, g_stream>>>(cc, a, b, y, bc, n); break;
    case 2: kWhere<2><<<gridFor(n), 256, 0, g_stream>>>(cc, a, b, y, bc, n); break;
    case 4: kWhere<4><<<gridFor(n), 256, 0, g_stream>>>(cc, a, b, y, bc, n); break;
    default: kWhere<8><<<gridFor(n), 256, 0, g_stream>>>(cc, a, b, y, bc, n); break;
  }
  checkLaunch("where");
}

// op 0: x*p0 + p1; 1: x^p0; 2: clamp(x, p0, p1)
template <typename C>
__global__ void kAffine(int op, const void* x, void* y, int dt, int64_t n, C p0, C p1) {
  GRID_STRIDE(i, n) {
    C v = ld<C>(x, dt, i);
    C r = op == 0 ? v * p0 + p1 : op == 1 ? (p0 == (C)2 ? v * v : pow(v, p0)) : (v < p0 ? p0 : v > p1 ? p1 : v);
    st<C>(y, dt, i, r);
  }
}
void launchAffine(int op, const void* x, void* y, int dt, int64_t n, double p0, double p1) {
  if (n == 0) return;
  if (launchVec(1, op, x, nullptr, y, dt, n, 0, 1, 1, p0, p1)) {
    const int64_t done = n / 8 * 8, es = dtSize(dt);
    if (done < n) kAffine<float><<<1, 32, 0, g_stream>>>(op, (const uint8_t*)x + done * es, (uint8_t*)y + done * es, dt, n - done, (float)p0, (float)p1);
    checkLaunch("affine");
    return;
  }
  if (dtIsFloat(dt)) kAffine<float><<<gridFor(n), 256, 0, g_stream>>>(op, x, y, dt, n, (float)p0, (float)p1);
  else kAffine<double><<<gridFor(n), 256, 0, g_stream>>>(op, x, y, dt, n, p0, p1);
  checkLaunch("affine");
}

// out = x * cos + rotate(x) * sin; cos/sin broadcast through bc (operand 0 = cos/sin, same strides)
__global__ void kRope(const void* x, const void* c, const void* s, void* y, int dt, Bcast bc, int64_t n, int64_t D, int half) {
  GRID_STRIDE(i, n) {
    int64_t off[1];
    bcastOffsets(bc, i, 1, off);
    int64_t d = i % D;
    float rot;
    if (!half) rot = (d & 1) == 0 ? -ld<float>(x, dt, i + 1) : ld<float>(x, dt, i - 1);
    else rot = d < D / 2 ? -ld<float>(x, dt, i + D / 2) : ld<float>(x, dt, i - D / 2);
    st<float>(y, dt, i, ld<float>(x, dt, i) * ld<float>(c, dt, off[0]) + rot * ld<float>(s, dt, off[0]));
  }
}
void launchRope(const void* x, const void* c, const void* s, void* y, int dt, const Bcast& bc, int64_t n, int64_t D, int half) {
  if (n == 0) return;
  kRope<<<gridFor(n), 256, 0, g_stream>>>(x, c, s, y, dt, bc, n, D, half);
  checkLaunch("rope");
}

// ---- vectorized fast paths (8 elements per thread, 16-byte accesses) for contiguous float tensors:
// unary, affine/pow/clamp, and binary ops where b is the same shape, a scalar, or a [P, 1, Q] row broadcast
// of a [P, M, Q] output (Q % 8 == 0: the DiT's modulation/gating shapes). Tails and misaligned views use the
// generic kernels above.
template <int DT> struct Vec8;
template <> struct Vec8<DT_BF16> {
  static __device__ __forceinline__ void load(const void* p, int64_t i, float* f) {
    const uint4 v = *reinterpret_cast<const uint4*>((const uint16_t*)p + i);
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; k++) f[2 * k] = __uint_as_float(w[k] << 16), f[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
  }
  static __device__ __forceinline__ void store(void* p, int64_t i, const float* f) {
    uint32_t w[4];
#pragma unroll
    for (int k = 0; k < 4; k++) w[k] = (uint32_t)f2bf(f[2 * k]) | ((uint32_t)f2bf(f[2 * k + 1]) << 16);
    *reinterpret_cast<uint4*>((uint16_t*)p + i) = make_uint4(w[0], w[1], w[2], w[3]);
  }
};
template <> struct Vec8<DT_F16> {
  static __device__ __forceinline__ void load(const void* p, int64_t i, float* f) {
    const uint4 v = *reinterpret_cast<const uint4*>((const __half*)p + i);
    const __half2* h = reinterpret_cast<const __half2*>(&v);
#pragma unroll
    for (int k = 0; k < 4; k++) {
      const float2 t = __half22float2(h[k]);
      f[2 * k] = t.x, f[2 * k + 1] = t.y;
    }
  }
  static __device__ __forceinline__ void store(void* p, int64_t i, const float* f) {
    uint4 v;
    __half2* h = reinterpret_cast<__half2*>(&v);
#pragma unroll
    for (int k = 0; k < 4; k++) h[k] = __floats2half2_rn(f[2 * k], f[2 * k + 1]);
    *reinterpret_cast<uint4*>((__half*)p + i) = v;
  }
};
template <> struct Vec8<DT_F32> {
  static __device__ __forceinline__ void load(const void* p, int64_t i, float* f) {
    const float4 a = *reinterpret_cast<const float4*>((const float*)p + i), b = *reinterpret_cast<const float4*>((const float*)p + i + 4);
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
  }
  static __device__ __forceinline__ void store(void* p, int64_t i, const float* f) {
    *reinterpret_cast<float4*>((float*)p + i) = make_float4(f[0], f[1], f[2], f[3]);
    *reinterpret_cast<float4*>((float*)p + i + 4) = make_float4(f[4], f[5], f[6], f[7]);
  }
};

// kind: 0 unary(op), 1 affine(op, p0, p1), 2 binary(op) with b mode bm (0 same, 1 scalar, 2 row [P,1,Q])
template <int DT>
__global__ void kVec(int kind, int op, const void* a, const void* b, void* y, int64_t n8, int bm, int64_t M, int64_t Q, float p0, float p1) {
  GRID_STRIDE(v, n8) {
    const int64_t i = v * 8;
    float x[8], z[8];
    Vec8<DT>::load(a, i, x);
    if (kind == 2) {
      if (bm == 0) Vec8<DT>::load(b, i, z);
      else if (bm == 1) {
        const float s = ld<float>(b, DT, 0);
#pragma unroll
        for (int k = 0; k < 8; k++) z[k] = s;
      } else Vec8<DT>::load(b, (i / (M * Q)) * Q + i % Q, z);
#pragma unroll
      for (int k = 0; k < 8; k++) x[k] = binaryOp<float>(op, x[k], z[k], false);
    } else if (kind == 1) {
#pragma unroll
      for (int k = 0; k < 8; k++) x[k] = op == 0 ? x[k] * p0 + p1 : op == 1 ? (p0 == 2.f ? x[k] * x[k] : powf(x[k], p0)) : (x[k] < p0 ? p0 : x[k] > p1 ? p1 : x[k]);
    } else {
#pragma unroll
      for (int k = 0; k < 8; k++) x[k] = unaryOp(op, x[k]);
    }
    Vec8<DT>::store(y, i, x);
  }
}
/** Runs the vectorized kernel over the first n - n % 8 elements; false when the inputs do not qualify. */
bool launchVec(int kind, int op, const void* a, const void* b, void* y, int dt, int64_t n, int bm, int64_t M, int64_t Q, double p0, double p1) {
  if (!dtIsFloat(dt) || n < 8) return false;
  const uintptr_t al = (uintptr_t)a | (uintptr_t)y | (kind == 2 && bm != 1 ? (uintptr_t)b : 0);
  if (al & 15) return false;
  if (kind == 2 && bm == 2 && Q % 8) return false;
  const int64_t n8 = n / 8;
  const float f0 = (float)p0, f1 = (float)p1;
  switch (dt) {
    case DT_BF16: kVec<DT_BF16><<<gridFor(n8), 256, 0, g_stream>>>(kind, op, a, b, y, n8, bm, M, Q, f0, f1); break;
    case DT_F16: kVec<DT_F16><<<gridFor(n8), 256, 0, g_stream>>>(kind, op, a, b, y, n8, bm, M, Q, f0, f1); break;
    default: kVec<DT_F32><<<gridFor(n8), 256, 0, g_stream>>>(kind, op, a, b, y, n8, bm, M, Q, f0, f1); break;
  }
  checkLaunch("elementwise (vectorized)");
  return true;
}
