import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { isRetryable, SlotTakenError, ValidationError } from './errors.js';
import { hostIdentity, processStartId } from './process-identity.js';
import { registerLiveOwner, unregisterLiveOwner, type JobOwner, type Queue } from './queue.js';
import type { Job, JobContext, JobParams, JobProgress, JobRunner, ParamsValidator } from './types.js';

export interface WorkerOptions<P = JobParams> {
  queue: Queue;
  runner: JobRunner<P>;
  /** Re-validates stored params right before running (e.g. the input image still exists). Failures are final. */
  validateParams?: ParamsValidator<P>;
  /** Lease length; a worker on another host is presumed dead once its lease runs out. Default 30000 ms. */
  leaseMs?: number;
  /** Sleep between polls when the queue is empty (an in-process add wakes the worker at once). Default 1000 ms. */
  pollMs?: number;
  /** How often a running job's row is checked for a cancel made by another process. Default 500 ms. */
  cancelPollMs?: number;
  /** At most one progress write per interval; the latest report wins. Default 250 ms. */
  progressIntervalMs?: number;
  /** How often dead workers' jobs are looked for while this worker runs. Default 10000 ms. */
  recoverIntervalMs?: number;
  /**
   * A named slot, e.g. the GPU this worker uses ("cuda:0"). run() fails with SlotTakenError while another live
   * worker holds the same slot on this queue, so two workers never share one GPU by mistake.
   */
  slot?: string;
  /** Stop after this many jobs (finished in any way). */
  maxJobs?: number;
  /** Return from run() when the queue is empty instead of waiting for work. */
  exitWhenIdle?: boolean;
  log?: (line: string) => void;
}

/** Why a runner's signal was aborted. */
export type AbortKind = 'cancelled' | 'shutdown' | 'lost';

/** The abort reason a runner sees on `ctx.signal.reason`. */
export class JobAbortedError extends Error {
  constructor(readonly kind: AbortKind, readonly jobId: number) {
    super(
      kind === 'cancelled' ? `job ${jobId} was cancelled`
        : kind === 'shutdown' ? `worker is shutting down; job ${jobId} will be re-queued`
        : `job ${jobId} is no longer held by this worker`,
    );
    this.name = 'JobAbortedError';
  }
}

export type JobOutcome =
  | { kind: 'completed'; job: Job; outputs: string[] }
  | { kind: 'failed'; job: Job; error: string; requeued: boolean }
  | { kind: 'cancelled'; job: Job }
  | { kind: 'released'; job: Job }
  | { kind: 'lost'; job: Job };

export interface WorkerEvents {
  start: [job: Job];
  end: [outcome: JobOutcome];
  recovered: [ids: number[]];
}

/**
 * Runs queued jobs one at a time. A claim sets this worker as the job's owner with a lease; a heartbeat and every
 * progress report renew it. Cancels are seen through the queue's in-process event and by polling the row (so a
 * cancel from another process, or one made while the runner blocks the event loop between progress reports,
 * still aborts the runner's signal). Results of a job that is no longer ours are never written.
 */
export class Worker<P = JobParams> extends EventEmitter<WorkerEvents> {
  private ownerInfo: JobOwner;
  private readonly o: Required<Omit<WorkerOptions<P>, 'validateParams' | 'maxJobs' | 'log' | 'slot'>> & WorkerOptions<P>;
  private stopping: 'no' | 'drain' | 'requeue' = 'no';
  private current: { job: Job; ac: AbortController } | null = null;
  private wake: (() => void) | null = null;
  private jobsDone = 0;
  private lastRecover = 0;
  private running: Promise<void> | null = null;
  private looping = false;

  constructor(opts: WorkerOptions<P>) {
    super();
    this.o = {
      leaseMs: 30000, pollMs: 1000, cancelPollMs: 500, progressIntervalMs: 250, recoverIntervalMs: 10000,
      exitWhenIdle: false, ...opts,
    };
    for (const k of ['leaseMs', 'pollMs', 'cancelPollMs', 'progressIntervalMs', 'recoverIntervalMs'] as const) {
      const v = this.o[k];
      if (!Number.isFinite(v) || v < 0) throw new ValidationError('must be a non-negative number', k);
    }
    if (this.o.leaseMs < 1000) throw new ValidationError('must be at least 1000 ms', 'leaseMs');
    this.ownerInfo = newOwner();
  }

