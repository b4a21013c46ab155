// N-API surface of the CUDA backend. Device pointers travel to JS as numbers (exact below 2^53).
// Every op is asynchronous on the compute stream; downloads synchronize it.
#include <napi.h>
#include <cuda_runtime.h>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include "allocator.h"
#include "common.cuh"
#include "cublaslt.h"
#include "cudnn_api.h"
#include "quantize_host.h"

cudaStream_t g_stream = nullptr;
// kernels_quant.cu
void launchDequant8(const void* q, const void* scales, void* y, int dtOut, int fp8, int64_t rows, int64_t cols);

namespace {
CachingAllocator g_alloc;
int* g_flag = nullptr;  // device int set by index kernels on an out-of-range index
bool g_ready = false;

inline void* P(const Napi::Value& v) { return v.IsNull() || v.IsUndefined() ? nullptr : (void*)(uintptr_t)v.As<Napi::Number>().Int64Value(); }
inline int64_t I(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }
inline int N32(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }
inline double D(const Napi::Value& v) { return v.As<Napi::Number>().DoubleValue(); }
inline Napi::Number ptrVal(Napi::Env env, const void* p) { return Napi::Number::New(env, (double)(uintptr_t)p); }
int arr(const Napi::Value& v, int64_t* out, int max) {
  Napi::Array a = v.As<Napi::Array>();
  int n = (int)a.Length();
  if (n > max) throw std::runtime_error("too many dims");
  for (int i = 0; i < n; i++) out[i] = a.Get(i).As<Napi::Number>().Int64Value();
  return n;
}
/** Flat broadcast descriptor from TS: [nd, mode0, mode1, mode2, ...shape, ...st0, ...st1, ...st2]. */
Bcast bcast(const Napi::Value& v) {
  Napi::Array a = v.As<Napi::Array>();
  Bcast b{};
  b.nd = a.Get(0u).As<Napi::Number>().Int32Value();
  if (b.nd > MAXD) throw std::runtime_error("broadcast: too many dims");
  for (int k = 0; k < 3; k++) b.mode[k] = a.Get(1 + k).As<Napi::Number>().Int32Value();
  for (int d = 0; d < b.nd; d++) {
    b.shape[d] = a.Get(4 + d).As<Napi::Number>().Int64Value();
    for (int k = 0; k < 3; k++) b.st[k][d] = a.Get(4 + (1 + k) * b.nd + d).As<Napi::Number>().Int64Value();
  }
  return b;
}
void need() {
  if (!g_ready) throw std::runtime_error("CUDA backend used before init()");
}

// Wrap a C++ body so std exceptions and OOM reach JS as Errors (OOM with code E_OOM and the request size).
template <typename F>
Napi::Value guard(const Napi::CallbackInfo& info, F f) {
  Napi::Env env = info.Env();
  try {
    return f(env);
  } catch (const OomError& e) {
    Napi::Error err = Napi::Error::New(env, e.message);
    err.Set("code", Napi::String::New(env, "E_OOM"));
    err.Set("requestedBytes", Napi::Number::New(env, (double)e.requested));
    err.Set("budget", Napi::Boolean::New(env, e.budget));
    err.ThrowAsJavaScriptException();
  } catch (const Napi::Error& e) {
    throw;
  } catch (const std::exception& e) {
    Napi::Error::New(env, std::string("CUDA: ") + e.what()).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}
#define FN(name) Napi::Value name(const Napi::CallbackInfo& info) { return guard(info, [&](Napi::Env env) -> Napi::Value {
#define END return env.Undefined(); }); }

FN(Init)
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw std::runtime_error(e != cudaSuccess ? std::string("no usable GPU (") + cudaGetErrorString(e) + ")" : "no GPU found");
  }
  int dev = 0;
  if (const char* s = getenv("FRAMEPACK_CUDA_DEVICE")) dev = atoi(s);
  ck(cudaSetDevice(dev), "cudaSetDevice");
  cudaDeviceProp p;
  ck(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties");
  if (!g_flag) ck(cudaMalloc(&g_flag, sizeof(int)), "cudaMalloc flag");
  g_ready = true;
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  Napi::Object o = Napi::Object::New(env);
  o.Set("deviceCount", count);
  o.Set("device", dev);
  o.Set("name", p.name);
  o.Set("major", p.major);
  o.Set("minor", p.minor);
  o.Set("totalMemory", (double)p.totalGlobalMem);
  o.Set("multiprocessors", p.multiProcessorCount);
  o.Set("l2Bytes", p.l2CacheSize);
  o.Set("driverVersion", drv);
  o.Set("runtimeVersion", rt);
  return o;
END

FN(Alloc) need(); return ptrVal(env, g_alloc.alloc((size_t)I(info[0]))); END
FN(Free) g_alloc.free(P(info[0])); END
FN(EmptyCache) g_alloc.emptyCache(); END
FN(SetBudget) g_alloc.setBudget((size_t)I(info[0])); END
FN(ResetPeak) g_alloc.resetPeak(); END
FN(Stats)
  Napi::Object o = Napi::Object::New(env);
  o.Set("allocatedBytes", (double)g_alloc.allocated());
  o.Set("reservedBytes", (double)g_alloc.reserved());
  o.Set("peakAllocatedBytes", (double)g_alloc.peakAllocated());
  o.Set("peakReservedBytes", (double)g_alloc.peakReserved());
  o.Set("budgetBytes", (double)g_alloc.budget());
  o.Set("liveBlocks", (double)g_alloc.liveBlocks());
  o.Set("cachedBlocks", (double)g_alloc.cachedBlocks());
  o.Set("driverAllocs", (double)g_alloc.driverAllocs());
  size_t fr = 0, tot = 0;
  if (g_ready) cudaMemGetInfo(&fr, &tot);
  o.Set("deviceFreeBytes", (double)fr);
  o.Set("deviceTotalBytes", (double)tot);
  return o;
END

// ---- copies
FN(Upload)  // (dst, typedArray)
  Napi::TypedArray t = info[1].As<Napi::TypedArray>();
  const uint8_t* src = (const uint8_t*)t.ArrayBuffer().Data() + t.ByteOffset();
  size_t bytes = t.ByteLength();
  if (bytes) {
    ck(cudaMemcpyAsync(P(info[0]), src, bytes, cudaMemcpyHostToDevice, g_stream), "upload");
    ck(cudaStreamSynchronize(g_stream), "upload sync");
  }
END
FN(Download)  // (src, typedArray)
  Napi::TypedArray t = info[1].As<Napi::TypedArray>();
  uint8_t* dst = (uint8_t*)t.ArrayBuffer().Data() + t.ByteOffset();
  size_t bytes = t.ByteLength();
  if (bytes) {
    ck(cudaMemcpyAsync(dst, P(info[0]), bytes, cudaMemcpyDeviceToHost, g_stream), "download");
    ck(cudaStreamSynchronize(g_stream), "download sync");
  }
END
FN(CopyD2D) ck(cudaMemcpyAsync(P(info[0]), P(info[1]), (size_t)I(info[2]), cudaMemcpyDeviceToDevice, g_stream), "copy"); END
FN(Memset0) if (I(info[1])) ck(cudaMemsetAsync(P(info[0]), 0, (size_t)I(info[1]), g_stream), "memset"); END
FN(Synchronize) ck(cudaStreamSynchronize(g_stream), "synchronize"); ck(cudaGetLastError(), "device"); END

// ---- streams, events, pinned host memory
FN(StreamCreate) cudaStream_t s; ck(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate"); return ptrVal(env, s); END
FN(StreamDestroy) ck(cudaStreamDestroy((cudaStream_t)P(info[0])), "cudaStreamDestroy"); END
FN(StreamSync) ck(cudaStreamSynchronize((cudaStream_t)P(info[0])), "cudaStreamSynchronize"); END
FN(SetComputeStream) g_stream = (cudaStream_t)P(info[0]); END
FN(GetComputeStream) return ptrVal(env, g_stream); END
FN(EventCreate) cudaEvent_t e; ck(cudaEventCreate(&e), "cudaEventCreate"); return ptrVal(env, e); END
FN(EventDestroy) ck(cudaEventDestroy((cudaEvent_t)P(info[0])), "cudaEventDestroy"); END
FN(EventRecord) ck(cudaEventRecord((cudaEvent_t)P(info[0]), (cudaStream_t)P(info[1])), "cudaEventRecord"); END
FN(EventSync) ck(cudaEventSynchronize((cudaEvent_t)P(info[0])), "cudaEventSynchronize"); END
FN(EventQuery)
  cudaError_t e = cudaEventQuery((cudaEvent_t)P(info[0]));
  if (e == cudaErrorNotReady) { cudaGetLastError(); return Napi::Boolean::New(env, false); }
  ck(e, "cudaEventQuery");
  return Napi::Boolean::New(env, true);
END
FN(EventElapsed) float ms = 0; ck(cudaEventElapsedTime(&ms, (cudaEvent_t)P(info[0]), (cudaEvent_t)P(info[1])), "cudaEventElapsedTime"); return Napi::Number::New(env, ms); END
FN(StreamWaitEvent) ck(cudaStreamWaitEvent((cudaStream_t)P(info[0]), (cudaEvent_t)P(info[1]), 0), "cudaStreamWaitEvent"); END
FN(HostAlloc)  // pinned host memory as an ArrayBuffer, freed with cudaFreeHost when collected
  size_t bytes = (size_t)I(info[0]);
  void* p = nullptr;
  ck(cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocPortable), "cudaHostAlloc");
  return Napi::ArrayBuffer::New(env, p, bytes, [](Napi::Env, void* data) { cudaFreeHost(data); });
END
FN(CopyH2DAsync)  // (dst, arrayBuffer, byteOffset, bytes, stream)
  Napi::ArrayBuffer ab = info[1].As<Napi::ArrayBuffer>();
  size_t off = (size_t)I(info[2]), bytes = (size_t)I(info[3]);
  if (off + bytes > ab.ByteLength()) throw std::runtime_error("copyToDeviceAsync: range outside the host buffer");
  ck(cudaMemcpyAsync(P(info[0]), (uint8_t*)ab.Data() + off, bytes, cudaMemcpyHostToDevice, (cudaStream_t)P(info[4])), "cudaMemcpyAsync H2D");
END
FN(CopyD2HAsync)  // (arrayBuffer, byteOffset, src, bytes, stream)
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  size_t off = (size_t)I(info[1]), bytes = (size_t)I(info[3]);
  if (off + bytes > ab.ByteLength()) throw std::runtime_error("copyToHostAsync: range outside the host buffer");
  ck(cudaMemcpyAsync((uint8_t*)ab.Data() + off, P(info[2]), bytes, cudaMemcpyDeviceToHost, (cudaStream_t)P(info[4])), "cudaMemcpyAsync D2H");
END

// ---- kernels
FN(Fill)  // (ptr, n, esize, value, dt)
  int esize = N32(info[2]), dt = N32(info[4]);
  double v = D(info[3]);
  uint64_t bits = 0;
  if (dt == DT_F32) { float f = (float)v; uint32_t u; memcpy(&u, &f, 4); bits = u; }
  else if (dt == DT_F16 || dt == DT_BF16) bits = (uint64_t)I(info[5]);  // 16-bit pattern computed in TS
  else if (dt == DT_I64) bits = (uint64_t)(int64_t)v;
  else if (dt == DT_I32) bits = (uint32_t)(int32_t)v;
  else if (dt == DT_BOOL) bits = v != 0;
  else bits = (uint8_t)(int64_t)v;
  launchFill(P(info[0]), I(info[1]), esize, bits);
END
FN(Cast) launchCast(P(info[0]), N32(info[1]), P(info[2]), N32(info[3]), I(info[4])); END
// (src Float32Array | Uint16Array of bf16 bits, rows, cols, fp8, codes Uint8Array, scales Float32Array) -> the first
// row with a non-finite value, or -1. Host work on all cores (load-time quantization of streamed weights).
FN(Quantize8Host)
  Napi::TypedArray src = info[0].As<Napi::TypedArray>(), codes = info[4].As<Napi::TypedArray>(), scales = info[5].As<Napi::TypedArray>();
  const int64_t rows = I(info[1]), cols = I(info[2]);
  const bool f32 = src.TypedArrayType() == napi_float32_array;
  if (!f32 && src.TypedArrayType() != napi_uint16_array) throw std::runtime_error("quantize8Host: src must be a Float32Array or a Uint16Array (bf16 bits)");
  if (rows < 0 || cols < 0 || (int64_t)src.ElementLength() != rows * cols || (int64_t)codes.ByteLength() != rows * cols || (int64_t)scales.ByteLength() != rows * 4)
    throw std::runtime_error("quantize8Host: buffer sizes do not match (rows, cols)");
  auto at = [](const Napi::TypedArray& t) { return (uint8_t*)t.ArrayBuffer().Data() + t.ByteOffset(); };
  const int64_t bad = fpq::quantize8(at(src), f32 ? fpq::Source::F32 : fpq::Source::BF16, rows, cols, N32(info[3]) != 0, at(codes), (float*)at(scales), 0);
  return Napi::Number::New(env, (double)bad);
END
FN(CudnnInfo) return Napi::String::New(env, cudnnInfo()); END
FN(Dequant8) launchDequant8(P(info[0]), P(info[1]), P(info[2]), N32(info[3]), N32(info[4]), I(info[5]), I(info[6])); END  // (codes, scales, y, dtOut, fp8, rows, cols)
FN(Unary) launchUnary(N32(info[0]), P(info[1]), P(info[2]), N32(info[3]), I(info[4])); END
FN(Binary)  // (op, a, b, y, dt, n, bcast, fast?) with fast = [bm, M, Q] when a has the output's shape (see backend.ts)
  const int op = N32(info[0]), dt = N32(info[4]);
  void *a = P(info[1]), *b = P(info[2]), *y = P(info[3]);
  const int64_t n = I(info[5]);
  if (info.Length() > 7 && info[7].IsArray()) {
    int64_t f[3];
    arr(info[7], f, 3);
    const int bm = (int)f[0];
    if (launchVec(2, op, a, b, y, dt, n, bm, f[1], f[2], 0, 0)) {
      const int64_t done = n / 8 * 8, es = dtSize(dt);
      if (done < n) {  // bm is 0 or 1 here (a row broadcast has n % 8 == 0)
        Bcast t{};
        t.nd = 0;
        t.mode[0] = 0, t.mode[1] = bm == 1 ? 1 : 0;
        launchBinary(op, (uint8_t*)a + done * es, bm == 1 ? b : (uint8_t*)b + done * es, (uint8_t*)y + done * es, dt, t, n - done);
      }
      return env.Undefined();
    }
  }
  launchBinary(op, a, b, y, dt, bcast(info[6]), n);
END
FN(Compare) launchCompare(N32(info[0]), P(info[1]), P(info[2]), P(info[3]), N32(info[4]), bcast(info[6]), I(info[5])); END
FN(Where) launchWhere(P(info[0]), P(info[1]), P(info[2]), P(info[3]), N32(info[4]), bcast(info[6]), I(info[5])); END
FN(Affine) launchAffine(N32(info[0]), P(info[1]), P(info[2]), N32(info[3]), I(info[4]), D(info[5]), D(info[6])); END
FN(Rope) launchRope(P(info[0]), P(info[1]), P(info[2]), P(info[3]), N32(info[4]), bcast(info[8]), I(info[5]), I(info[6]), N32(info[7])); END
FN(StridedCopy)  // (x, y, esize, n, shape[], srcStrides[], dstStrides[])
  Strided s{};
  s.nd = arr(info[4], s.shape, MAXD);
  arr(info[5], s.src, MAXD);
  arr(info[6], s.dst, MAXD);
  launchStrided(P(info[0]), P(info[1]), N32(info[2]), s, I(info[3]));
END
FN(Pad)  // (x, y, esize, outShape[], inShape[], before[], replicate, value, dt, bits16)
  int64_t os[MAXD], is[MAXD], bf[MAXD];
  int nd = arr(info[3], os, MAXD);
  arr(info[4], is, MAXD);
  arr(info[5], bf, MAXD);
  int dt = N32(info[8]);
  double v = D(info[7]);
  uint64_t bits = 0;
  if (dt == DT_F32) { float f = (float)v; uint32_t u; memcpy(&u, &f, 4); bits = u; }
  else if (dt == DT_F16 || dt == DT_BF16) bits = (uint64_t)I(info[9]);
  else if (dt == DT_I64) bits = (uint64_t)(int64_t)v;
  else if (dt == DT_I32) bits = (uint32_t)(int32_t)v;
  else bits = dt == DT_BOOL ? (v != 0) : (uint8_t)(int64_t)v;
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= os[d];
  launchPad(P(info[0]), P(info[1]), N32(info[2]), nd, os, is, bf, N32(info[6]), bits, n);
END
static void checkFlag(const char* what) {
  int h = 0;
  ck(cudaMemcpyAsync(&h, g_flag, sizeof(int), cudaMemcpyDeviceToHost, g_stream), what);
  ck(cudaStreamSynchronize(g_stream), what);
  if (h) throw std::runtime_error(std::string(what) + ": an index is out of range for the indexed dim");
}
FN(IndexSelect)  // (x, y, esize, idx, idt, outer, len, inner, nidx)
  ck(cudaMemsetAsync(g_flag, 0, sizeof(int), g_stream), "flag");
  launchIndexSelect(P(info[0]), P(info[1]), N32(info[2]), P(info[3]), N32(info[4]), I(info[5]), I(info[6]), I(info[7]), I(info[8]), g_flag);
  checkFlag("indexSelect");
END
FN(Gather)  // (x, y, esize, idx, idt, idxShape[], inShape[], axis)
  int64_t is[MAXD], xs[MAXD];
  int nd = arr(info[5], is, MAXD);
  arr(info[6], xs, MAXD);
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= is[d];
  ck(cudaMemsetAsync(g_flag, 0, sizeof(int), g_stream), "flag");
  launchGather(P(info[0]), P(info[1]), N32(info[2]), P(info[3]), N32(info[4]), nd, is, xs, N32(info[7]), n, g_flag);
  checkFlag("gather");
END
FN(Reduce) launchReduce(N32(info[0]), P(info[1]), P(info[2]), N32(info[3]), I(info[4]), I(info[5]), I(info[6])); END
FN(Variance) launchVariance(P(info[0]), P(info[1]), N32(info[2]), I(info[3]), I(info[4]), I(info[5]), D(info[6])); END
FN(Softmax) launchSoftmax(P(info[0]), P(info[1]), N32(info[2]), I(info[3]), I(info[4])); END
FN(Norm) launchLayerNorm(P(info[0]), P(info[1]), P(info[2]), P(info[3]), N32(info[4]), I(info[5]), I(info[6]), (float)D(info[7]), N32(info[8])); END
FN(GroupNorm) launchGroupNorm(P(info[0]), P(info[1]), P(info[2]), P(info[3]), N32(info[4]), I(info[5]), I(info[6]), I(info[7]), I(info[8]), (float)D(info[9])); END
FN(Gemm)  // (a, b, bias, c, dt, M, N, K, batch, strideA, strideB, strideC, transB)
  GemmArgs g{P(info[0]), P(info[1]), P(info[2]), P(info[3]), N32(info[4]), I(info[5]), I(info[6]), I(info[7]), I(info[8]), I(info[9]), I(info[10]), I(info[11]), info[12].ToBoolean().Value()};
  gemm(g);
END
FN(CublasInfo)
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", (double)cublasLtVersion());
  o.Set("path", cublasLtPath());
  return o;
END
FN(Attention)  // (q, k, v, o, mask, mstride[4], dt, B, H, Lq, Lk, D, Dv, causal, scale[, blhd]) -> ran
  AttnArgs a{};
  a.q = P(info[0]); a.k = P(info[1]); a.v = P(info[2]); a.o = P(info[3]);
  a.mask = (const uint8_t*)P(info[4]);
  arr(info[5], a.mstride, 4);
  a.dt = N32(info[6]); a.B = N32(info[7]); a.H = N32(info[8]); a.Lq = N32(info[9]); a.Lk = N32(info[10]);
  a.D = N32(info[11]); a.Dv = N32(info[12]); a.causal = info[13].ToBoolean().Value(); a.scale = (float)D(info[14]);
  a.blhd = info.Length() > 15 && info[15].ToBoolean().Value();
  return Napi::Boolean::New(env, launchAttention(a));
END
FN(Conv3d)  // (x, w, b, y, dt, xs[5], ws[5], os[5], stride[3], pad[3])
  int64_t xs[5], ws[5], os[5], st[3], pd[3];
  arr(info[5], xs, 5); arr(info[6], ws, 5); arr(info[7], os, 5); arr(info[8], st, 3); arr(info[9], pd, 3);
  int sti[3] = {(int)st[0], (int)st[1], (int)st[2]}, pdi[3] = {(int)pd[0], (int)pd[1], (int)pd[2]};
  void *x = P(info[0]), *w = P(info[1]), *b = P(info[2]), *y = P(info[3]);
  const int dt = N32(info[4]);
  const int64_t K = ws[1] * ws[2] * ws[3] * ws[4], plane = os[2] * os[3] * os[4], Co = ws[0];
  if (plane == 0 || Co == 0) return env.Undefined();
  // half types: cuDNN when it can be loaded (several times our im2col path on the VAE's shapes); else the paths below
  if (cudnnConv3d(Conv3dArgs{x, w, b, y, dt, xs, ws, os, sti, pdi}, [](size_t n) { return g_alloc.alloc(n); }, [](void* p) { g_alloc.free(p); }))
    return env.Undefined();
  // FRAMEPACK_CONV_MMA=1: the tensor-core implicit GEMM (bf16/f16, sm_80+; no column buffer). Measured on an H100
  // it trails im2col + cuBLASLt (0.53 vs 0.48 ms on 1x128x5x80x80 k3), so it is the fallback when the column
  // buffer does not fit (VRAM budget), ahead of the SIMT kernel.
  const bool mmaOk = K > 0 && K < (1 << 30) && xs[1] * xs[2] * xs[3] * xs[4] < (1ll << 31) && !getenv("FRAMEPACK_CONV_IMPLICIT");
  const char* forceMma = getenv("FRAMEPACK_CONV_MMA");
  if (mmaOk && forceMma && forceMma[0] == '1' && launchConv3dMma(x, w, b, y, dt, xs, ws, os, sti, pdi)) return env.Undefined();
  if (K == 0 || K + 8 > 65535 || getenv("FRAMEPACK_CONV_IMPLICIT")) {
    launchConv3d(x, w, b, y, dt, xs, ws, os, sti, pdi);
    return env.Undefined();
  }
  // implicit columns are materialized a chunk of output positions at a time (<= 64 Mi elements), then one
  // cuBLASLt GEMM per chunk writes straight into the output: out[n][:, p0:p0+pc] = W' (Co x Kp) @ col (Kp x pc).
  // With a bias, W' = [W | bias | 0] and col gets a row of ones (K padded to a multiple of 8), so the bias is
  // added in the GEMM's f32 accumulator (one rounding, like the CPU backend).
  const int es = dtSize(dt);
  const bool pointwise = !b && ws[2] * ws[3] * ws[4] == 1 && sti[0] * sti[1] * sti[2] == 1 && pdi[0] + pdi[1] + pdi[2] == 0;
  const int64_t Kp = b ? (K + 1 + 7) / 8 * 8 : K;
  int64_t pc = plane;
  void *col = nullptr, *w2 = nullptr;
  if (!pointwise) {
    const int64_t maxElems = 64ll << 20;
    pc = std::min<int64_t>(plane, std::max<int64_t>(256, (maxElems / Kp) / 8 * 8));
    try {
      col = g_alloc.alloc((size_t)(Kp * pc * es));
      if (b) w2 = g_alloc.alloc((size_t)(Co * Kp * es));
    } catch (const OomError&) {
      g_alloc.free(col);
      // no room for columns: an implicit GEMM (tensor cores where possible, else the SIMT kernel)
      if (!(mmaOk && launchConv3dMma(x, w, b, y, dt, xs, ws, os, sti, pdi))) launchConv3d(x, w, b, y, dt, xs, ws, os, sti, pdi);
      return env.Undefined();
    }
    if (b) launchExtendWeight(w, b, w2, dt, Co, K, Kp);
  }
  try {
    for (int64_t n = 0; n < xs[0]; n++)
      for (int64_t p0 = 0; p0 < plane; p0 += pc) {
        const int64_t len = std::min(pc, plane - p0);
        const void* src;
        if (pointwise) src = (const uint8_t*)x + (size_t)(n * xs[1] * plane) * es;
        else {
          launchIm2col(x, col, dt, xs, ws, os, sti, pdi, n, p0, len, Kp);
          src = col;
        }
        GemmArgs g{w2 ? w2 : w, src, nullptr, (uint8_t*)y + (size_t)(n * Co * plane + p0) * es, dt, Co, len, Kp, 1, 0, 0, 0, false, plane};
        gemm(g);
      }
  } catch (...) {
    g_alloc.free(col);
    g_alloc.free(w2);
    throw;
  }
  // stream-ordered reuse: later work on this stream runs after the GEMMs
  g_alloc.free(col);
  g_alloc.free(w2);
END

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
#define REG(n, f) exports.Set(n, Napi::Function::New(env, f))
  REG("init", Init); REG("alloc", Alloc); REG("free", Free); REG("emptyCache", EmptyCache); REG("setBudget", SetBudget);
  REG("resetPeak", ResetPeak); REG("stats", Stats); REG("upload", Upload); REG("download", Download); REG("copyD2D", CopyD2D);
  REG("memset0", Memset0); REG("synchronize", Synchronize); REG("streamCreate", StreamCreate); REG("streamDestroy", StreamDestroy);
  REG("streamSync", StreamSync); REG("setComputeStream", SetComputeStream); REG("getComputeStream", GetComputeStream);
  REG("eventCreate", EventCreate); REG("eventDestroy", EventDestroy); REG("eventRecord", EventRecord); REG("eventSync", EventSync);
  REG("eventQuery", EventQuery); REG("eventElapsed", EventElapsed); REG("streamWaitEvent", StreamWaitEvent); REG("hostAlloc", HostAlloc);
  REG("copyH2DAsync", CopyH2DAsync); REG("copyD2HAsync", CopyD2HAsync); REG("fill", Fill); REG("cast", Cast); REG("unary", Unary);
  REG("binary", Binary); REG("compare", Compare); REG("where", Where); REG("affine", Affine); REG("rope", Rope);
  REG("stridedCopy", StridedCopy); REG("pad", Pad); REG("indexSelect", IndexSelect); REG("gather", Gather); REG("reduce", Reduce);
  REG("variance", Variance); REG("softmax", Softmax); REG("norm", Norm); REG("groupNorm", GroupNorm); REG("gemm", Gemm);
  REG("cublasInfo", CublasInfo); REG("attention", Attention); REG("conv3d", Conv3d);
  REG("dequant8", Dequant8); REG("quantize8Host", Quantize8Host); REG("cudnnInfo", CudnnInfo);
  exports.Set("buildArchs", Napi::String::New(env, FRAMEPACK_CUDA_ARCHS));
  return exports;
}
}  // namespace

NODE_API_MODULE(framepack_cuda, InitAll)
