// The few cuBLASLt declarations we use, written here so the addon builds without cuBLAS headers or
// libraries; the library is opened with dlopen on first use. Values are the CUDA 12/13 ABI
// (checked against the real cublasLt.h by native/src/cublaslt_abi_check.cpp wherever that header exists).
#pragma once
#include <cuda_runtime.h>
#include <library_types.h>
#include <cstddef>
#include <cstdint>
#include <string>

namespace lt {
typedef int Status;  // cublasStatus_t, 0 = success
typedef void* Handle;
typedef void* MatmulDesc;
typedef void* Layout;
typedef void* Pref;
struct Algo { uint64_t data[8]; };
struct HeuristicResult { Algo algo; size_t workspaceSize; Status state; float wavesCount; int reserved[4]; };
enum : int { COMPUTE_32F = 68 };
enum : int { OP_N = 0, OP_T = 1 };
enum : int { DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8 };
enum : int { LAYOUT_BATCH_COUNT = 5, LAYOUT_STRIDED_BATCH_OFFSET = 6 };
enum : int { PREF_MAX_WORKSPACE_BYTES = 1, PREF_MIN_ALIGNMENT_A = 5, PREF_MIN_ALIGNMENT_B = 6, PREF_MIN_ALIGNMENT_C = 7, PREF_MIN_ALIGNMENT_D = 8 };
enum : int { EPILOGUE_DEFAULT = 1, EPILOGUE_BIAS = 4 };
}  // namespace lt

struct GemmArgs {
  // row-major: C (batch, M, N) = A (batch, M, K) @ B (batch, K, N) [or B (batch, N, K) when transB] + bias (N)
  const void* a;
  const void* b;
  const void* bias;
  void* c;
  int dt;
  int64_t M, N, K, batch, strideA, strideB, strideC;
  bool transB;
  int64_t ldc = 0;  // row stride of C in elements (0 = N)
};
/** Loads cuBLASLt if needed (throws a clear error naming the library when it cannot) and runs the GEMM on g_stream. */
void gemm(const GemmArgs& g);
/** cublasLtGetVersion() of the loaded library, loading it if needed; throws if missing. */
size_t cublasLtVersion();
std::string cublasLtPath();
