export * from './errors.js';
export * from './dtype.js';
export type { Backend, DeviceType, Storage, View, UnaryOp, BinaryOp, CompareOp, ReduceOp, PadMode, RopeMode, AttentionParams } from './backend.js';
export { memoryStats, resetPeakMemory, type MemoryStats } from './memory.js';
export { backendFor, registerBackend, registerBackendLoader, isDeviceAvailable, parseDevice } from './device.js';
export { tidy, keep, disposeAll } from './scope.js';
export { Tensor, numelOf } from './tensor.js';
export * from './ops.js';
export { broadcastShapes } from './shape.js';
export { CpuBackend } from './cpu/backend.js';
export { erf } from './cpu/math.js';

import { CpuBackend } from './cpu/backend.js';
import { registerBackend } from './device.js';
registerBackend(new CpuBackend());
