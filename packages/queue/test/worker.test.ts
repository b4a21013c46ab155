import { spawnSync } from 'node:child_process';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobAbortedError, Queue, SlotTakenError, hostIdentity, RetryableJobError, ValidationError, Worker, jsonParams, type JobRunner } from '@framepack/queue';
import { sleep, tempDir, waitFor } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let q: Queue;
beforeEach(() => {
  t = tempDir();
  q = Queue.open(t.db);
});
afterEach(() => {
  q.close();
  t.cleanup();
});

describe('Worker', () => {
  it('runs a job, stores progress and marks final vs intermediate outputs', async () => {
    const seen: unknown[] = [];
    const runner: JobRunner = async (params, ctx) => {
      seen.push(params);
      ctx.progress({ fraction: 0.5, message: 'half', section: 1, step: 3 });
      ctx.output('/out/s1.mp4', 'section');
      ctx.output('/out/final.mp4', 'video');
      return { outputs: ['/out/final.mp4'] };
    };
    const job = q.add({ prompt: 'x' });
    const w = new Worker({ queue: q, runner, validateParams: jsonParams });
    const outcome = await w.runOnce();
    expect(outcome?.kind).toBe('completed');
    expect(seen).toEqual([{ prompt: 'x' }]);
    const done = q.get(job.id);
    expect(done).toMatchObject({ status: 'completed', attempts: 1, error: null });
    expect(done.progress).toEqual({ fraction: 1, message: 'half', section: 1, step: 3 });
    expect(done.outputs.map((o) => [o.path, o.partial])).toEqual([['/out/s1.mp4', true], ['/out/final.mp4', false]]);
    expect(await w.runOnce()).toBeUndefined();
  });

  it('a runner error fails the job at once; a RetryableJobError retries up to maxAttempts', async () => {
    const a = q.add({ kind: 'bad' });
    const b = q.add({ kind: 'flaky' }, { maxAttempts: 3 });
    let calls = 0;
    const runner: JobRunner = async (p) => {
      calls++;
      if (p.kind === 'bad') throw new Error('weights missing: put them in X');
      throw new RetryableJobError('out of memory');
    };
    const w = new Worker({ queue: q, runner, exitWhenIdle: true });
    await w.run();
    expect(q.get(a.id)).toMatchObject({ status: 'failed', attempts: 1, error: 'weights missing: put them in X' });
    expect(q.get(b.id)).toMatchObject({ status: 'failed', attempts: 3, error: 'RetryableJobError: out of memory' });
    expect(calls).toBe(4);
  });

  it('params that no longer validate fail the job without running it', async () => {
    const a = q.add({ image: '/missing.png' });
    let ran = false;
    const w = new Worker({
      queue: q,
      runner: async () => ((ran = true), { outputs: [] }),
      validateParams: () => {
        throw new ValidationError('file not found', 'image');
      },
    });
    expect((await w.runOnce())?.kind).toBe('failed');
    expect(ran).toBe(false);
    expect(q.get(a.id).error).toBe('invalid parameters: ValidationError: image: file not found');
  });

  it('a runner without { outputs } fails the job', async () => {
    const a = q.add({});
    const w = new Worker({ queue: q, runner: (async () => ({})) as unknown as JobRunner });
    await w.runOnce();
    expect(q.get(a.id)).toMatchObject({ status: 'failed', error: 'job runner returned no { outputs: string[] }' });
  });

  it('an in-process cancel aborts the signal and the late result is discarded', async () => {
    const a = q.add({});
    let reason: unknown;
    const runner: JobRunner = async (_p, ctx) => {
      await waitFor(() => ctx.signal.aborted, 5000, 'abort');
      reason = ctx.signal.reason;
      ctx.output('/out/late.mp4', 'video'); // refused: the job is no longer ours
      return { outputs: ['/out/late.mp4'] };
    };
    const w = new Worker({ queue: q, runner });
    const run = w.runOnce();
    await waitFor(() => q.get(a.id).status === 'running');
    q.cancel(a.id);
    expect((await run)?.kind).toBe('cancelled');
    expect(reason).toBeInstanceOf(JobAbortedError);
    expect((reason as JobAbortedError).kind).toBe('cancelled');
    expect(q.get(a.id)).toMatchObject({ status: 'cancelled', outputs: [] });
  });

  it('a cancel from another connection is seen by polling, even when the runner blocks the event loop', async () => {
    const a = q.add({});
    const other = Queue.open(t.db);
    let stepsAfterCancel = -1;
    const runner: JobRunner = async (_p, ctx) => {
      // Synchronous "denoising" steps: no timer can fire, only progress() can notice the cancel.
      for (let step = 0; step < 400; step++) {
        const until = Date.now() + 5;
        while (Date.now() < until) { /* busy */ }
        if (step === 20) other.cancel(a.id); // a different connection: no in-process event reaches this queue
        ctx.progress({ fraction: step / 400, step });
        if (ctx.signal.aborted) {
          stepsAfterCancel = step - 20;
          throw ctx.signal.reason;
        }
      }
      return { outputs: [] };
    };
    const w = new Worker({ queue: q, runner, cancelPollMs: 50 });
    expect((await w.runOnce())?.kind).toBe('cancelled');
    other.close();
    expect(stepsAfterCancel).toBeGreaterThanOrEqual(0);
    expect(stepsAfterCancel).toBeLessThanOrEqual(15); // 50 ms poll / 5 ms steps, with slack
    expect(q.get(a.id).status).toBe('cancelled');
  });

  it('throttles progress writes and keeps the latest report', async () => {
    const a = q.add({});
    let writes = 0;
    q.events.on('changed', (id) => id === a.id && writes++);
    const runner: JobRunner = async (_p, ctx) => {
      for (let i = 1; i <= 300; i++) {
        ctx.progress({ fraction: i / 1000, step: i });
        await sleep(1);
      }
      return { outputs: [] };
    };
    const w = new Worker({ queue: q, runner, progressIntervalMs: 100 });
    const started = Date.now();
    const run = w.runOnce();
    await waitFor(() => q.get(a.id).progress.step === 300, 10000, 'last progress written');
    const elapsed = Date.now() - started;
    await run;
    // one write per 100 ms window (+ the first and the completion), far fewer than 300 reports
    expect(writes).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 3);
    expect(writes).toBeGreaterThanOrEqual(2);
  });

  it('stop("requeue") aborts the running job and gives it back without counting the attempt', async () => {
    const a = q.add({});
    const runner: JobRunner = async (_p, ctx) => {
      await waitFor(() => ctx.signal.aborted, 5000, 'abort');
      throw ctx.signal.reason;
    };
    const w = new Worker({ queue: q, runner, pollMs: 20 });
    const ends: string[] = [];
    w.on('end', (o) => ends.push(o.kind));
    const loop = w.run();
    await waitFor(() => q.get(a.id).status === 'running');
    await w.stop('requeue');
    await loop;
    expect(ends).toEqual(['released']);
    expect(q.get(a.id)).toMatchObject({ status: 'queued', attempts: 0 });
  });

  it('stop("drain") lets the running job finish', async () => {
    const a = q.add({});
    const b = q.add({});
    const runner: JobRunner = async () => (await sleep(100), { outputs: [] });
    const w = new Worker({ queue: q, runner, pollMs: 20 });
    const loop = w.run();
    await waitFor(() => q.get(a.id).status === 'running');
    await w.stop('drain');
    await loop;
    expect(q.get(a.id).status).toBe('completed');
    expect(q.get(b.id).status).toBe('queued');
  });

  it('an idle worker wakes on an in-process add and recovers dead jobs on start', async () => {
    // a job left running by a previous (gone) worker of this same process
    const stale = q.add({ n: 0 });
    q.claim({ id: 'gone-worker', host: hostIdentity(), pid: process.pid }, 30000);
    const ran: number[] = [];
    const w = new Worker({ queue: q, runner: async (p) => (ran.push(p.n as number), { outputs: [] }), pollMs: 60000 });
    const recovered: number[][] = [];
    w.on('recovered', (ids) => recovered.push(ids));
    const loop = w.run();
    await waitFor(() => ran.length === 1, 5000, 'the recovered job');
    expect(recovered).toEqual([[stale.id]]);
    const t0 = Date.now();
    q.add({ n: 1 });
    await waitFor(() => ran.length === 2, 5000, 'the new job');
    expect(Date.now() - t0).toBeLessThan(2000); // not the 60 s poll
    await w.stop();
    await loop;
    expect(q.get(stale.id)).toMatchObject({ status: 'completed', attempts: 2 });
  });

  it('a database error while finishing a job does not leave it stuck: the job is recovered and re-run', async () => {
    q.close();
    q = Queue.open(t.db, { busyTimeoutMs: 50 });
    const a = q.add({});
    const logs: string[] = [];
    const runner: JobRunner = async (_p, ctx) => {
      if (ctx.job.attempts === 1) {
        // Another process holds the write lock past our busy timeout when we try to complete.
        const locker = new DatabaseSync(t.db);
        locker.exec('BEGIN IMMEDIATE');
        setTimeout(() => {
          locker.exec('COMMIT');
          locker.close();
        }, 300);
      }
      return { outputs: [] };
    };
    const w = new Worker({ queue: q, runner, pollMs: 100, log: (l) => logs.push(l) });
    const loop = w.run();
    await waitFor(() => q.get(a.id).status === 'completed', 10000, 'completion');
    await w.stop();
    await loop;
    expect(q.get(a.id).attempts).toBe(2);
    expect(logs.some((l) => /queue database error \(1\/10\), retrying: .*locked/.test(l))).toBe(true);
    expect(logs.some((l) => new RegExp(`recovered job ${a.id} from dead worker .*: requeued`).test(l))).toBe(true);
  });

  it('a worker slot admits one live worker; it is freed on stop and taken over from a dead holder', async () => {
    const runner: JobRunner = async () => ({ outputs: [] });
    const a = new Worker({ queue: q, runner, slot: 'cuda:0', pollMs: 20 });
    const loopA = a.run(); // takes the slot synchronously, before its first await
    const b = new Worker({ queue: q, runner, slot: 'cuda:0', pollMs: 20 });
    await expect(b.run()).rejects.toThrow(SlotTakenError);
    await expect(b.run()).rejects.toThrow(/worker slot "cuda:0" is held by .* \(pid \d+\): stop that worker/);
    const other = new Worker({ queue: q, runner, slot: 'cuda:1', pollMs: 20, exitWhenIdle: true });
    await other.run(); // another slot is fine
    await a.stop();
    await loopA;
    const c = new Worker({ queue: q, runner, slot: 'cuda:0', exitWhenIdle: true });
    await c.run(); // freed by a's stop
    // a holder that died without releasing (a process that no longer exists) does not block the slot
    const dead = { id: 'dead-holder', host: hostIdentity(), pid: deadPidForSlot(), start: null };
    expect(q.acquireSlot('cuda:0', dead, 60000)).toEqual({ ok: true });
    await new Worker({ queue: q, runner, slot: 'cuda:0', exitWhenIdle: true }).run();
  });
});

function deadPidForSlot(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}