  /** This worker's identity in the jobs it claims. */
  get owner(): JobOwner {
    return this.ownerInfo;
  }

  /**
   * After a database error in the middle of a job, the row may still say "running" under this worker. Taking a
   * new identity makes that job look abandoned, so the next recover() re-queues it (as a crash) instead of it
   * staying stuck under a live owner.
   */
  private abandonIdentity(): void {
    const live = this.looping;
    if (live) unregisterLiveOwner(this.ownerInfo.id);
    this.ownerInfo = newOwner();
    if (live) registerLiveOwner(this.ownerInfo.id);
    this.lastRecover = 0;
    // The slot follows the new identity (the old one is no live worker any more, so it can be taken over).
    if (live && this.o.slot !== undefined) {
      try {
        this.takeSlot();
      } catch (err) {
        this.log(`worker slot "${this.o.slot}": ${errorMessage(err)}`);
      }
    }
  }

  private takeSlot(): void {
    const got = this.o.queue.acquireSlot(this.o.slot!, this.owner, this.o.leaseMs);
    if (!got.ok) throw new SlotTakenError(this.o.slot!, got.holder, got.pid);
  }

  private log(line: string): void {
    this.o.log?.(line);
  }

  /** The job being run now, if any. */
  get currentJob(): Job | undefined {
    return this.current?.job;
  }

