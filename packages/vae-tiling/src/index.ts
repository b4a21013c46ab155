export { HunyuanVideoVae, type VaeLoadOptions, type DecodeOptions, type EncodeOptions, type VaeEncoding } from './vae.js';
export {
  type HunyuanVideoVaeConfig,
  type VaeLayout,
  type DownBlockPlan,
  type UpBlockPlan,
  HUNYUAN_VIDEO_VAE_CONFIG,
  configFromDiffusers,
  validateConfig,
  vaeLayout,
} from './config.js';
export { type TilingOptions, DEFAULT_TILING, NO_TILING, resolveTiling, validateTiling, blendInto, spatialTiles, temporalTiles, type SpatialPlan, type TemporalPlan, type RegionSink } from './tiling.js';
export { previewRgb, previewImage, type PreviewImage, LATENT_RGB_FACTORS, LATENT_RGB_BIAS } from './preview.js';
export { expectedParameters, loadWeights, readPretrained, type VaeWeights, type LoadOptions } from './weights.js';
export { encodeMoments, decodeLatents } from './encoder-decoder.js';
export { VaeError, VaeConfigError, VaeInputError, VaeTilingError, VaeWeightsError, type MisShapedKey } from './errors.js';
