export { LoraError, type LoraErrorCode } from './errors.js';
export { ModuleIndex, flatName, type ModuleTarget, type TargetPart, type ParamShapes } from './module-index.js';
export {
  parseLora,
  resolveLora,
  type LoraModule,
  type LoraStateDict,
  type LoraTensorSource,
  type ParsedLora,
  type ResolvedLora,
  type ResolvedModule,
  type LoraFormat,
  type SkippedKey,
} from './formats.js';
export { LoraStack, type LoraSpec, type LoraReport, type LoraReportEntry, type StackOptions, type MergeOptions, type MergeHandle } from './merge.js';
export { loadLora, listLoras, type LoraFileEntry } from './load.js';
export { shapesOf } from './shapes.js';
export { withLoras } from './source.js';
