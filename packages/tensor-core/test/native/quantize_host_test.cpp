// Runs native/src/quantize_host.cpp on a matrix from a file, for test/native-quantize.test.ts:
//   quantize_host_test IN OUT
// IN:  int32 type (0 f32, 1 bf16), int32 fp8 (0/1), int32 threads, int32 0, int64 rows, int64 cols, then the values.
// OUT: int64 the first bad row (-1 none), rows f32 scales, rows*cols codes.
//   quantize_host_test --bench ROWS COLS THREADS   prints one JSON line: bf16 -> int8 and fp8 throughput.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include "../../native/src/quantize_host.h"

static int bench(int64_t rows, int64_t cols, int threads) {
  std::vector<uint16_t> v((size_t)(rows * cols));
  uint32_t x = 12345;
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = (uint16_t)(0x3c00 + ((x >> 16) & 0x3ff) + (x & 0x8000));  // +-[1, 2) with random mantissas
  }
  std::vector<uint8_t> codes(v.size());
  std::vector<float> scales((size_t)rows);
  for (int fp8 = 0; fp8 < 2; fp8++) {
    auto t0 = std::chrono::steady_clock::now();
    fpq::quantize8(v.data(), fpq::Source::BF16, rows, cols, fp8, codes.data(), scales.data(), threads);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("{\"what\":\"quantize8-host\",\"format\":\"%s\",\"rows\":%lld,\"cols\":%lld,\"threads\":%d,\"seconds\":%.4f,\"Mvalues_per_s\":%.1f}\n",
                fp8 ? "fp8" : "int8", (long long)rows, (long long)cols, threads, s, rows * cols / s / 1e6);
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--bench") == 0) return bench(std::atoll(argv[2]), std::atoll(argv[3]), std::atoi(argv[4]));
  if (argc != 3) {
    std::fprintf(stderr, "usage: quantize_host_test IN OUT | --bench ROWS COLS THREADS\n");
    return 2;
  }
  FILE* in = std::fopen(argv[1], "rb");
  if (!in) return 3;
  int32_t h[4];
  int64_t rc[2];
  if (std::fread(h, 4, 4, in) != 4 || std::fread(rc, 8, 2, in) != 2) return 4;
  const size_t n = (size_t)(rc[0] * rc[1]), esize = h[0] == 0 ? 4 : 2;
  std::vector<uint8_t> src(n * esize);
  if (std::fread(src.data(), 1, src.size(), in) != src.size()) return 5;
  std::fclose(in);
  std::vector<uint8_t> codes(n);
  std::vector<float> scales((size_t)rc[0]);
  const int64_t bad = fpq::quantize8(src.data(), h[0] == 0 ? fpq::Source::F32 : fpq::Source::BF16, rc[0], rc[1], h[1] != 0, codes.data(), scales.data(), h[2]);
  FILE* out = std::fopen(argv[2], "wb");
  if (!out) return 6;
  std::fwrite(&bad, 8, 1, out);
  std::fwrite(scales.data(), 4, scales.size(), out);
  std::fwrite(codes.data(), 1, codes.size(), out);
  std::fclose(out);
  return 0;
}
