// Reductions along one axis, variance, softmax, layer/rms norm (one block per row), group norm.
#include "common.cuh"
#include <cfloat>

template <typename T>
__device__ __forceinline__ T warpSum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
/** Sum over the block (blockDim multiple of 32, <= 1024); every thread gets the result. */
template <typename T>
__device__ T blockSum(T v, T* sh) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warpSum(v);
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  T r = lane < nw ? sh[lane] : (T)0;
  r = warpSum(r);
  return r;
}
__device__ float blockMax(float v, float* sh) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warpMax(v);
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  float r = lane < nw ? sh[lane] : -INFINITY;
  return warpMax(r);
}

// op: 0 sum, 1 mean, 2 max, 3 min, 4 argmax. One thread per (outer, inner) output; f64 accumulation.
__global__ void kReduceStrided(int op, const void* x, void* y, int dt, int64_t outer, int64_t len, int64_t inner) {
  int64_t n = outer * inner;
  GRID_STRIDE(i, n) {
    int64_t o = i / inner, in_ = i % inner, base = o * len * inner + in_;
    double acc = op == 2 || op == 4 ? -INFINITY : op == 3 ? INFINITY : 0.0;
    int64_t arg = 0;
    for (int64_t j = 0; j < len; j++) {
      double v = ld<double>(x, dt, base + j * inner);
      if (op <= 1) acc += v;
      else if (op == 2 || op == 4) {
        if (v > acc || v != v) { if (!(acc != acc)) { acc = v; arg = j; } }
      } else if (v < acc || v != v) { if (!(acc != acc)) acc = v; }
    }
    if (op == 4) ((long long*)y)[i] = arg;
    else st<double>(y, dt, i, op == 1 ? acc / (double)len : acc);
  }
}
// Same for contiguous rows (inner == 1): one block per row.
__global__ void kReduceRows(int op, const void* x, void* y, int dt, int64_t len) {
  __shared__ double shd[32];
  int64_t row = blockIdx.x;
  const int64_t base = row * len;
  if (op <= 1) {
    double acc = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) acc += ld<double>(x, dt, base + j);
    acc = blockSum<double>(acc, shd);
    if (threadIdx.x == 0) st<double>(y, dt, row, op == 1 ? acc / (double)len : acc);
    return;
  }
  // max / min / argmax: best value and its first index per thread, then a shared-memory tree
  double best = op == 3 ? INFINITY : -INFINITY;
  long long arg = -1;
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
    double v = ld<double>(x, dt, base + j);
    bool better = arg < 0 || (op == 3 ? v < best : v > best) || (v != v && best == best);
    if (better) best = v, arg = j;
  }
  __shared__ double bv[1024];
  __shared__ long long bi[1024];
  bv[threadIdx.x] = best;
  bi[threadIdx.x] = arg;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      double v = bv[threadIdx.x + s];
      long long j = bi[threadIdx.x + s];
      double b = bv[threadIdx.x];
      long long k = bi[threadIdx.x];
      bool take = j >= 0 && (k < 0 || (b != b ? false : (v != v) || (op == 3 ? v < b : v > b) || (v == b && j < k)));
      if (take) bv[threadIdx.x] = v, bi[threadIdx.x] = j;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if (op == 4) ((long long*)y)[row] = bi[0] < 0 ? 0 : bi[0];
    else st<double>(y, dt, row, bv[0]);
  }
}
void launchReduce(int op, const void* x, void* y, int dt, int64_t outer, int64_t len, int64_t inner) {
  if (outer * inner == 0) return;
  if (inner == 1 && len >= 64) kReduceRows<<<(unsigned)outer, 256, 0, g_stream>>>(op, x, y, dt, len);
  else kReduceStrided<<<gridFor(outer * inner), 256, 0, g_stream>>>(op, x, y, dt, outer, len, inner);
  checkLaunch("reduce");
}

