// Built only where the real cudnn.h exists (the device machine): our hand-written declarations must match it.
#include <cudnn.h>
#include <type_traits>
#include "cudnn_api.h"
static_assert(sizeof(dnn::FwdAlgoPerf) == sizeof(cudnnConvolutionFwdAlgoPerf_t), "algo perf size");
static_assert(offsetof(dnn::FwdAlgoPerf, memory) == offsetof(cudnnConvolutionFwdAlgoPerf_t, memory), "algo perf memory");
static_assert(offsetof(dnn::FwdAlgoPerf, status) == offsetof(cudnnConvolutionFwdAlgoPerf_t, status), "algo perf status");
static_assert(dnn::DATA_FLOAT == CUDNN_DATA_FLOAT && dnn::DATA_HALF == CUDNN_DATA_HALF && dnn::DATA_BFLOAT16 == CUDNN_DATA_BFLOAT16, "data types");
static_assert(dnn::TENSOR_NCHW == CUDNN_TENSOR_NCHW && dnn::CROSS_CORRELATION == CUDNN_CROSS_CORRELATION, "format, mode");
static_assert(dnn::TENSOR_OP_MATH == CUDNN_TENSOR_OP_MATH, "math type");
static_assert(sizeof(cudnnStatus_t) == sizeof(dnn::Status) && sizeof(cudnnHandle_t) == sizeof(dnn::Handle), "handles");
// the signatures we call, as function pointer types
static_assert(std::is_same<decltype(&cudnnSetTensorNdDescriptor), cudnnStatus_t (*)(cudnnTensorDescriptor_t, cudnnDataType_t, int, const int*, const int*)>::value, "tensor Nd");
static_assert(std::is_same<decltype(&cudnnSetFilterNdDescriptor), cudnnStatus_t (*)(cudnnFilterDescriptor_t, cudnnDataType_t, cudnnTensorFormat_t, int, const int*)>::value, "filter Nd");
static_assert(std::is_same<decltype(&cudnnSetConvolutionNdDescriptor), cudnnStatus_t (*)(cudnnConvolutionDescriptor_t, int, const int*, const int*, const int*, cudnnConvolutionMode_t, cudnnDataType_t)>::value, "conv Nd");
static_assert(std::is_same<decltype(&cudnnGetConvolutionForwardAlgorithm_v7), cudnnStatus_t (*)(cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t, cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int, int*, cudnnConvolutionFwdAlgoPerf_t*)>::value, "algo v7");
static_assert(std::is_same<decltype(&cudnnConvolutionForward), cudnnStatus_t (*)(cudnnHandle_t, const void*, cudnnTensorDescriptor_t, const void*, cudnnFilterDescriptor_t, const void*, cudnnConvolutionDescriptor_t, cudnnConvolutionFwdAlgo_t, void*, size_t, const void*, cudnnTensorDescriptor_t, void*)>::value, "forward");
int main() { return 0; }
