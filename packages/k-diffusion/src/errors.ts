/** Base class of every k-diffusion error; `code` is stable for programmatic handling. */
export class KDiffusionError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** An option outside its allowed range (steps < 1, sizes not multiples of 8, bad shift ...). */
export class SamplerOptionError extends KDiffusionError {
  constructor(message: string) {
    super(message, 'E_SAMPLER_OPTION');
  }
}

/** A tensor given to the sampler has the wrong shape or dtype (noise, initial latent, model output ...). */
export class SamplerShapeError extends KDiffusionError {
  constructor(message: string) {
    super(message, 'E_SAMPLER_SHAPE');
  }
}

/** Sampling stopped because the caller's AbortSignal fired; `step` is the first step that did not run. */
export class SamplingCancelledError extends KDiffusionError {
  constructor(
    readonly step: number,
    readonly totalSteps: number,
    readonly reason?: unknown,
  ) {
    super(`sampling cancelled before step ${step} of ${totalSteps}`, 'E_CANCELLED');
  }
}

/** The RNG was asked for something it cannot produce (bad seed, bad shape). */
export class RngError extends KDiffusionError {
  constructor(message: string) {
    super(message, 'E_RNG');
  }
}
