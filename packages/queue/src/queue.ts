import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { JobNotFoundError, JobStateError, QueueDatabaseError, ValidationError } from './errors.js';
import { SCHEMA_VERSION, migrate } from './schema.js';
import { hostIdentity, isProcessAlive } from './process-identity.js';
import {
  FINISHED_STATUSES,
  JOB_STATUSES,
  type AddJobOptions,
  type Job,
  type JobOutput,
  type JobParams,
  type JobProgress,
  type JobStatus,
  type ListOptions,
} from './types.js';

export interface QueueOptions {
  /** maxAttempts for jobs added without one. Default 3. */
  defaultMaxAttempts?: number;
  /** How long a writer waits for another process's write lock before failing. Default 15000 ms. */
  busyTimeoutMs?: number;
  /**
   * SQLite `synchronous`. NORMAL (default) is durable against a killed process in WAL mode; FULL also survives
   * power loss at the cost of an fsync per commit.
   */
  synchronous?: 'NORMAL' | 'FULL';
}

/** Identity of a worker holding a job. `id` is `host:pid:random`, so several workers of one process differ. */
export interface JobOwner {
  id: string;
  host: string;
  pid: number;
  /** Process start stamp (see processStartId) so a reused pid is not taken for the dead worker. */
  start?: string | null;
}

/** A running job whose worker was found dead, and what recovery did with it. */
export interface RecoveredJob {
  id: number;
  owner: string;
  action: 'requeued' | 'failed';
  attempts: number;
}

/** Editable fields of a queued job. */
export interface JobPatch {
  name?: string | null;
  priority?: number;
  maxAttempts?: number;
  params?: JobParams;
}

/** Events of one process's Queue object (other processes are seen by polling the DB). */
export interface QueueEvents {
  added: [id: number];
  cancelled: [id: number];
  changed: [id: number];
}

const MAX_NAME = 200;

/** Workers alive in this process, so recovery never steals from a sibling worker of the same pid. */
const liveOwnersInProcess = new Set<string>();
export function registerLiveOwner(owner: string): void {
  liveOwnersInProcess.add(owner);
}
export function unregisterLiveOwner(owner: string): void {
  liveOwnersInProcess.delete(owner);
}

type Row = Record<string, unknown>;

/** The owner columns shared by jobs and worker slots. */
interface OwnerRow {
  owner: string | null;
  owner_host: string | null;
  owner_pid: number | null;
  owner_start: string | null;
  lease_until: number | null;
}

/**
 * Whether the owner of a running job (or of a slot) is gone. On this host (host name + pid namespace) by its
 * process: the pid is gone or has another start stamp; in this very process, the owner is no live worker. The
 * lease is not used there, so a runner blocking the event loop keeps its job. Elsewhere, by the lease.
 */
function isOwnerGone(r: OwnerRow, now: number): boolean {
  if (!r.owner) return true;
  if (r.owner_host === hostIdentity() && r.owner_pid !== null) {
    if (r.owner_pid === process.pid) return !liveOwnersInProcess.has(r.owner);
    return !isProcessAlive(r.owner_pid, r.owner_start);
  }
  return r.lease_until === null || r.lease_until < now;
}

/**
 * A persistent job queue on one SQLite file (WAL). Every state change is one short write transaction, so several
 * processes (submitters, workers, the HTTP server) can share the file, and a process killed at any point leaves
 * either the old or the new state. Claiming is one `UPDATE ... RETURNING` inside `BEGIN IMMEDIATE`.
 */
export class Queue {
  readonly path: string;
  readonly events = new EventEmitter<QueueEvents>();
  readonly defaultMaxAttempts: number;
  private db: DatabaseSync | null = null;
  private readonly st: Record<string, StatementSync>;

  static open(path: string, opts: QueueOptions = {}): Queue {
    return new Queue(path, opts);
  }

