/** Base class of magcache errors; `code` is stable for programmatic handling. */
export class StepSkipError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
/** Options that cannot work (threshold, K, retention, coefficients, step counts). */
export class StepSkipOptionsError extends StepSkipError {
  constructor(message: string) {
    super(message, 'E_STEP_SKIP_OPTIONS');
  }
}
/** A calibration table that is malformed, or has no entry for the requested model family. */
export class CalibrationTableError extends StepSkipError {
  constructor(message: string) {
    super(message, 'E_CALIBRATION_TABLE');
  }
}
/** The hook was driven in an order it cannot follow (steps going backwards, skip without a cached residual...). */
export class StepSkipStateError extends StepSkipError {
  constructor(message: string) {
    super(message, 'E_STEP_SKIP_STATE');
  }
}
