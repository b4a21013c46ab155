// Built only where the real cublasLt.h exists (the device machine): our hand-written declarations must match it.
#include <cublasLt.h>
#include "cublaslt.h"
static_assert(sizeof(lt::HeuristicResult) == sizeof(cublasLtMatmulHeuristicResult_t), "heuristic result size");
static_assert(sizeof(lt::Algo) == sizeof(cublasLtMatmulAlgo_t), "algo size");
static_assert(lt::COMPUTE_32F == CUBLAS_COMPUTE_32F, "compute type");
static_assert(lt::OP_N == CUBLAS_OP_N && lt::OP_T == CUBLAS_OP_T, "ops");
static_assert(lt::DESC_TRANSA == CUBLASLT_MATMUL_DESC_TRANSA && lt::DESC_TRANSB == CUBLASLT_MATMUL_DESC_TRANSB, "trans attrs");
static_assert(lt::DESC_EPILOGUE == CUBLASLT_MATMUL_DESC_EPILOGUE && lt::DESC_BIAS_POINTER == CUBLASLT_MATMUL_DESC_BIAS_POINTER, "epilogue attrs");
static_assert(lt::LAYOUT_BATCH_COUNT == CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT && lt::LAYOUT_STRIDED_BATCH_OFFSET == CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, "layout attrs");
static_assert(lt::PREF_MAX_WORKSPACE_BYTES == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, "workspace pref");
static_assert(lt::PREF_MIN_ALIGNMENT_A == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && lt::PREF_MIN_ALIGNMENT_B == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, "align prefs");
static_assert(lt::PREF_MIN_ALIGNMENT_C == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES && lt::PREF_MIN_ALIGNMENT_D == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, "align prefs");
static_assert(lt::EPILOGUE_DEFAULT == CUBLASLT_EPILOGUE_DEFAULT && lt::EPILOGUE_BIAS == CUBLASLT_EPILOGUE_BIAS, "epilogues");
int main() { return 0; }
