export * from './errors.js';
export * from './dtype.js';
export type { Backend, DeviceType, Storage, View, UnaryOp, BinaryOp, CompareOp, ReduceOp, PadMode, RopeMode, AttentionParams } from './backend.js';
export { memoryStats, resetPeakMemory, type MemoryStats } from './memory.js';
export { backendFor, registerBackend, registerBackendLoader, isDeviceAvailable, parseDevice } from './device.js';
export { tidy, keep, disposeAll } from './scope.js';
export { Tensor, numelOf } from './tensor.js';
export * from './ops.js';
export { broadcastShapes } from './shape.js';
export { WeightStreamer, WeightStreamError, streamGroupBytes, type StreamGroup, type WeightStreamOptions } from './weight-stream.js';
export { CpuBackend } from './cpu/backend.js';
export { erf } from './cpu/math.js';
export {
  loadCudaBackend, parseBytes, cudaDeviceInfo, cudaAllocatorStats, setVramBudget, cudaEmptyCache, cudaResetPeak, cudaSynchronize,
  cublasLtInfo, CudaStream, CudaEvent, setComputeStream, allocPinned, copyToDeviceAsync, copyToHostAsync, CudaBackend,
  type AllocatorStats, type DeviceInfo,
} from './cuda/index.js';

import { CpuBackend } from './cpu/backend.js';
import { registerBackend, registerBackendLoader } from './device.js';
import { loadCudaBackend } from './cuda/index.js';
registerBackend(new CpuBackend());
// CUDA loads lazily: the first cuda tensor (or isDeviceAvailable('cuda')) loads the addon and checks for a GPU.
registerBackendLoader('cuda', loadCudaBackend);
