import type { DeviceType } from './backend.js';

export interface MemoryStats {
  /** Bytes held by live storages now. */
  currentBytes: number;
  /** Highest `currentBytes` since start or the last `resetPeakMemory`. */
  peakBytes: number;
  /** Live storages. */
  allocations: number;
}

const stats = new Map<DeviceType, MemoryStats>();
function entry(d: DeviceType): MemoryStats {
  let s = stats.get(d);
  if (!s) stats.set(d, (s = { currentBytes: 0, peakBytes: 0, allocations: 0 }));
  return s;
}

export function recordAlloc(d: DeviceType, bytes: number): void {
  const s = entry(d);
  s.currentBytes += bytes;
  s.allocations++;
  if (s.currentBytes > s.peakBytes) s.peakBytes = s.currentBytes;
}
export function recordFree(d: DeviceType, bytes: number): void {
  const s = entry(d);
  s.currentBytes -= bytes;
  s.allocations--;
}
/** Allocation statistics of tensors on a device (a copy). */
export function memoryStats(d: DeviceType = 'cpu'): MemoryStats {
  return { ...entry(d) };
}
export function resetPeakMemory(d: DeviceType = 'cpu'): void {
  const s = entry(d);
  s.peakBytes = s.currentBytes;
}
