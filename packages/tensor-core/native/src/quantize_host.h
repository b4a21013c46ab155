// Host-side 8-bit weight quantization (load time), threaded over rows. Same codes and scales as the TypeScript
// definition in src/quant8-codec.ts (quantize8Host / quantize8HostBf16), bit for bit: test/native-quantize.test.ts
// compiles this file with the host compiler and compares the two.
#pragma once
#include <cstdint>

namespace fpq {

enum class Source { F32, BF16 };

/**
 * Quantize a row-major (rows, cols) matrix per row: scales[r] = amax(|row|) / (127 int8 | 448 fp8 e4m3fn), codes
 * round(w / scale) (int8, ties to even, clamped to +-127) or the e4m3fn code of w / scale (ties to even,
 * saturating). Rows of zeros get scale 0 and codes 0. `threads` <= 0: all hardware threads.
 * Returns -1, or the first row holding a non-finite value (codes and scales are then unspecified).
 */
int64_t quantize8(const void* src, Source type, int64_t rows, int64_t cols, bool fp8, uint8_t* codes, float* scales, int threads);

/** The e4m3fn code of an f32 value: nearest, ties to even, saturating to +-448 (also for +-inf); NaN -> 0x7f. */
uint8_t fp8e4m3Encode(float x);

}  // namespace fpq
