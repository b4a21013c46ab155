// cuBLASLt through dlopen: candidates $FRAMEPACK_CUBLASLT, libcublasLt.so.13 (ld cache / LD_LIBRARY_PATH),
// $CUDA_HOME/lib64, /usr/local/cuda/lib64, then libcublasLt.so.12. Heuristic results are cached per shape.
#include "cublaslt.h"
#include "common.cuh"
#include "dynlib.h"
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

namespace {
struct Api {
  DynLib lib;
  lt::Status (*create)(lt::Handle*);
  size_t (*getVersion)();
  lt::Status (*descCreate)(lt::MatmulDesc*, int, cudaDataType_t);
  lt::Status (*descDestroy)(lt::MatmulDesc);
  lt::Status (*descSet)(lt::MatmulDesc, int, const void*, size_t);
  lt::Status (*layoutCreate)(lt::Layout*, cudaDataType_t, uint64_t, uint64_t, int64_t);
  lt::Status (*layoutDestroy)(lt::Layout);
  lt::Status (*layoutSet)(lt::Layout, int, const void*, size_t);
  lt::Status (*prefCreate)(lt::Pref*);
  lt::Status (*prefDestroy)(lt::Pref);
  lt::Status (*prefSet)(lt::Pref, int, const void*, size_t);
  lt::Status (*heuristic)(lt::Handle, lt::MatmulDesc, lt::Layout, lt::Layout, lt::Layout, lt::Layout, lt::Pref, int, lt::HeuristicResult*, int*);
  lt::Status (*matmul)(lt::Handle, lt::MatmulDesc, const void*, const void*, lt::Layout, const void*, lt::Layout, const void*, const void*, lt::Layout, void*, lt::Layout, const lt::Algo*, void*, size_t, cudaStream_t);
  lt::Handle handle = nullptr;
  void* workspace = nullptr;
  size_t workspaceBytes = 32u << 20;
};
Api g_api;
std::string g_loadError;
std::mutex g_mu;

template <typename F>
void sym(F& f, const char* name) {
  bindSymbol(f, g_api.lib, "cuBLASLt", name);
}

Api& api() {
  if (g_api.handle) return g_api;
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_api.handle) return g_api;
  if (!g_loadError.empty()) throw std::runtime_error(g_loadError);
  g_api.lib = openFirst(libraryCandidates("FRAMEPACK_CUBLASLT", "libcublasLt.so.13", {"/usr/local/cuda-13.0/lib64/libcublasLt.so.13", "libcublasLt.so.12"}), "\n  ");
  if (!g_api.lib.handle) {
    g_loadError = "cuBLASLt could not be loaded (matmul/linear on CUDA need it). Install the CUDA 13 cuBLAS runtime "
                  "(e.g. the nvidia-cublas pip wheel or the toolkit's libcublasLt.so.13) and put it on LD_LIBRARY_PATH, "
                  "or set FRAMEPACK_CUBLASLT to its full path. Tried:" + g_api.lib.tried;
    throw std::runtime_error(g_loadError);
  }
  try {
    sym(g_api.create, "cublasLtCreate");
    sym(g_api.getVersion, "cublasLtGetVersion");
    sym(g_api.descCreate, "cublasLtMatmulDescCreate");
    sym(g_api.descDestroy, "cublasLtMatmulDescDestroy");
    sym(g_api.descSet, "cublasLtMatmulDescSetAttribute");
    sym(g_api.layoutCreate, "cublasLtMatrixLayoutCreate");
    sym(g_api.layoutDestroy, "cublasLtMatrixLayoutDestroy");
    sym(g_api.layoutSet, "cublasLtMatrixLayoutSetAttribute");
    sym(g_api.prefCreate, "cublasLtMatmulPreferenceCreate");
    sym(g_api.prefDestroy, "cublasLtMatmulPreferenceDestroy");
    sym(g_api.prefSet, "cublasLtMatmulPreferenceSetAttribute");
    sym(g_api.heuristic, "cublasLtMatmulAlgoGetHeuristic");
    sym(g_api.matmul, "cublasLtMatmul");
    lt::Handle h = nullptr;
    if (g_api.create(&h) != 0) throw std::runtime_error("cublasLtCreate failed");
    ck(cudaMalloc(&g_api.workspace, g_api.workspaceBytes), "cuBLASLt workspace");
    g_api.handle = h;
  } catch (std::exception& e) {
    g_loadError = e.what();
    throw;
  }
  return g_api;
}

cudaDataType_t cudaType(int dt) {
  switch (dt) {
    case DT_F32: return CUDA_R_32F;
    case DT_F16: return CUDA_R_16F;
    case DT_BF16: return CUDA_R_16BF;
    default: throw std::runtime_error("matmul: dtype must be f32, f16 or bf16");
  }
}
int alignOf(const void* p) {
  uintptr_t v = (uintptr_t)p;
  int a = 256;
  while (a > 1 && (v % a)) a >>= 1;
  return a;
}

struct Plan {
  lt::MatmulDesc desc;
  lt::Layout la, lb, lc;
  lt::Algo algo;
  bool ok;
};
std::unordered_map<std::string, Plan> g_plans;

void chk(lt::Status s, const char* what) {
  if (s != 0) throw std::runtime_error(std::string("cuBLASLt ") + what + " failed with status " + std::to_string(s));
}
}  // namespace

