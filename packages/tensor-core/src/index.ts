export * from './errors.js';
export * from './dtype.js';
export type { Backend, DeviceType, Storage, View, UnaryOp, BinaryOp, CompareOp, ReduceOp, PadMode, RopeMode, AttentionParams } from './backend.js';
export { memoryStats, resetPeakMemory, type MemoryStats } from './memory.js';
export { backendFor, registerBackend, registerBackendLoader, isDeviceAvailable, parseDevice } from './device.js';
export { tidy, keep, disposeAll } from './scope.js';
export { Tensor, numelOf } from './tensor.js';
export * from './ops.js';
export { broadcastShapes } from './shape.js';
export { WeightStreamer, WeightStreamError, streamGroupBytes, streamGroupLayout, type StreamGroup, type WeightStreamOptions } from './weight-stream.js';
export {
  fp8e4m3Encode, fp8e4m3Decode, weight8DecodeTable, quantize8Host, quantize8HostBf16, isQuantizable8, assertWeight8Format, QuantizeError, WEIGHT8_FORMATS,
  WEIGHT8_MAX, type Weight8Format,
} from './quant8-codec.js';
export { quantize8, dequantize8, dequantize8Into, roundTrip8, type Quantized8 } from './quant8.js';
export { CpuBackend } from './cpu/backend.js';
export { erf } from './cpu/math.js';
export {
  loadCudaBackend, parseBytes, cudaDeviceInfo, cudaAllocatorStats, setVramBudget, cudaEmptyCache, cudaResetPeak, cudaSynchronize,
  cublasLtInfo, cudnnInfo, CudaStream, CudaEvent, setComputeStream, allocPinned, copyToDeviceAsync, copyToHostAsync, quantize8HostNative, CudaBackend,
  type AllocatorStats, type DeviceInfo,
} from './cuda/index.js';

import { CpuBackend } from './cpu/backend.js';
import { registerBackend, registerBackendLoader } from './device.js';
import { loadCudaBackend } from './cuda/index.js';
registerBackend(new CpuBackend());
// CUDA loads lazily: the first cuda tensor (or isDeviceAvailable('cuda')) loads the addon and checks for a GPU.
registerBackendLoader('cuda', loadCudaBackend);
