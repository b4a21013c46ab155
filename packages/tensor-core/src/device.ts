import type { Backend, DeviceType } from './backend.js';
import { DeviceError } from './errors.js';

const backends = new Map<DeviceType, Backend>();
const loaders = new Map<DeviceType, () => Backend>();
const loadErrors = new Map<DeviceType, string>();

export function registerBackend(b: Backend): void {
  backends.set(b.device, b);
}
/** Register a lazy loader (the CUDA addon is only loaded when a cuda tensor is first requested). */
export function registerBackendLoader(device: DeviceType, load: () => Backend): void {
  loaders.set(device, load);
}

export function backendFor(device: DeviceType): Backend {
  const b = backends.get(device);
  if (b) return b;
  const load = loaders.get(device);
  if (load && !loadErrors.has(device)) {
    try {
      const loaded = load();
      backends.set(device, loaded);
      return loaded;
    } catch (e) {
      loadErrors.set(device, e instanceof Error ? e.message : String(e));
    }
  }
  const why = loadErrors.get(device) ?? 'no backend registered for it';
  throw new DeviceError(`device '${device}' is not available: ${why}. Only the CPU backend can be used on this machine.`);
}

/** Whether a device's backend is usable here (loads it on first call). */
export function isDeviceAvailable(device: DeviceType): boolean {
  try {
    backendFor(device);
    return true;
  } catch {
    return false;
  }
}

export function parseDevice(d: string): DeviceType {
  const base = d.split(':')[0];
  if (base === 'cpu' || base === 'cuda') return base;
  throw new DeviceError(`unknown device '${d}' (expected 'cpu' or 'cuda')`);
}
