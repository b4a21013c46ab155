// The few cuDNN declarations the conv3d path uses (the cuDNN 9 "legacy" convolution API), written here so the addon
// builds without cuDNN headers or libraries; the library is opened with dlopen on first use and, when it is missing,
// conv3d keeps its own im2col + cuBLASLt path. Values are the cuDNN 9 ABI (checked against the real cudnn.h by
// native/src/cudnn_abi_check.cpp wherever that header exists).
#pragma once
#include <cuda_runtime.h>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace dnn {
typedef int Status;  // cudnnStatus_t, 0 = success
typedef void* Handle;
typedef void* TensorDesc;
typedef void* FilterDesc;
typedef void* ConvDesc;
enum : int { DATA_FLOAT = 0, DATA_HALF = 2, DATA_BFLOAT16 = 9 };
enum : int { TENSOR_NCHW = 0 };
enum : int { CROSS_CORRELATION = 1 };
enum : int { TENSOR_OP_MATH = 1 };
struct FwdAlgoPerf {
  int algo;  // cudnnConvolutionFwdAlgo_t
  Status status;
  float time;
  size_t memory;
  int determinism;
  int mathType;
  int reserved[3];
};
}  // namespace dnn

struct Conv3dArgs {
  const void* x;  // (N, Ci, T, H, W)
  const void* w;  // (Co, Ci, kT, kH, kW)
  const void* b;  // (Co) or null
  void* y;        // (N, Co, OT, OH, OW)
  int dt;
  const int64_t* xs;
  const int64_t* ws;
  const int64_t* os;
  const int* stride;
  const int* pad;
};
/**
 * conv3d through cuDNN on g_stream, for bf16/f16 (f32 keeps our exact path): false when cuDNN is not loadable, is
 * disabled (FRAMEPACK_CONV_CUDNN=0, read on every call), or has no algorithm for the case or its workspace does not fit (the caller then
 * runs its own path). The bias is written into y first and blended by the convolution (beta = 1), so it is added in
 * the f32 accumulator with one rounding, like the other paths. `alloc`/`release`: workspace from the caching
 * allocator (inside the VRAM budget); alloc may throw OomError.
 */
bool cudnnConv3d(const Conv3dArgs& a, const std::function<void*(size_t)>& alloc, const std::function<void(void*)>& release);
/** "cuDNN <version> (<path>)", or why it is not used. */
std::string cudnnInfo();