  /** Runs until stop() (or maxJobs / exitWhenIdle). Recovers dead workers' jobs first. */
  run(): Promise<void> {
    if (this.running) return this.running;
    this.stopping = 'no';
    this.running = this.loop().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async loop(): Promise<void> {
    registerLiveOwner(this.owner.id);
    this.looping = true;
    const onAdded = () => this.wake?.();
    this.o.queue.events.on('added', onAdded);
    let dbErrors = 0;
    let slotTimer: NodeJS.Timeout | null = null;
    try {
      if (this.o.slot !== undefined) {
        this.takeSlot();
        slotTimer = setInterval(() => {
          try {
            if (!this.o.queue.renewSlot(this.o.slot!, this.owner.id, this.o.leaseMs)) this.takeSlot();
          } catch (err) {
            this.log(`worker slot "${this.o.slot}": renewal failed: ${errorMessage(err)}`);
          }
        }, Math.max(100, Math.floor(this.o.leaseMs / 3)));
        slotTimer.unref();
      }
      this.lastRecover = 0;
      while (this.stopping === 'no') {
        if (this.o.maxJobs !== undefined && this.jobsDone >= this.o.maxJobs) break;
        let outcome: JobOutcome | undefined;
        try {
          if (Date.now() - this.lastRecover >= this.o.recoverIntervalMs) this.recoverNow();
          outcome = await this.runOnce();
          dbErrors = 0;
        } catch (err) {
          // A database error (e.g. locked past busy_timeout, disk full). Give up after repeated failures.
          if (this.o.queue.closed || ++dbErrors >= MAX_CONSECUTIVE_DB_ERRORS) throw err;
          this.log(`queue database error (${dbErrors}/${MAX_CONSECUTIVE_DB_ERRORS}), retrying: ${errorMessage(err)}`);
          this.abandonIdentity();
          await new Promise((r) => setTimeout(r, Math.max(50, this.o.pollMs)));
          continue;
        }
        if (outcome) continue;
        if (this.o.exitWhenIdle) break;
        await new Promise<void>((res) => {
          const t = setTimeout(done, this.o.pollMs);
          function done() {
            clearTimeout(t);
            res();
          }
          this.wake = done;
        });
        this.wake = null;
      }
    } finally {
      if (slotTimer) clearInterval(slotTimer);
      if (this.o.slot !== undefined && !this.o.queue.closed) {
        try {
          this.o.queue.releaseSlot(this.o.slot, this.owner.id);
        } catch (err) {
          this.log(`worker slot "${this.o.slot}": release failed: ${errorMessage(err)}`);
        }
      }
      this.o.queue.events.off('added', onAdded);
      this.looping = false;
      unregisterLiveOwner(this.owner.id);
    }
  }

  private recoverNow(): void {
    this.lastRecover = Date.now();
    const rec = this.o.queue.recover();
    if (rec.length) {
      for (const r of rec) this.log(`recovered job ${r.id} from dead worker ${r.owner}: ${r.action}`);
      this.emit('recovered', rec.map((r) => r.id));
    }
  }

  /**
   * Stops the loop. 'drain' (default) lets the running job finish; 'requeue' aborts it and gives it back to the
   * queue without counting the attempt. Resolves when the loop has ended.
   */
  async stop(mode: 'drain' | 'requeue' = 'drain'): Promise<void> {
    this.stopping = mode;
    this.wake?.();
    if (mode === 'requeue' && this.current) this.current.ac.abort(new JobAbortedError('shutdown', this.current.job.id));
    await this.running?.catch(() => {}); // a loop error is reported to run()'s caller
  }

  /** Claims and runs one job; undefined when the queue is empty. */
  async runOnce(): Promise<JobOutcome | undefined> {
    const standalone = !this.looping;
    if (standalone) registerLiveOwner(this.owner.id);
    try {
      const job = this.o.queue.claim(this.owner, this.o.leaseMs);
      if (!job) return undefined;
      this.jobsDone++;
      return await this.execute(job);
    } finally {
      if (standalone) unregisterLiveOwner(this.owner.id);
    }
  }

  private async execute(job: Job): Promise<JobOutcome> {
    const { queue, leaseMs, cancelPollMs, progressIntervalMs } = this.o;
    const owner = this.owner.id;
    const ac = new AbortController();
    this.current = { job, ac };
    this.emit('start', job);
    this.log(`job ${job.id} started (attempt ${job.attempts}/${job.maxAttempts})`);

    const abort = (kind: AbortKind) => {
      if (!ac.signal.aborted) ac.abort(new JobAbortedError(kind, job.id));
    };
    // Cancel detection: the row must still be ours and running.
    let lastCheck = Date.now();
    const checkRow = () => {
      lastCheck = Date.now();
      const s = queue.statusOf(job.id);
      if (!s || s.owner !== owner) abort('lost');
      else if (s.status === 'cancelled') abort('cancelled');
      else if (s.status !== 'running') abort('lost');
    };
    const onCancelled = (id: number) => {
      if (id === job.id) abort('cancelled');
    };
    queue.events.on('cancelled', onCancelled);
    if (this.stopping === 'requeue') abort('shutdown');

    // Progress: keep the latest, write at most once per interval. Writing also renews the lease.
    let pending: JobProgress | null = null;
    let lastWrite = 0;
    let flushTimer: NodeJS.Timeout | null = null;
    const flush = () => {
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = null;
      if (!pending || ac.signal.aborted) return;
      const p = pending;
      pending = null;
      lastWrite = Date.now();
      if (!queue.setProgress(job.id, owner, p, leaseMs)) checkRow();
    };
    // Timer callbacks must never throw (an uncaught error would kill the worker): log and try again next tick.
    const safely = (what: string, fn: () => void) => () => {
      try {
        fn();
      } catch (err) {
        this.log(`job ${job.id}: ${what} failed: ${errorMessage(err)}`);
      }
    };
    const heartbeat = setInterval(safely('heartbeat', () => {
      if (!queue.heartbeat(job.id, owner, leaseMs)) checkRow();
    }), Math.max(100, Math.floor(leaseMs / 3)));
    const poll = setInterval(safely('cancel poll', checkRow), Math.max(20, cancelPollMs));
    const safeFlush = safely('progress write', flush);
    heartbeat.unref();
    poll.unref();

    const ctx: JobContext = {
      signal: ac.signal,
      job,
      progress: (p) => {
        if (ac.signal.aborted) return;
        pending = normaliseProgress(p);
        const now = Date.now();
        if (now - lastWrite >= progressIntervalMs) safeFlush();
        else if (!flushTimer) {
          flushTimer = setTimeout(safeFlush, progressIntervalMs - (now - lastWrite));
          flushTimer.unref();
        }
        // Synchronous check too: a runner that blocks the event loop between steps still sees a cancel.
        if (now - lastCheck >= cancelPollMs) safely('cancel poll', checkRow)();
      },
      output: (path, kind) => {
        if (typeof path !== 'string' || path === '') throw new ValidationError('must be a non-empty string', 'output path');
        if (!queue.addOutput(job.id, owner, { path: resolve(path), kind: String(kind), partial: true, attempt: job.attempts })) checkRow();
      },
    };

    const finish = (outcome: JobOutcome): JobOutcome => {
      this.log(`job ${job.id} ${outcome.kind}${outcome.kind === 'failed' ? `${outcome.requeued ? ' (re-queued)' : ''}: ${outcome.error}` : ''}`);
      this.emit('end', outcome);
      return outcome;
    };
    /** What to do once the runner ended after an abort. */
    const afterAbort = (): JobOutcome => {
      const reason = ac.signal.reason as JobAbortedError;
      if (reason.kind === 'shutdown' && queue.release(job.id, owner)) return finish({ kind: 'released', job });
      if (reason.kind === 'cancelled') return finish({ kind: 'cancelled', job });
      return finish({ kind: 'lost', job });
    };

    try {
      let params: P;
      try {
        params = this.o.validateParams ? this.o.validateParams(job.params) : (job.params as P);
      } catch (err) {
        const msg = `invalid parameters: ${errorMessage(err)}`;
        const res = queue.fail(job.id, owner, msg, false);
        return res === 'lost' ? finish({ kind: 'lost', job }) : finish({ kind: 'failed', job, error: msg, requeued: false });
      }
      let result: { outputs: string[] };
      try {
        result = await this.o.runner(params, ctx);
      } catch (err) {
        if (ac.signal.aborted) return afterAbort();
        const msg = errorMessage(err);
        const res = queue.fail(job.id, owner, msg, isRetryable(err));
        if (res === 'lost') return finish({ kind: 'lost', job });
        return finish({ kind: 'failed', job, error: msg, requeued: res === 'queued' });
      }
      // A runner that returns normally after a cancel is still cancelled; after a shutdown request its work is done.
      if (ac.signal.aborted && (ac.signal.reason as JobAbortedError).kind !== 'shutdown') return afterAbort();
      flush();
      const outputs = result?.outputs;
      if (!Array.isArray(outputs) || !outputs.every((x) => typeof x === 'string')) {
        const msg = 'job runner returned no { outputs: string[] }';
        queue.fail(job.id, owner, msg, false);
        return finish({ kind: 'failed', job, error: msg, requeued: false });
      }
      const paths = outputs.map((x) => resolve(x));
      if (!queue.complete(job.id, owner, paths)) {
        checkRow();
        return ac.signal.aborted ? afterAbort() : finish({ kind: 'lost', job });
      }
      return finish({ kind: 'completed', job, outputs: paths });
    } finally {
      clearInterval(heartbeat);
      clearInterval(poll);
      if (flushTimer) clearTimeout(flushTimer);
      queue.events.off('cancelled', onCancelled);
      this.current = null;
    }
  }
}

const MAX_CONSECUTIVE_DB_ERRORS = 10;

function newOwner(): JobOwner {
  return {
    id: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
    host: hostIdentity(),
    pid: process.pid,
    start: processStartId(process.pid),
  };
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message;
  return String(err);
}

function normaliseProgress(p: JobProgress): JobProgress {
  const f = Number(p?.fraction);
  const out: JobProgress = { fraction: Number.isFinite(f) ? Math.min(1, Math.max(0, f)) : 0 };
  if (typeof p?.message === 'string') out.message = p.message.slice(0, 2000);
  if (Number.isFinite(p?.section)) out.section = p.section;
  if (Number.isFinite(p?.step)) out.step = p.step;
  return out;
}
