// cuDNN through dlopen: candidates $FRAMEPACK_CUDNN, libcudnn.so.9 (ld cache / LD_LIBRARY_PATH), $CUDA_HOME/lib64,
// /usr/local/cuda/lib64, /usr/lib/x86_64-linux-gnu. Descriptors and the heuristic's algorithm are cached per shape.
#include "cudnn_api.h"
#include "common.cuh"
#include "dynlib.h"
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

void launchBiasFill(void* y, const void* b, int dt, int64_t n, int64_t co, int64_t plane);  // conv3d.cu

namespace {
struct Api {
  DynLib lib;
  size_t (*getVersion)();
  dnn::Status (*create)(dnn::Handle*);
  dnn::Status (*setStream)(dnn::Handle, cudaStream_t);
  dnn::Status (*tensorCreate)(dnn::TensorDesc*);
  dnn::Status (*tensorSetNd)(dnn::TensorDesc, int, int, const int*, const int*);
  dnn::Status (*filterCreate)(dnn::FilterDesc*);
  dnn::Status (*filterSetNd)(dnn::FilterDesc, int, int, int, const int*);
  dnn::Status (*convCreate)(dnn::ConvDesc*);
  dnn::Status (*convSetNd)(dnn::ConvDesc, int, const int*, const int*, const int*, int, int);
  dnn::Status (*convSetMath)(dnn::ConvDesc, int);
  dnn::Status (*fwdAlgoV7)(dnn::Handle, dnn::TensorDesc, dnn::FilterDesc, dnn::ConvDesc, dnn::TensorDesc, int, int*, dnn::FwdAlgoPerf*);
  dnn::Status (*forward)(dnn::Handle, const void*, dnn::TensorDesc, const void*, dnn::FilterDesc, const void*, dnn::ConvDesc, int, void*, size_t,
                         const void*, dnn::TensorDesc, void*);
  dnn::Handle handle = nullptr;
};
Api g_api;
std::string g_state;  // why cuDNN is not used (empty: loaded or not tried yet)
std::mutex g_mu;

template <typename F>
void sym(F& f, const char* name) {
  bindSymbol(f, g_api.lib, "cuDNN", name);
}

/** The loaded API, or null (g_state says why). */
Api* api() {
  if (g_api.handle) return &g_api;
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_api.handle) return &g_api;
  if (!g_state.empty()) return nullptr;
  g_api.lib = openFirst(libraryCandidates("FRAMEPACK_CUDNN", "libcudnn.so.9", {"/usr/lib/x86_64-linux-gnu/libcudnn.so.9"}), "; ");
  if (!g_api.lib.handle) {
    g_state = "not found (conv3d uses im2col + cuBLASLt; set FRAMEPACK_CUDNN to libcudnn.so.9's path for ~4x faster VAE convolutions). Tried" + g_api.lib.tried;
    return nullptr;
  }
  try {
    sym(g_api.getVersion, "cudnnGetVersion");
    if (g_api.getVersion() < 90000) throw std::runtime_error("cuDNN " + std::to_string(g_api.getVersion()) + " at " + g_api.lib.path + " is older than 9");
    sym(g_api.create, "cudnnCreate");
    sym(g_api.setStream, "cudnnSetStream");
    sym(g_api.tensorCreate, "cudnnCreateTensorDescriptor");
    sym(g_api.tensorSetNd, "cudnnSetTensorNdDescriptor");
    sym(g_api.filterCreate, "cudnnCreateFilterDescriptor");
    sym(g_api.filterSetNd, "cudnnSetFilterNdDescriptor");
    sym(g_api.convCreate, "cudnnCreateConvolutionDescriptor");
    sym(g_api.convSetNd, "cudnnSetConvolutionNdDescriptor");
    sym(g_api.convSetMath, "cudnnSetConvolutionMathType");
    sym(g_api.fwdAlgoV7, "cudnnGetConvolutionForwardAlgorithm_v7");
    sym(g_api.forward, "cudnnConvolutionForward");
    dnn::Handle h = nullptr;
    if (g_api.create(&h) != 0) throw std::runtime_error("cudnnCreate failed");
    g_api.handle = h;
  } catch (std::exception& e) {
    g_state = e.what();
    return nullptr;
  }
  return &g_api;
}

struct Plan {
  dnn::TensorDesc x = nullptr, y = nullptr;
  dnn::FilterDesc w = nullptr;
  dnn::ConvDesc conv = nullptr;
  std::vector<dnn::FwdAlgoPerf> algos;  // the heuristic's order, usable ones only
};
std::unordered_map<std::string, Plan> g_plans;

