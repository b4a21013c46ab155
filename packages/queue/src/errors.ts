/**
 * Typed queue errors. Each carries a stable `code` and the HTTP status the API answers with, so the server,
 * the CLI and library callers can react without parsing messages.
 */
export type QueueErrorCode =
  | 'E_NOT_FOUND'
  | 'E_STATE'
  | 'E_VALIDATION'
  | 'E_DB'
  | 'E_CONFIG'
  | 'E_CLOSED'
  | 'E_SLOT_TAKEN';

export class QueueError extends Error {
  constructor(
    message: string,
    readonly code: QueueErrorCode,
    /** HTTP status the API maps this error to. */
    readonly status: number,
  ) {
    super(message);
    this.name = 'QueueError';
  }
}

/** No job with this id exists (or it was cleared). */
export class JobNotFoundError extends QueueError {
  constructor(readonly jobId: number) {
    super(`job ${jobId} does not exist (list jobs with \`framepack queue list\`)`, 'E_NOT_FOUND', 404);
    this.name = 'JobNotFoundError';
  }
}

/** The job is in a state that does not allow the operation (e.g. cancelling a completed job). */
export class JobStateError extends QueueError {
  constructor(readonly jobId: number, readonly state: string, action: string, hint = '') {
    super(`cannot ${action} job ${jobId}: it is ${state}${hint ? ` (${hint})` : ''}`, 'E_STATE', 409);
    this.name = 'JobStateError';
  }
}

/** Submitted parameters or request fields are invalid; `path` names the offending field. */
export class ValidationError extends QueueError {
  constructor(message: string, readonly path?: string) {
    super(path ? `${path}: ${message}` : message, 'E_VALIDATION', 400);
    this.name = 'ValidationError';
  }
}

/** Bad queue/worker/server configuration (e.g. a public bind address without a token). */
export class QueueConfigError extends QueueError {
  constructor(message: string) {
    super(message, 'E_CONFIG', 500);
    this.name = 'QueueConfigError';
  }
}

/** Another live worker holds the named worker slot (e.g. the same GPU). */
export class SlotTakenError extends QueueError {
  constructor(readonly slot: string, readonly holder: string, readonly holderPid: number | null) {
    super(
      `worker slot "${slot}" is held by ${holder}${holderPid !== null ? ` (pid ${holderPid})` : ''}: stop that worker, or give this one another slot`,
      'E_SLOT_TAKEN',
      409,
    );
    this.name = 'SlotTakenError';
  }
}

/** The queue database was closed or could not be opened. */
export class QueueDatabaseError extends QueueError {
  constructor(message: string, readonly dbPath: string, override readonly cause?: unknown) {
    super(`${dbPath}: ${message}`, 'E_DB', 500);
    this.name = 'QueueDatabaseError';
  }
}

/**
 * Thrown by a job runner for a failure worth another attempt (e.g. a transient out-of-memory); the worker
 * re-queues the job while attempts remain. Any other runner error fails the job at once: a deterministic
 * failure (bad input, missing weights) would only fail again.
 */
export class RetryableJobError extends Error {
  readonly retryable = true;
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = 'RetryableJobError';
  }
}

/** Whether a runner error asks to be retried (a RetryableJobError, or any error with `retryable: true`). */
export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === true;
}
