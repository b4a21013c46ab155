/** Job states. `queued -> running -> completed | failed | cancelled`; `running -> queued` on crash recovery/retry. */
export type JobStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];
/** States a job never leaves on its own (only `retry` or `clear` touch them). */
export const FINISHED_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

/** Job parameters as stored: a JSON object. The generator narrows it with its own validator. */
export type JobParams = Record<string, unknown>;

/** The latest progress report of a running job. */
export interface JobProgress {
  /** 0..1 over the whole job. */
  fraction: number;
  message?: string;
  /** Current section (FramePack generates a video section by section). */
  section?: number;
  /** Current sampling step within the section. */
  step?: number;
}

/** A file the job produced. `partial` stays true for files of a job that did not complete and for intermediates. */
export interface JobOutput {
  path: string;
  kind: string;
  partial: boolean;
  /** The attempt that wrote it (1-based). */
  attempt: number;
}

export interface Job<P = JobParams> {
  id: number;
  name: string | null;
  status: JobStatus;
  params: P;
  priority: number;
  attempts: number;
  maxAttempts: number;
  progress: JobProgress;
  outputs: JobOutput[];
  error: string | null;
  /** The worker holding the job while running: `host:pid:token`. */
  owner: string | null;
  ownerPid: number | null;
  /** Epoch ms until which the owner's lease holds; renewed by the worker's heartbeat. */
  leaseUntil: number | null;
  heartbeatAt: number | null;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

/** What the runner gets besides the params. */
export interface JobContext {
  /** Aborted when the job is cancelled (or the worker shuts down); check it between steps. */
  signal: AbortSignal;
  /** Report progress; cheap to call often (writes are throttled). Also renews the lease and polls for a cancel. */
  progress(p: JobProgress): void;
  /** Record a file as soon as it exists, so it is listed even if the job later dies. */
  output(path: string, kind: string): void;
  /** The job being run (read-only snapshot at claim time). */
  job: Readonly<Job>;
}

/** The injected job runner: the queue never imports the generator. */
export type JobRunner<P = JobParams> = (params: P, ctx: JobContext) => Promise<{ outputs: string[] }>;

/** Validates and normalises submitted params; throws (ideally a ValidationError) on bad input. */
export type ParamsValidator<P = JobParams> = (params: unknown) => P;

export interface AddJobOptions {
  name?: string | null;
  /** Higher runs first; equal priorities run in submission order. Default 0. */
  priority?: number;
  /** Attempts allowed in total (crash recoveries and retryable errors count). Default: the queue's. */
  maxAttempts?: number;
}

export interface ListOptions {
  status?: JobStatus | readonly JobStatus[];
  limit?: number;
  offset?: number;
  /** Newest first instead of queue order. */
  newestFirst?: boolean;
}