__global__ void kVariance(const void* x, void* y, int dt, int64_t outer, int64_t len, int64_t inner, double corr) {
  int64_t n = outer * inner;
  GRID_STRIDE(i, n) {
    int64_t o = i / inner, in_ = i % inner, base = o * len * inner + in_;
    double m = 0;
    for (int64_t j = 0; j < len; j++) m += ld<double>(x, dt, base + j * inner);
    m /= (double)len;
    double s = 0;
    for (int64_t j = 0; j < len; j++) {
      double d = ld<double>(x, dt, base + j * inner) - m;
      s += d * d;
    }
    double den = (double)len - corr;
    st<double>(y, dt, i, s / (den > 0 ? den : 0));
  }
}
void launchVariance(const void* x, void* y, int dt, int64_t outer, int64_t len, int64_t inner, double correction) {
  if (outer * inner == 0) return;
  kVariance<<<gridFor(outer * inner), 256, 0, g_stream>>>(x, y, dt, outer, len, inner, correction);
  checkLaunch("variance");
}

__global__ void kSoftmax(const void* x, void* y, int dt, int64_t d) {
  __shared__ float sh[32];
  const int64_t base = (int64_t)blockIdx.x * d;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) m = fmaxf(m, ld<float>(x, dt, base + j));
  m = blockMax(m, sh);
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) s += expf(ld<float>(x, dt, base + j) - m);
  s = blockSum<float>(s, sh);
  float inv = 1.f / s;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) st<float>(y, dt, base + j, expf(ld<float>(x, dt, base + j) - m) * inv);
}
void launchSoftmax(const void* x, void* y, int dt, int64_t rows, int64_t d) {
  if (rows * d == 0) return;
  kSoftmax<<<(unsigned)rows, d >= 1024 ? 512 : 128, 0, g_stream>>>(x, y, dt, d);
  checkLaunch("softmax");
}

