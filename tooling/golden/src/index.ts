export * from './types.js';
export * from './compare.js';
export { runGoldenDir, formatResult, defaultGoldenDir, loadKinds, type GoldenResult, type RunOptions } from './runner.js';