size_t cublasLtVersion() { return api().getVersion(); }
std::string cublasLtPath() {
  api();
  return g_api.lib.path;
}

void gemm(const GemmArgs& g) {
  Api& A = api();
  if (g.M == 0 || g.N == 0) return;
  // Column-major view of the row-major product: C^T (N x M) = op(B)^T (N x K) * A^T (K x M).
  const cudaDataType_t t = cudaType(g.dt);
  const int transa = g.transB ? lt::OP_T : lt::OP_N;
  const int alA = alignOf(g.b), alB = alignOf(g.a), alC = alignOf(g.c);
  std::string key = std::to_string(g.dt) + ":" + std::to_string(g.M) + ":" + std::to_string(g.N) + ":" + std::to_string(g.K) + ":" +
                    std::to_string(g.batch) + ":" + std::to_string(g.strideA) + ":" + std::to_string(g.strideB) + ":" + std::to_string(g.transB) + ":" +
                    std::to_string(g.bias != nullptr) + ":" + std::to_string(g.ldc) + ":" + std::to_string(alA) + ":" + std::to_string(alB) + ":" + std::to_string(alC);
  auto it = g_plans.find(key);
  if (it == g_plans.end()) {
    Plan p{};
    chk(A.descCreate(&p.desc, lt::COMPUTE_32F, CUDA_R_32F), "MatmulDescCreate");
    int opN = lt::OP_N;
    chk(A.descSet(p.desc, lt::DESC_TRANSA, &transa, sizeof(int)), "TRANSA");
    chk(A.descSet(p.desc, lt::DESC_TRANSB, &opN, sizeof(int)), "TRANSB");
    if (g.bias) {
      int epi = lt::EPILOGUE_BIAS;
      chk(A.descSet(p.desc, lt::DESC_EPILOGUE, &epi, sizeof(int)), "EPILOGUE");
    }
    // lt A = our B: stored (K, N) row-major = (N x K) col-major ld N; or (N, K) row-major = (K x N) col-major ld K, transposed
    if (g.transB) chk(A.layoutCreate(&p.la, t, g.K, g.N, g.K), "layout A");
    else chk(A.layoutCreate(&p.la, t, g.N, g.K, g.N), "layout A");
    chk(A.layoutCreate(&p.lb, t, g.K, g.M, g.K), "layout B");
    chk(A.layoutCreate(&p.lc, t, g.N, g.M, g.ldc ? g.ldc : g.N), "layout C");
    if (g.batch > 1) {
      int32_t bc = (int32_t)g.batch;
      int64_t sA = g.strideB, sB = g.strideA, sC = g.strideC;
      chk(A.layoutSet(p.la, lt::LAYOUT_BATCH_COUNT, &bc, sizeof(bc)), "batch");
      chk(A.layoutSet(p.lb, lt::LAYOUT_BATCH_COUNT, &bc, sizeof(bc)), "batch");
      chk(A.layoutSet(p.lc, lt::LAYOUT_BATCH_COUNT, &bc, sizeof(bc)), "batch");
      chk(A.layoutSet(p.la, lt::LAYOUT_STRIDED_BATCH_OFFSET, &sA, sizeof(sA)), "stride");
      chk(A.layoutSet(p.lb, lt::LAYOUT_STRIDED_BATCH_OFFSET, &sB, sizeof(sB)), "stride");
      chk(A.layoutSet(p.lc, lt::LAYOUT_STRIDED_BATCH_OFFSET, &sC, sizeof(sC)), "stride");
    }
    lt::Pref pref;
    chk(A.prefCreate(&pref), "PreferenceCreate");
    uint64_t ws = A.workspaceBytes;
    chk(A.prefSet(pref, lt::PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)), "workspace pref");
    uint32_t a1 = alA, a2 = alB, a3 = alC;
    A.prefSet(pref, lt::PREF_MIN_ALIGNMENT_A, &a1, sizeof(a1));
    A.prefSet(pref, lt::PREF_MIN_ALIGNMENT_B, &a2, sizeof(a2));
    A.prefSet(pref, lt::PREF_MIN_ALIGNMENT_C, &a3, sizeof(a3));
    A.prefSet(pref, lt::PREF_MIN_ALIGNMENT_D, &a3, sizeof(a3));
    lt::HeuristicResult res[1];
    int n = 0;
    lt::Status s = A.heuristic(A.handle, p.desc, p.la, p.lb, p.lc, p.lc, pref, 1, res, &n);
    A.prefDestroy(pref);
    if (s != 0 || n == 0)
      throw std::runtime_error("cuBLASLt found no algorithm for " + std::to_string(g.M) + "x" + std::to_string(g.N) + "x" + std::to_string(g.K) + " (status " + std::to_string(s) + ")");
    p.algo = res[0].algo;
    p.ok = true;
    it = g_plans.emplace(key, p).first;
  }
  Plan& p = it->second;
  if (g.bias) chk(A.descSet(p.desc, lt::DESC_BIAS_POINTER, &g.bias, sizeof(void*)), "BIAS_POINTER");
  const float alpha = 1.f, beta = 0.f;
  chk(A.matmul(A.handle, p.desc, &alpha, g.b, p.la, g.a, p.lb, &beta, g.c, p.lc, g.c, p.lc, &p.algo, A.workspace, A.workspaceBytes, g_stream), "Matmul");
}
