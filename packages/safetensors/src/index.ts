export { SafetensorsError } from './errors.js';
export { ST_DTYPE_BYTES, NATIVE_DTYPE, type StDType } from './dtypes.js';
export { SafetensorsFile, openSafetensors, directReaderAs, MAX_HEADER_BYTES, type TensorInfo, type ReadOptions, type TensorSource } from './reader.js';
export { ShardedCheckpoint, openCheckpoint } from './checkpoint.js';
export { writeSafetensors } from './writer.js';
