/** Base class of dit-model errors; `code` is stable for programmatic handling. */
export class DiTError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
/** A config.json (or config object) that the packed DiT cannot be built from. */
export class DiTConfigError extends DiTError {
  constructor(message: string) {
    super(message, 'E_DIT_CONFIG');
  }
}
/** Weights that do not match the config: missing, unexpected or mis-shaped keys (all listed at once). */
export class DiTWeightsError extends DiTError {
  constructor(
    message: string,
    readonly missing: readonly string[] = [],
    readonly unexpected: readonly string[] = [],
    readonly misShaped: readonly string[] = [],
  ) {
    super(message, 'E_DIT_WEIGHTS');
  }
}
/** Forward inputs with wrong shapes, dtypes or combinations. */
export class DiTInputError extends DiTError {
  constructor(message: string) {
    super(message, 'E_DIT_INPUT');
  }
}
