export { HunyuanVideoTransformer3DModelPacked, type PackedDiTInputs, type ForwardOptions, type LoadOptions } from './model.js';
export type { StepSkipContext, StepSkipHook } from './step-skip.js';
export { type DiTConfig, DEFAULT_CONFIG, parseConfig, validateConfig, readConfigFile, innerDim, mlpDim, refinerMlpDim } from './config.js';
export { DiTWeights, ParamScope, expectedWeightShapes, checkWeightKeys, loadWeights, type WeightLoadOptions } from './weights.js';
export { DiTError, DiTConfigError, DiTWeightsError, DiTInputError } from './errors.js';
export { axisFrequencies, ropeGrid, poolRopeGrid, ropeCosSin, applyRope, type RopeSpec } from './rope.js';
export { timestepProjection, mlpEmbedder, embedTimestep, timeTextEmbed, patchEmbed, imageProjection } from './embeddings.js';
export { tokenRefiner, refinerBlock, refinerMask, maskedMean } from './token-refiner.js';
export { dualStreamBlock, singleStreamBlock, dualBlockModulatedInput, type BlockContext } from './blocks.js';
