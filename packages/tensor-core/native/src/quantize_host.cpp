// See quantize_host.h. The arithmetic mirrors src/quant8-codec.ts step for step (the scale is the f32 rounding of
// a double division, the quotient the f32 rounding of a double division), so both produce the same bytes.
#include "quantize_host.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

namespace fpq {
namespace {

/** 1.5 * 2^52: (x + M) - M rounds x to an integer, ties to even, in double arithmetic. */
constexpr double kRoundMagic = 6755399441055744.0;
/** f32 bits of 464: below it (and from 2^-6) the plain e4m3 rounding is exact, 448..464 included (-> 0x7e). */
constexpr uint32_t kE4m3Inline = 0x43e80000u;

inline uint32_t bitsOf(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}
inline float floatOf(uint32_t b) {
  float x;
  std::memcpy(&x, &b, 4);
  return x;
}

/** Quantize rows [r0, r1); the first bad row, or -1. `widen` gives row values as f32 into `row`. */
template <typename Row>
int64_t quantizeRows(Row widen, int64_t r0, int64_t r1, int64_t cols, bool fp8, uint8_t* codes, float* scales) {
  std::vector<float> row((size_t)cols);
  const double maxCode = fp8 ? 448.0 : 127.0;
  for (int64_t r = r0; r < r1; r++) {
    float amax = 0.f;
    if (!widen(r, row.data(), amax)) return r;
    const float s = (float)((double)amax / maxCode);
    scales[r] = s;
    uint8_t* out = codes + r * cols;
    if (s == 0.f) {
      std::memset(out, 0, (size_t)cols);
      continue;
    }
    const double sd = s;
    if (!fp8) {
      for (int64_t i = 0; i < cols; i++) {
        const double q = (double)(float)((double)row[i] / sd);
        // ties to even by the default rounding of the add (exact for |q| < 2^51); vectorizes, unlike nearbyint
        // without SSE4.1
        double n = (q + kRoundMagic) - kRoundMagic;
        n = n > 127 ? 127 : n < -127 ? -127 : n;
        out[i] = (uint8_t)(int)n;
      }
    } else {
      // the normal e4m3 range in a branch-free loop that vectorizes; the rare others (zeros, subnormals, saturation)
      // again through the full encoder. |q| in [2^-6, 464): [448, 464] rounds to 448 (0x7e) like the saturation
      // does, and the row maximum lands there (at 448 or a rounding above)
      uint32_t others = 0;
      for (int64_t i = 0; i < cols; i++) {
        const uint32_t b = bitsOf((float)((double)row[i] / sd)), exp = (b >> 23) & 0xff, mant = b & 0x7fffff, rest = mant & 0xfffff;
        const uint32_t code = ((exp - 120) << 3) | (mant >> 20);
        out[i] = (uint8_t)(((b >> 24) & 0x80) | (code + ((rest > 0x80000) | ((rest == 0x80000) & code))));
        others |= (exp < 121) | ((b & 0x7fffffff) >= kE4m3Inline);
      }
      if (others)
        for (int64_t i = 0; i < cols; i++) {
          const float q = (float)((double)row[i] / sd);
          const uint32_t b = bitsOf(q), exp = (b >> 23) & 0xff;
          if (exp < 121 || (b & 0x7fffffff) >= kE4m3Inline) out[i] = fp8e4m3Encode(q);
        }
    }
  }
  return -1;
}

}  // namespace

uint8_t fp8e4m3Encode(float x) {
  const uint32_t bits = bitsOf(x);
  const uint32_t sign = (bits >> 24) & 0x80;
  const uint32_t exp = (bits >> 23) & 0xff;
  const uint32_t mant = bits & 0x7fffff;
  if (exp == 0xff && mant != 0) return 0x7f;
  if ((bits & 0x7fffffff) >= 0x43e00000u) return (uint8_t)(sign | 0x7e);  // |x| >= 448 or inf: saturate
  if (exp == 0) return (uint8_t)sign;                                      // f32 zero/subnormal: rounds to 0
  const int e = (int)exp - 127;
  if (e >= -6) {
    uint32_t code = ((uint32_t)(e + 7) << 3) | (mant >> 20);
    const uint32_t rest = mant & 0xfffff;
    if (rest > 0x80000 || (rest == 0x80000 && (code & 1))) code++;
    return (uint8_t)(sign | code);
  }
  // subnormal e4m3 (units of 2^-9): the 24-bit significand shifted right by 14 - e, nearest, ties to even
  const int shift = 14 - e;  // >= 21
  if (shift > 40) return (uint8_t)sign;
  const uint64_t sig = (1u << 23) | mant;
  uint64_t q = sig >> shift;
  const uint64_t rest = sig - (q << shift), half = 1ull << (shift - 1);
  if (rest > half || (rest == half && (q & 1))) q++;
  return (uint8_t)(sign | q);
}

int64_t quantize8(const void* src, Source type, int64_t rows, int64_t cols, bool fp8, uint8_t* codes, float* scales, int threads) {
  if (rows <= 0 || cols <= 0) return -1;
  // f32 rows: |v| maximum, non-finite check; bf16 rows: the integer maximum of the magnitude bits (for
  // non-negative floats the bit patterns order like the values) and an all-ones exponent check
  auto f32Row = [&](int64_t r, float* row, float& amax) {
    const float* v = (const float*)src + r * cols;
    float m = 0.f;
    bool finite = true;
    for (int64_t i = 0; i < cols; i++) {
      finite &= std::isfinite(v[i]);
      m = std::max(m, std::fabs(v[i]));
      row[i] = v[i];
    }
    amax = m;
    return finite;
  };
  auto bf16Row = [&](int64_t r, float* row, float& amax) {
    const uint16_t* b = (const uint16_t*)src + r * cols;
    uint32_t m = 0, special = 0;
    for (int64_t i = 0; i < cols; i++) {
      m = std::max(m, (uint32_t)(b[i] & 0x7fff));
      special |= (b[i] & 0x7f80) == 0x7f80;
      row[i] = floatOf((uint32_t)b[i] << 16);
    }
    amax = floatOf(m << 16);
    return special == 0;
  };
  auto run = [&](int64_t r0, int64_t r1) {
    return type == Source::F32 ? quantizeRows(f32Row, r0, r1, cols, fp8, codes, scales) : quantizeRows(bf16Row, r0, r1, cols, fp8, codes, scales);
  };
  // by default all hardware threads, each with at least ~1M values (below that a thread start costs more than it saves)
  const int64_t n = threads > 0 ? std::min<int64_t>(threads, rows)
                                : std::min<int64_t>({(int64_t)std::max(1u, std::thread::hardware_concurrency()), rows, std::max<int64_t>(1, rows * cols / (1 << 20))});
  if (n <= 1) return run(0, rows);
  std::atomic<int64_t> bad{-1};
  std::vector<std::thread> pool;
  const int64_t per = (rows + n - 1) / n;
  for (int64_t t = 0; t < n; t++) {
    const int64_t r0 = t * per, r1 = std::min(rows, r0 + per);
    if (r0 >= r1) break;
    pool.emplace_back([&, r0, r1] {
      const int64_t b = run(r0, r1);
      int64_t cur = bad.load();
      while (b >= 0 && (cur < 0 || b < cur) && !bad.compare_exchange_weak(cur, b)) {
      }
    });
  }
  for (auto& th : pool) th.join();
  return bad.load();
}

}  // namespace fpq
