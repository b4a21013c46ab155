export { EncoderConfigError, CheckpointMismatchError, TokenizerError, EncoderInputError } from './errors.js';
export { type LoadOptions, type WeightSpec, readConfigJson, openWeights, validateWeights } from './weights.js';
export { type StreamLayersOptions } from './streaming.js';
export { LlamaTextEncoder, llamaWeightSpec, parseLlamaConfig, llamaInvFreq, llamaRopeTables, type LlamaConfig, type LlamaForwardOptions, type LlamaLoadOptions } from './llama.js';
export { ClipTextEncoder, clipWeightSpec, parseClipTextConfig, type ClipTextConfig } from './clip-text.js';
export { SiglipVisionEncoder, siglipWeightSpec, type SiglipLoadOptions, parseSiglipVisionConfig, readSiglipPreprocess, siglipPixelValues, type SiglipVisionConfig, type SiglipPreprocess } from './siglip.js';
export { LlamaTokenizer, ClipTokenizer, clipTokenizerJson, type EncodeOptions, type TokenizedText, type LlamaTokenizerOptions } from './tokenizers.js';
export {
  HUNYUAN_PROMPT_TEMPLATE,
  HUNYUAN_CROP_START,
  applyPromptTemplate,
  cropOrPadYieldMask,
  cropLlamaHidden,
  encodeLlamaPrompt,
  encodeClipPrompt,
  encodePromptConds,
  zeroNegativeConds,
  disposePromptConds,
  type PromptConds,
  type EncodePromptOptions,
} from './prompt.js';
