// Dequantization of per-output-row 8-bit weights (int8 weight-only, FP8 E4M3 "e4m3fn"): y = decode(q) * s[row],
// the product in f32 (one rounding, as the CPU backend), then rounded to the output dtype. It runs once per streamed
// block after the block's 8-bit copy, so it is a memory-bound pass: each thread reads 16 codes with one 16-byte load
// and writes its 16 outputs with 16-byte stores. The e4m3 decode is bit manipulation (exact), so it runs on every
// GPU the addon targets; no fp8 hardware instruction is needed.
#include "common.cuh"

namespace {

__device__ __forceinline__ float decode8(uint32_t c, int fp8) {
  if (!fp8) return (float)(int8_t)(uint8_t)c;
  const uint32_t s = (c & 0x80u) << 24, e = (c >> 3) & 15u, m = c & 7u;
  if (e == 15u && m == 7u) return __uint_as_float(s | 0x7fc00000u);  // NaN
  if (e == 0u) return __uint_as_float(s | __float_as_uint((float)m * 0.001953125f));  // m * 2^-9, sign kept (-0 too)
  return __uint_as_float(s | ((e + 120u) << 23) | (m << 20));  // (1 + m/8) * 2^(e-7)
}

template <int DT>
__device__ __forceinline__ void store1(void* y, int64_t i, float v) {
  if (DT == DT_F32) ((float*)y)[i] = v;
  else if (DT == DT_F16) ((__half*)y)[i] = __float2half_rn(v);
  else ((uint16_t*)y)[i] = f2bf(v);
}

// Chunks of 16 codes: the vector path when the chunk is whole and the pointers are 16-byte aligned (checked on the
// host: `vec`), else element by element (the tail, or unaligned views).
template <int DT>
__global__ void kDequant8(const uint8_t* __restrict__ q, const float* __restrict__ scales, void* __restrict__ y, int fp8,
                          int64_t n, int64_t cols, int vec) {
  const int64_t chunks = (n + 15) / 16;
  GRID_STRIDE(c, chunks) {
    const int64_t base = c * 16;
    if (vec && base + 16 <= n) {
      const uint4 raw = *reinterpret_cast<const uint4*>(q + base);
      const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
      float v[16];
      const bool oneRow = (base / cols) == ((base + 15) / cols);
      const float s0 = __ldg(scales + base / cols);
#pragma unroll
      for (int k = 0; k < 16; k++) {
        const float s = oneRow ? s0 : __ldg(scales + (base + k) / cols);
        v[k] = __fmul_rn(decode8((w[k >> 2] >> (8 * (k & 3))) & 0xffu, fp8), s);
      }
      if (DT == DT_F32) {
        float4* o = reinterpret_cast<float4*>((float*)y + base);
#pragma unroll
        for (int k = 0; k < 4; k++) o[k] = make_float4(v[4 * k], v[4 * k + 1], v[4 * k + 2], v[4 * k + 3]);
      } else {
        uint32_t h[8];
#pragma unroll
        for (int k = 0; k < 8; k++) {
          uint32_t lo, hi;
          if (DT == DT_F16) {
            lo = __half_as_ushort(__float2half_rn(v[2 * k]));
            hi = __half_as_ushort(__float2half_rn(v[2 * k + 1]));
          } else {
            lo = f2bf(v[2 * k]);
            hi = f2bf(v[2 * k + 1]);
          }
          h[k] = lo | (hi << 16);
        }
        uint4* o = reinterpret_cast<uint4*>((uint16_t*)y + base);
        o[0] = make_uint4(h[0], h[1], h[2], h[3]);
        o[1] = make_uint4(h[4], h[5], h[6], h[7]);
      }
    } else {
      const int64_t end = base + 16 < n ? base + 16 : n;
      for (int64_t i = base; i < end; i++) store1<DT>(y, i, __fmul_rn(decode8(q[i], fp8), scales[i / cols]));
    }
  }
}

}  // namespace

void launchDequant8(const void* q, const void* scales, void* y, int dtOut, int fp8, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  const int vec = ((uintptr_t)q % 16 == 0 && (uintptr_t)y % 16 == 0) ? 1 : 0;
  const unsigned grid = gridFor((n + 15) / 16);
  const uint8_t* qp = (const uint8_t*)q;
  const float* sp = (const float*)scales;
  switch (dtOut) {
    case DT_F32: kDequant8<DT_F32><<<grid, 256, 0, g_stream>>>(qp, sp, y, fp8, n, cols, vec); break;
    case DT_F16: kDequant8<DT_F16><<<grid, 256, 0, g_stream>>>(qp, sp, y, fp8, n, cols, vec); break;
    case DT_BF16: kDequant8<DT_BF16><<<grid, 256, 0, g_stream>>>(qp, sp, y, fp8, n, cols, vec); break;
    default: throw std::runtime_error("dequant8: the output dtype must be f32, f16 or bf16");
  }
  checkLaunch("dequant8");
}
