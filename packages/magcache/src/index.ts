export * from './errors.js';
export type { StepSkipContext, StepSkipHook } from './hook.js';
export { roundHalfEven, roundDecimalsHalfEven } from './rounding.js';
export { SkipStats, mergeStats, formatSkipStats, type SectionStats, type StepSkipStats } from './stats.js';
export { ResidualCacheHook } from './residual-cache.js';
export {
  TeaCache,
  FRAMEPACK_TEACACHE_COEFFICIENTS,
  FRAMEPACK_TEACACHE_THRESHOLD,
  polyval,
  relativeL1,
  type TeaCacheOptions,
  type TeaCacheTraceEntry,
} from './teacache.js';
export { MagCache, MAGCACHE_DEFAULTS, type MagCacheOptions, type MagCacheTraceEntry } from './magcache.js';
export {
  modelFamilyFor,
  nearestStepInterpolation,
  selectMagRatios,
  validateMagRatiosTable,
  withMagRatios,
  type MagRatiosSelection,
  type MagRatiosTable,
} from './table.js';
export { STUDIO_MAG_RATIOS, MAGCACHE4FRAMEPACK_RATIOS } from './studio-ratios.js';
export {
  MagCacheCalibrator,
  residualChange,
  calibrationTable,
  readCalibrationFile,
  writeCalibrationFile,
  studioCalibrationLine,
  type CalibrationOptions,
  type CalibrationResult,
  type ResidualChange,
} from './calibration.js';
export { createBranchHooks, type BranchHooks, type CfgBranch } from './branches.js';
