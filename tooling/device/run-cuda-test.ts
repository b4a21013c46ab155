// Entry for the device: runs packages/tensor-core/test/cuda.test.ts through the vitest shim.
import '../../packages/tensor-core/test/cuda.test.js';
import { runCollected } from './vitest-shim.js';
process.exit((await runCollected()) ? 1 : 0);
