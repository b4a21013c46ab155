export { PromptBlenderError, PromptSyntaxError, type PromptErrorCode } from './errors.js';
export { parsePromptSchedule, promptAt, type ParseOptions, type PromptSchedule, type PromptSegment } from './parse.js';
export {
  sectionSpans,
  sectionWeights,
  type BlendOptions,
  type PromptWeight,
  type SectionLayout,
  type SectionMode,
  type SectionSpan,
  type SectionWeights,
} from './sections.js';
export {
  sectionConditioning,
  disposeSectionConditioning,
  type PromptEmbedding,
  type PromptEncoder,
  type SectionConditioning,
} from './blend.js';