void chk(dnn::Status s, const char* what) {
  if (s != 0) throw std::runtime_error(std::string("cuDNN ") + what + " failed with status " + std::to_string(s));
}
void packed(const int64_t* s, int* dims, int* strides) {
  for (int i = 0; i < 5; i++) dims[i] = (int)s[i];
  strides[4] = 1;
  for (int i = 3; i >= 0; i--) strides[i] = strides[i + 1] * dims[i + 1];
}

Plan* planFor(Api& A, const Conv3dArgs& a) {
  std::string key = std::to_string(a.dt);
  for (int i = 0; i < 5; i++) key += ":" + std::to_string(a.xs[i]) + ":" + std::to_string(a.ws[i]);
  for (int i = 0; i < 3; i++) key += ":" + std::to_string(a.stride[i]) + ":" + std::to_string(a.pad[i]);
  auto it = g_plans.find(key);
  if (it != g_plans.end()) return it->second.algos.empty() ? nullptr : &it->second;
  Plan p;
  const int type = a.dt == DT_BF16 ? dnn::DATA_BFLOAT16 : dnn::DATA_HALF;
  int xd[5], xst[5], yd[5], yst[5], wd[5];
  packed(a.xs, xd, xst);
  packed(a.os, yd, yst);
  for (int i = 0; i < 5; i++) wd[i] = (int)a.ws[i];
  const int dil[3] = {1, 1, 1};
  chk(A.tensorCreate(&p.x), "tensor descriptor");
  chk(A.tensorSetNd(p.x, type, 5, xd, xst), "input descriptor");
  chk(A.tensorCreate(&p.y), "tensor descriptor");
  chk(A.tensorSetNd(p.y, type, 5, yd, yst), "output descriptor");
  chk(A.filterCreate(&p.w), "filter descriptor");
  chk(A.filterSetNd(p.w, type, dnn::TENSOR_NCHW, 5, wd), "filter descriptor");
  chk(A.convCreate(&p.conv), "convolution descriptor");
  // f32 compute (accumulation) for half inputs, tensor cores allowed
  chk(A.convSetNd(p.conv, 3, a.pad, a.stride, dil, dnn::CROSS_CORRELATION, dnn::DATA_FLOAT), "convolution descriptor");
  chk(A.convSetMath(p.conv, dnn::TENSOR_OP_MATH), "math type");
  dnn::FwdAlgoPerf perf[8];
  int n = 0;
  chk(A.fwdAlgoV7(A.handle, p.x, p.w, p.conv, p.y, 8, &n, perf), "algorithm heuristic");
  for (int i = 0; i < n; i++)
    if (perf[i].status == 0) p.algos.push_back(perf[i]);
  auto& slot = g_plans[key] = p;
  return slot.algos.empty() ? nullptr : &slot;
}
}  // namespace

static bool disabled() {
  const char* off = getenv("FRAMEPACK_CONV_CUDNN");  // read per call: a benchmark compares both paths in one process
  return off && off[0] == '0';
}

bool cudnnConv3d(const Conv3dArgs& a, const std::function<void*(size_t)>& alloc, const std::function<void(void*)>& release) {
  if ((a.dt != DT_BF16 && a.dt != DT_F16) || disabled()) return false;
  for (int i = 0; i < 5; i++)
    if (a.xs[i] > INT32_MAX || a.os[i] > INT32_MAX) return false;
  if (a.xs[0] * a.xs[1] * a.xs[2] * a.xs[3] * a.xs[4] > INT32_MAX || a.os[0] * a.os[1] * a.os[2] * a.os[3] * a.os[4] > INT32_MAX) return false;
  Api* A = api();
  if (!A) return false;
  Plan* p = planFor(*A, a);
  if (!p) return false;
  chk(A->setStream(A->handle, g_stream), "set stream");
  const float one = 1.f;
  float beta = 0.f;
  if (a.b) {
    launchBiasFill(a.y, a.b, a.dt, a.os[0], a.os[1], a.os[2] * a.os[3] * a.os[4]);
    beta = 1.f;
  }
  // the heuristic's first algorithm whose workspace can be had inside the budget
  for (const auto& algo : p->algos) {
    void* ws = nullptr;
    if (algo.memory) {
      try {
        ws = alloc(algo.memory);
      } catch (...) {
        continue;
      }
    }
    const dnn::Status s = A->forward(A->handle, &one, p->x, a.x, p->w, a.w, p->conv, algo.algo, ws, algo.memory, &beta, p->y, a.y);
    if (ws) release(ws);  // stream-ordered: later work on g_stream runs after the convolution
    if (s == 0) return true;
  }
  return false;
}

std::string cudnnInfo() {
  if (disabled()) return "disabled by FRAMEPACK_CONV_CUDNN=0";
  Api* A = api();
  if (!A) return g_state;
  return "cuDNN " + std::to_string(A->getVersion()) + " (" + A->lib.path + ")";
}
