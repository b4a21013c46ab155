export * from './section-loop.js';
export { HunyuanVideoGenerator, type GenerateToFilesOptions, type FilesResult } from './generator.js';
export { loadComponents, resolveModelPaths, type LoadOptions } from './components.js';
export { runJob, imageToTensor, type Components, type ProgressEvent, type RunOptions, type JobResult, type TextConds, type Stage } from './pipeline.js';
export { resolveParams, DEFAULTS, type GenerateParams } from './params.js';
export { GeneratorError, ModelsMissingError, type GeneratorErrorCode } from './errors.js';
export { JobOutput, partialPath, sidecarPath } from './job-output.js';
export { ensureTinyModels, tinyModelDir, tinyConfigs, TINY_FAMILY_VERSION } from './tiny/family.js';
export { createJobRunner, validateJobParams, defaultOutputDir, type QueueJobParams } from './queue-jobs.js';