// Layer norm (rms = 0) or RMS norm (rms = 1) over contiguous rows of length d; two passes over the row.
__global__ void kNorm(const void* x, const void* w, const void* b, void* y, int dt, int64_t d, float eps, int rms) {
  __shared__ float sh[32];
  const int64_t base = (int64_t)blockIdx.x * d;
  float mean = 0.f;
  if (!rms) {
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) s += ld<float>(x, dt, base + j);
    mean = blockSum<float>(s, sh) / (float)d;
  }
  float q = 0.f;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    float v = ld<float>(x, dt, base + j) - mean;
    q += v * v;
  }
  float inv = rsqrtf(blockSum<float>(q, sh) / (float)d + eps);
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    float v = (ld<float>(x, dt, base + j) - mean) * inv;
    if (w) v *= ld<float>(w, dt, j);
    if (b) v += ld<float>(b, dt, j);
    st<float>(y, dt, base + j, v);
  }
}
// Vectorized layer/RMS norm: one warp per row, 8 elements (16 bytes) per lane access; the row is read three
// times (sum, squared deviations, write) and stays in L1 between passes.
template <int DT> struct V8;
template <> struct V8<DT_BF16> {
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
template <> struct V8<DT_F16> {
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
template <> struct V8<DT_F32> {
  static __device__ __forceinline__ void load(const void* p, int64_t i, float* f) {
    const float4 a = *reinterpret_cast<const float4*>((const float*)p + i), b = *reinterpret_cast<const float4*>((const float*)p + i + 4);
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
  }
  static __device__ __forceinline__ void store(void* p, int64_t i, const float* f) {
    *reinterpret_cast<float4*>((float*)p + i) = make_float4(f[0], f[1], f[2], f[3]);
    *reinterpret_cast<float4*>((float*)p + i + 4) = make_float4(f[4], f[5], f[6], f[7]);
  }
};
template <int DT>
__global__ void kNormVec(const void* x, const void* w, const void* b, void* y, int64_t rows, int64_t d, float eps, int rms) {
  const int64_t row = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const int64_t base = row * d;
  float v[8];
  float mean = 0.f;
  if (!rms) {
    float s = 0.f;
    for (int64_t j = lane * 8; j < d; j += 256) {
      V8<DT>::load(x, base + j, v);
#pragma unroll
      for (int k = 0; k < 8; k++) s += v[k];
    }
    mean = warpSum(s) / (float)d;
  }
  float q = 0.f;
  for (int64_t j = lane * 8; j < d; j += 256) {
    V8<DT>::load(x, base + j, v);
#pragma unroll
    for (int k = 0; k < 8; k++) q += (v[k] - mean) * (v[k] - mean);
  }
  const float inv = rsqrtf(warpSum(q) / (float)d + eps);
  float wv[8], bv[8];
  for (int64_t j = lane * 8; j < d; j += 256) {
    V8<DT>::load(x, base + j, v);
    if (w) V8<DT>::load(w, j, wv);
    if (b) V8<DT>::load(b, j, bv);
#pragma unroll
    for (int k = 0; k < 8; k++) {
      float o = (v[k] - mean) * inv;
      if (w) o *= wv[k];
      if (b) o += bv[k];
      v[k] = o;
    }
    V8<DT>::store(y, base + j, v);
  }
}

void launchLayerNorm(const void* x, const void* w, const void* b, void* y, int dt, int64_t rows, int64_t d, float eps, int rms) {
  if (rows * d == 0) return;
  const uintptr_t al = (uintptr_t)x | (uintptr_t)y | (uintptr_t)w | (uintptr_t)b;
  if (dtIsFloat(dt) && d % 8 == 0 && d <= 8192 && (al & 15) == 0) {
    const unsigned blocks = (unsigned)((rows + 7) / 8);  // 8 rows (warps) per block
    if (dt == DT_BF16) kNormVec<DT_BF16><<<blocks, 256, 0, g_stream>>>(x, w, b, y, rows, d, eps, rms);
    else if (dt == DT_F16) kNormVec<DT_F16><<<blocks, 256, 0, g_stream>>>(x, w, b, y, rows, d, eps, rms);
    else kNormVec<DT_F32><<<blocks, 256, 0, g_stream>>>(x, w, b, y, rows, d, eps, rms);
    checkLaunch(rms ? "rmsNorm" : "layerNorm");
    return;
  }
  kNorm<<<(unsigned)rows, d >= 2048 ? 512 : d >= 256 ? 256 : 64, 0, g_stream>>>(x, w, b, y, dt, d, eps, rms);
  checkLaunch(rms ? "rmsNorm" : "layerNorm");
}

// Group norm: one block per (sample, group); mean and variance in f64 across the block.
__global__ void kGroupNorm(const void* x, const void* w, const void* b, void* y, int dt, int64_t c, int64_t spatial, int64_t groups, float eps) {
  __shared__ double sh[32];
  int64_t ng = blockIdx.x, n = ng / groups, g = ng % groups, cpg = c / groups;
  int64_t base = (n * c + g * cpg) * spatial, len = cpg * spatial;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x) s += ld<float>(x, dt, base + j);
  double mean = blockSum<double>((double)s, sh) / (double)len;
  float q = 0.f;
  float mf = (float)mean;
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
    float v = ld<float>(x, dt, base + j) - mf;
    q += v * v;
  }
  double var = blockSum<double>((double)q, sh) / (double)len;
  float inv = (float)(1.0 / sqrt(var + (double)eps));
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
    int64_t ch = g * cpg + j / spatial;
    float v = (ld<float>(x, dt, base + j) - mf) * inv;
    if (w) v *= ld<float>(w, dt, ch);
    if (b) v += ld<float>(b, dt, ch);
    st<float>(y, dt, base + j, v);
  }
}
void launchGroupNorm(const void* x, const void* w, const void* b, void* y, int dt, int64_t n, int64_t c, int64_t spatial, int64_t groups, float eps) {
  if (n * c * spatial == 0) return;
  kGroupNorm<<<(unsigned)(n * groups), 1024, 0, g_stream>>>(x, w, b, y, dt, c, spatial, groups, eps);
  checkLaunch("groupNorm");
}
