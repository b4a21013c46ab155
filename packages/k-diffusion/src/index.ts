export * from './errors.js';
export { TorchGenerator, randn, type GeneratorState, type RandnKernel } from './rng.js';
export {
  calculateFluxMu,
  fluxSigmas,
  fluxSigmasFromMu,
  fluxTimeShift,
  linspaceF32,
  muFor,
  seqLengthOf,
  type FluxMuOptions,
  type FluxSigmasOptions,
} from './sigmas.js';
export { sampleUniPC, unipcSteps, unipcCoefficients, type DenoiseFn, type UniPCCoefficients, type UniPCStep, type UniPCVariant } from './unipc.js';
export { solveF32 } from './linalg.js';
export {
  flowMatchDenoiser,
  rescaleNoiseCfg,
  roundToDType,
  roundTensorTo,
  type FlowDenoiserOptions,
  type ModelCallContext,
  type ModelDType,
  type ModelFn,
} from './wrapper.js';
export { sampleHunyuan, hunyuanSigmas, latentShape, LATENT_CHANNELS, type SampleHunyuanOptions, type SamplerStepInfo } from './sample-hunyuan.js';