  constructor(path: string, opts: QueueOptions = {}) {
    this.path = path === ':memory:' ? path : resolve(path);
    this.defaultMaxAttempts = opts.defaultMaxAttempts ?? 3;
    if (!Number.isInteger(this.defaultMaxAttempts) || this.defaultMaxAttempts < 1) {
      throw new ValidationError('must be an integer >= 1', 'defaultMaxAttempts');
    }
    try {
      if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true });
      // Loaded on first use, so a CLI that merely mounts the queue commands does not print node:sqlite's
      // ExperimentalWarning for unrelated commands.
      const sqlite = process.getBuiltinModule('node:sqlite');
      this.db = new sqlite.DatabaseSync(this.path);
      // busy_timeout first: the WAL switch and the migration take the write lock.
      this.db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.round(opts.busyTimeoutMs ?? 15000))}`);
      const mode = this.db.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode: string };
      if (this.path !== ':memory:' && mode.journal_mode.toLowerCase() !== 'wal') {
        throw new Error(`could not switch to WAL journal mode (got ${mode.journal_mode})`);
      }
      this.db.exec(`PRAGMA synchronous = ${opts.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
      const { user_version } = this.db.prepare('PRAGMA user_version').get() as { user_version: number };
      if (user_version > SCHEMA_VERSION) {
        throw new Error(`database schema version ${user_version} is newer than this package supports (${SCHEMA_VERSION}); upgrade @framepack/queue`);
      }
      migrate(this.db);
    } catch (err) {
      this.db?.close();
      this.db = null;
      throw new QueueDatabaseError(`cannot open queue database: ${(err as Error).message}`, this.path, err);
    }
    const db = this.db;
    const p = (sql: string) => db.prepare(sql);
    this.st = {
      insert: p(`INSERT INTO jobs (name, status, params, priority, max_attempts, created_at, updated_at)
                 VALUES (?, 'queued', ?, ?, ?, ?, ?) RETURNING *`),
      get: p('SELECT * FROM jobs WHERE id = ?'),
      statusOf: p('SELECT status, owner FROM jobs WHERE id = ?'),
      claim: p(`UPDATE jobs SET status = 'running', owner = ?, owner_host = ?, owner_pid = ?, owner_start = ?, lease_until = ?,
                  heartbeat_at = ?, attempts = attempts + 1, started_at = ?, updated_at = ?, finished_at = NULL,
                  progress = '{"fraction":0}'
                WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY priority DESC, id LIMIT 1)
                RETURNING *`),
      heartbeat: p(`UPDATE jobs SET lease_until = ?, heartbeat_at = ? WHERE id = ? AND owner = ? AND status = 'running'`),
      progress: p(`UPDATE jobs SET progress = ?, updated_at = ?, lease_until = ?, heartbeat_at = ?
                   WHERE id = ? AND owner = ? AND status = 'running'`),
      output: p(`UPDATE jobs SET outputs = json_insert(outputs, '$[#]', json(?)), updated_at = ?
                 WHERE id = ? AND owner = ? AND status = 'running'`),
      running: p(`SELECT id, owner, owner_host, owner_pid, owner_start, lease_until, attempts, max_attempts FROM jobs WHERE status = 'running'`),
      counts: p('SELECT status, COUNT(*) AS n FROM jobs GROUP BY status'),
    };
  }

  /** A prepared statement; a closed queue fails with QueueDatabaseError rather than sqlite's own error. */
  private stmt(name: string): StatementSync {
    void this.conn;
    return this.st[name]!;
  }

  private get conn(): DatabaseSync {
    if (!this.db) throw new QueueDatabaseError('the queue was closed', this.path);
    return this.db;
  }

  /** Runs fn inside BEGIN IMMEDIATE (the write lock is taken up front, so no deadlock on upgrade). */
  private tx<T>(fn: () => T): T {
    const db = this.conn;
    db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      db.exec('COMMIT');
      return out;
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }

  // ---------------------------------------------------------------- submitting and inspecting

  /** Adds a job; params must be a JSON object (validate them with the generator's validator first). */
  add(params: JobParams, opts: AddJobOptions = {}): Job {
    if (typeof params !== 'object' || params === null || Array.isArray(params)) {
      throw new ValidationError('must be a JSON object', 'params');
    }
    const json = JSON.stringify(params);
    const name = opts.name ?? null;
    if (name !== null && (typeof name !== 'string' || name.length > MAX_NAME)) {
      throw new ValidationError(`must be a string of at most ${MAX_NAME} characters`, 'name');
    }
    const priority = opts.priority ?? 0;
    if (!Number.isSafeInteger(priority)) throw new ValidationError('must be an integer', 'priority');
    const maxAttempts = opts.maxAttempts ?? this.defaultMaxAttempts;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) {
      throw new ValidationError('must be an integer from 1 to 100', 'maxAttempts');
    }
    const now = Date.now();
    const row = this.stmt('insert').get(name, json, priority, maxAttempts, now, now) as Row;
    const job = toJob(row);
    this.events.emit('added', job.id);
    return job;
  }

  find(id: number): Job | undefined {
    const row = this.stmt('get').get(id) as Row | undefined;
    return row ? toJob(row) : undefined;
  }

  get(id: number): Job {
    const job = this.find(id);
    if (!job) throw new JobNotFoundError(id);
    return job;
  }

  /** Jobs in queue order (priority, then submission), or newest first. */
  list(opts: ListOptions = {}): Job[] {
    const statuses = opts.status === undefined ? [] : typeof opts.status === 'string' ? [opts.status] : [...opts.status];
    for (const s of statuses) {
      if (!JOB_STATUSES.includes(s)) throw new ValidationError(`unknown status "${s}" (one of ${JOB_STATUSES.join(', ')})`, 'status');
    }
    const limit = opts.limit ?? -1;
    const offset = opts.offset ?? 0;
    if (!Number.isInteger(limit) || !Number.isInteger(offset) || offset < 0) throw new ValidationError('limit/offset must be integers', 'limit');
    const where = statuses.length ? `WHERE status IN (${statuses.map(() => '?').join(',')})` : '';
    const order = opts.newestFirst ? 'id DESC' : 'priority DESC, id';
    const rows = this.conn
      .prepare(`SELECT * FROM jobs ${where} ORDER BY ${order} LIMIT ? OFFSET ?`)
      .all(...statuses, limit, offset) as Row[];
    return rows.map(toJob);
  }

  /** Jobs changed at or after `sinceMs` (updated_at; heartbeats do not count), oldest change first. */
  changedSince(sinceMs: number, limit = 1000): Job[] {
    return (this.conn.prepare('SELECT * FROM jobs WHERE updated_at >= ? ORDER BY updated_at, id LIMIT ?').all(sinceMs, limit) as Row[]).map(toJob);
  }

  counts(): Record<JobStatus, number> {
    const out = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    for (const r of this.stmt('counts').all() as { status: JobStatus; n: number }[]) out[r.status] = r.n;
    return out;
  }

  /** Current status and owner only: the cheap poll a worker uses to notice a cancel from another process. */
  statusOf(id: number): { status: JobStatus; owner: string | null } | undefined {
    return this.stmt('statusOf').get(id) as { status: JobStatus; owner: string | null } | undefined;
  }

  // ---------------------------------------------------------------- user actions

  /**
   * Cancels a queued or running job. A running job's worker sees the status change (in-process event or its poll)
   * and aborts the runner's signal; whatever the runner returns afterwards is discarded.
   */
  cancel(id: number, reason = 'cancelled by user'): Job {
    const job = this.tx(() => {
      const cur = this.get(id);
      if (cur.status !== 'queued' && cur.status !== 'running') {
        throw new JobStateError(id, cur.status, 'cancel', 'only queued or running jobs can be cancelled');
      }
      const now = Date.now();
      const row = this.conn
        .prepare(`UPDATE jobs SET status = 'cancelled', error = ?, finished_at = ?, updated_at = ?, lease_until = NULL
                  WHERE id = ? RETURNING *`)
        .get(reason, now, now, id) as Row;
      return toJob(row);
    });
    this.events.emit('cancelled', id);
    this.events.emit('changed', id);
    return job;
  }

  /** Puts a failed or cancelled job back in the queue with a fresh attempt budget. */
  retry(id: number): Job {
    const job = this.tx(() => {
      const cur = this.get(id);
      if (cur.status !== 'failed' && cur.status !== 'cancelled') {
        throw new JobStateError(id, cur.status, 'retry', 'only failed or cancelled jobs can be retried');
      }
      const row = this.conn
        .prepare(`UPDATE jobs SET status = 'queued', attempts = 0, error = NULL, owner = NULL, owner_host = NULL,
                    owner_pid = NULL, owner_start = NULL, lease_until = NULL, heartbeat_at = NULL, started_at = NULL, finished_at = NULL,
                    progress = '{"fraction":0}', updated_at = ?
                  WHERE id = ? RETURNING *`)
        .get(Date.now(), id) as Row;
      return toJob(row);
    });
    this.events.emit('added', id);
    this.events.emit('changed', id);
    return job;
  }

  /**
   * Edits a job that is still queued: its name, priority (to reorder), attempt budget or params (validate them
   * first). Running and finished jobs cannot be edited.
   */
  update(id: number, patch: JobPatch): Job {
    const sets: string[] = [];
    const args: (string | number | null)[] = [];
    if (patch.name !== undefined) {
      if (patch.name !== null && (typeof patch.name !== 'string' || patch.name.length > MAX_NAME)) {
        throw new ValidationError(`must be a string of at most ${MAX_NAME} characters`, 'name');
      }
      sets.push('name = ?');
      args.push(patch.name);
    }
    if (patch.priority !== undefined) {
      if (!Number.isSafeInteger(patch.priority)) throw new ValidationError('must be an integer', 'priority');
      sets.push('priority = ?');
      args.push(patch.priority);
    }
    if (patch.maxAttempts !== undefined) {
      if (!Number.isInteger(patch.maxAttempts) || patch.maxAttempts < 1 || patch.maxAttempts > 100) {
        throw new ValidationError('must be an integer from 1 to 100', 'maxAttempts');
      }
      sets.push('max_attempts = ?');
      args.push(patch.maxAttempts);
    }
    if (patch.params !== undefined) {
      if (typeof patch.params !== 'object' || patch.params === null || Array.isArray(patch.params)) {
        throw new ValidationError('must be a JSON object', 'params');
      }
      sets.push('params = ?');
      args.push(JSON.stringify(patch.params));
    }
    const job = this.tx(() => {
      const cur = this.get(id);
      if (cur.status !== 'queued') throw new JobStateError(id, cur.status, 'edit', 'only queued jobs can be edited');
      if (sets.length === 0) return cur;
      const row = this.conn
        .prepare(`UPDATE jobs SET ${sets.join(', ')}, updated_at = ? WHERE id = ? RETURNING *`)
        .get(...args, Date.now(), id) as Row;
      return toJob(row);
    });
    this.events.emit('changed', id);
    return job;
  }

  /** Deletes one job that is not running (cancel a running job first). Its output files stay on disk. */
  remove(id: number): Job {
    return this.tx(() => {
      const cur = this.get(id);
      if (cur.status === 'running') throw new JobStateError(id, cur.status, 'remove', 'cancel it first');
      this.conn.prepare('DELETE FROM jobs WHERE id = ?').run(id);
      return cur;
    });
  }

  /**
   * Deletes jobs in the given states (default: every finished job). Running jobs are never deleted: cancel them
   * first. Returns the number removed. Output files are left on disk.
   */
  clear(statuses: readonly JobStatus[] = FINISHED_STATUSES): number {
    for (const s of statuses) {
      if (!JOB_STATUSES.includes(s)) throw new ValidationError(`unknown status "${s}"`, 'status');
      if (s === 'running') throw new ValidationError('running jobs cannot be cleared; cancel them first', 'status');
    }
    if (statuses.length === 0) return 0;
    const res = this.conn
      .prepare(`DELETE FROM jobs WHERE status IN (${statuses.map(() => '?').join(',')})`)
      .run(...statuses);
    return Number(res.changes);
  }

  // ---------------------------------------------------------------- worker side (all guarded by the owner)

  /** Atomically takes the next queued job for `owner`, or returns undefined when none is queued. */
  claim(owner: JobOwner, leaseMs: number): Job | undefined {
    return this.tx(() => {
      const now = Date.now();
      const row = this.stmt('claim').get(owner.id, owner.host, owner.pid, owner.start ?? null, now + leaseMs, now, now, now) as Row | undefined;
      return row ? toJob(row) : undefined;
    });
  }

  /** Renews the lease; false when the job is no longer this owner's running job (cancelled, recovered, cleared). */
  heartbeat(id: number, owner: string, leaseMs: number): boolean {
    const now = Date.now();
    return Number(this.stmt('heartbeat').run(now + leaseMs, now, id, owner).changes) === 1;
  }

  /** Stores the latest progress (and renews the lease); false when the job is no longer ours. */
  setProgress(id: number, owner: string, progress: JobProgress, leaseMs: number): boolean {
    const now = Date.now();
    const res = this.stmt('progress').run(JSON.stringify(progress), now, now + leaseMs, now, id, owner);
    if (Number(res.changes) === 1) this.events.emit('changed', id);
    return Number(res.changes) === 1;
  }

  /** Appends an output (partial until the job completes with it among its final outputs). */
  addOutput(id: number, owner: string, output: JobOutput): boolean {
    const res = this.stmt('output').run(JSON.stringify(output), Date.now(), id, owner);
    if (Number(res.changes) === 1) this.events.emit('changed', id);
    return Number(res.changes) === 1;
  }

  /**
   * Marks the job completed. Outputs listed here become final (non-partial); reported outputs not listed stay
   * partial (intermediates). False, and nothing written, when the job is no longer ours (e.g. cancelled meanwhile).
   */
  complete(id: number, owner: string, finalOutputs: readonly string[]): boolean {
    const done = this.tx(() => {
      const cur = this.find(id);
      if (!cur || cur.status !== 'running' || cur.owner !== owner) return false;
      const outputs = cur.outputs.map((o) => (o.attempt === cur.attempts && finalOutputs.includes(o.path) ? { ...o, partial: false } : o));
      for (const path of finalOutputs) {
        if (!outputs.some((o) => o.path === path && o.attempt === cur.attempts)) {
          outputs.push({ path, kind: 'output', partial: false, attempt: cur.attempts });
        }
      }
      const now = Date.now();
      this.conn
        .prepare(`UPDATE jobs SET status = 'completed', outputs = ?, progress = ?, error = NULL, finished_at = ?,
                    updated_at = ?, lease_until = NULL WHERE id = ?`)
        .run(JSON.stringify(outputs), JSON.stringify({ ...cur.progress, fraction: 1 }), now, now, id);
      return true;
    });
    if (done) this.events.emit('changed', id);
    return done;
  }

  /**
   * Records a failed attempt. With `retry` and attempts left the job goes back to the queue; otherwise it is
   * failed. Returns what happened, or 'lost' when the job is no longer ours.
   */
  fail(id: number, owner: string, error: string, retry: boolean): 'failed' | 'queued' | 'lost' {
    const out = this.tx(() => {
      const cur = this.find(id);
      if (!cur || cur.status !== 'running' || cur.owner !== owner) return 'lost' as const;
      const requeue = retry && cur.attempts < cur.maxAttempts;
      const now = Date.now();
      const msg = requeue ? `attempt ${cur.attempts}/${cur.maxAttempts} failed, re-queued: ${error}` : error;
      this.conn
        .prepare(`UPDATE jobs SET status = ?, error = ?, owner = CASE WHEN ? THEN NULL ELSE owner END,
                    lease_until = NULL, finished_at = ?, updated_at = ? WHERE id = ?`)
        .run(requeue ? 'queued' : 'failed', msg, requeue ? 1 : 0, requeue ? null : now, now, id);
      return requeue ? ('queued' as const) : ('failed' as const);
    });
    if (out !== 'lost') this.events.emit('changed', id);
    if (out === 'queued') this.events.emit('added', id);
    return out;
  }

  /**
   * Gives a running job back to the queue without counting the attempt (worker shutdown, not the job's fault).
   * False when the job is no longer ours.
   */
  release(id: number, owner: string, note = 'worker stopped; re-queued'): boolean {
    const res = this.conn
      .prepare(`UPDATE jobs SET status = 'queued', attempts = MAX(attempts - 1, 0), owner = NULL, lease_until = NULL,
                  error = ?, updated_at = ? WHERE id = ? AND owner = ? AND status = 'running'`)
      .run(note, Date.now(), id, owner);
    const ok = Number(res.changes) === 1;
    if (ok) {
      this.events.emit('changed', id);
      this.events.emit('added', id);
    }
    return ok;
  }

  /**
   * Re-queues running jobs whose worker is gone: on this host, when the owner's process no longer exists (its pid
   * is gone or now belongs to a process with another start stamp; for this very process, when the owner is no
   * live worker); on another host, when its lease expired. A job that has used
   * all its attempts is failed instead. Safe to call from several workers at once (each update re-checks the owner).
   */
  recover(now = Date.now()): RecoveredJob[] {
    const dead = this.abandonedRows(now);
    const out: RecoveredJob[] = [];
    for (const r of dead) {
      const requeue = r.attempts < r.max_attempts;
      const t = Date.now();
      const msg = requeue
        ? `worker ${r.owner ?? '?'} died during attempt ${r.attempts}/${r.max_attempts}; re-queued`
        : `worker ${r.owner ?? '?'} died during attempt ${r.attempts}/${r.max_attempts}; no attempts left`;
      const res = this.conn
        .prepare(`UPDATE jobs SET status = ?, error = ?, owner = NULL, lease_until = NULL, updated_at = ?,
                    finished_at = ? WHERE id = ? AND status = 'running' AND owner IS ?`)
        .run(requeue ? 'queued' : 'failed', msg, t, requeue ? null : t, r.id, r.owner);
      if (Number(res.changes) === 1) {
        out.push({ id: r.id, owner: r.owner ?? '?', action: requeue ? 'requeued' : 'failed', attempts: r.attempts });
        this.events.emit('changed', r.id);
        if (requeue) this.events.emit('added', r.id);
      }
    }
    return out;
  }

  /** Ids of running jobs whose worker is gone (what the next recover() would take back). Read-only. */
  abandoned(now = Date.now()): number[] {
    return this.abandonedRows(now).map((r) => r.id);
  }

  private abandonedRows(now: number) {
    const candidates = this.stmt('running').all() as unknown as (OwnerRow & { id: number; attempts: number; max_attempts: number })[];
    return candidates.filter((r) => isOwnerGone(r, now));
  }

  // ---------------------------------------------------------------- worker slots

  /**
   * Takes the named slot (e.g. "cuda:0") for `owner` unless a live worker holds it (judged like job owners: pid
   * and start stamp on this host, lease elsewhere). Returns the holder's owner id when the slot is taken.
   */
  acquireSlot(slot: string, owner: JobOwner, leaseMs: number): { ok: true } | { ok: false; holder: string; pid: number | null } {
    if (typeof slot !== 'string' || slot === '' || slot.length > 200) throw new ValidationError('must be a non-empty string of at most 200 characters', 'slot');
    return this.tx(() => {
      const now = Date.now();
      const cur = this.conn.prepare('SELECT * FROM worker_slots WHERE slot = ?').get(slot) as (OwnerRow & { owner: string }) | undefined;
      if (cur && cur.owner !== owner.id && !isOwnerGone(cur, now)) return { ok: false as const, holder: cur.owner, pid: cur.owner_pid };
      this.conn
        .prepare(`INSERT INTO worker_slots (slot, owner, owner_host, owner_pid, owner_start, lease_until, acquired_at)
                  VALUES (?, ?, ?, ?, ?, ?, ?)
                  ON CONFLICT (slot) DO UPDATE SET owner = excluded.owner, owner_host = excluded.owner_host,
                    owner_pid = excluded.owner_pid, owner_start = excluded.owner_start, lease_until = excluded.lease_until,
                    acquired_at = excluded.acquired_at`)
        .run(slot, owner.id, owner.host, owner.pid, owner.start ?? null, now + leaseMs, now);
      return { ok: true as const };
    });
  }

  /** Renews the slot's lease; false when the slot is no longer ours. */
  renewSlot(slot: string, owner: string, leaseMs: number): boolean {
    const res = this.conn.prepare('UPDATE worker_slots SET lease_until = ? WHERE slot = ? AND owner = ?').run(Date.now() + leaseMs, slot, owner);
    return Number(res.changes) === 1;
  }

  releaseSlot(slot: string, owner: string): void {
    this.conn.prepare('DELETE FROM worker_slots WHERE slot = ? AND owner = ?').run(slot, owner);
  }

  close(): void {
    if (!this.db) return;
    this.db.close();
    this.db = null;
  }

  get closed(): boolean {
    return this.db === null;
  }
}

function parseJson<T>(text: unknown, fallback: T): T {
  if (typeof text !== 'string') return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

function num(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

function toJob(r: Row): Job {
  return {
    id: Number(r.id),
    name: (r.name as string | null) ?? null,
    status: r.status as JobStatus,
    params: parseJson<JobParams>(r.params, {}),
    priority: Number(r.priority),
    attempts: Number(r.attempts),
    maxAttempts: Number(r.max_attempts),
    progress: parseJson<JobProgress>(r.progress, { fraction: 0 }),
    outputs: parseJson<JobOutput[]>(r.outputs, []),
    error: (r.error as string | null) ?? null,
    owner: (r.owner as string | null) ?? null,
    ownerPid: num(r.owner_pid),
    leaseUntil: num(r.lease_until),
    heartbeatAt: num(r.heartbeat_at),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    startedAt: num(r.started_at),
    finishedAt: num(r.finished_at),
  };
}
