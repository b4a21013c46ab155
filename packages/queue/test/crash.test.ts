import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Queue, isPidAlive } from '@framepack/queue';
import { sleep, tempDir, waitFor } from './helpers.js';
import { spawnFixture } from './proc.js';

let t: ReturnType<typeof tempDir>;
let q: Queue;
let log: string;
beforeEach(() => {
  t = tempDir();
  q = Queue.open(t.db);
  log = join(t.dir, 'runs.log');
});
afterEach(() => {
  q.close();
  t.cleanup();
});

/** Lines of the runners' log as [event, jobId, pid]. */
function runs(): [string, number, number][] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
    const [ev, id, pid] = l.split(' ');
    return [ev!, Number(id), Number(pid)];
  });
}
const count = (ev: string, id: number) => runs().filter(([e, j]) => e === ev && j === id).length;

function integrityOk(db: string): boolean {
  const d = new DatabaseSync(db, { readOnly: true });
  const r = d.prepare('PRAGMA integrity_check').get() as { integrity_check: string };
  d.close();
  return r.integrity_check === 'ok';
}

describe('crash recovery with real worker processes', () => {
  it('a worker killed with SIGKILL mid-job: the job is recovered, re-run and completed once', async () => {
    const slow = q.add({ steps: 100, stepMs: 20 });
    const quick = q.add({ steps: 1 });
    const w1 = spawnFixture('worker-proc.ts', [t.db, log, t.dir]);
    const mid = await waitFor(() => {
      const j = q.get(slow.id);
      return j.status === 'running' && (j.progress.step ?? 0) >= 60 ? j : undefined;
    }, 30000, 'the slow job past step 60');
    expect(mid.ownerPid).toBe(w1.pid);
    w1.kill('SIGKILL');
    expect((await w1.exited).signal).toBe('SIGKILL');
    expect(isPidAlive(w1.pid!)).toBe(false);

    // What the dead worker left: the job still "running" under a dead owner, with its progress and partial file.
    const left = q.get(slow.id);
    expect(left).toMatchObject({ status: 'running', attempts: 1, ownerPid: w1.pid });
    expect(left.progress.step).toBeGreaterThanOrEqual(60);
    expect(left.outputs).toEqual([{ path: join(t.dir, `job-${slow.id}-a1-half.txt`), kind: 'section', partial: true, attempt: 1 }]);
    expect(q.get(quick.id).status).toBe('queued');
    expect(integrityOk(t.db)).toBe(true);

    // A new worker recovers it on start and finishes everything.
    const w2 = spawnFixture('worker-proc.ts', [t.db, log, t.dir], { EXIT_WHEN_IDLE: '1' });
    expect(await w2.exited).toEqual({ code: 0, signal: null });
    const done = q.get(slow.id);
    expect(done).toMatchObject({ status: 'completed', attempts: 2, error: null });
    expect(done.outputs.map((o) => [o.kind, o.attempt, o.partial])).toEqual([
      ['section', 1, true],
      ['section', 2, true],
      ['output', 2, false],
    ]);
    expect(count('start', slow.id)).toBe(2);
    expect(count('done', slow.id)).toBe(1);
    expect(q.get(quick.id).status).toBe('completed');
    expect(count('done', quick.id)).toBe(1);
  });

  it('a cancel from another process stops the running job within a poll interval; the worker moves on', async () => {
    const slow = q.add({ steps: 500, stepMs: 10 });
    const next = q.add({ steps: 1 });
    const w = spawnFixture('worker-proc.ts', [t.db, log, t.dir], { EXIT_WHEN_IDLE: '1' });
    await waitFor(() => (q.get(slow.id).progress.step ?? 0) >= 10, 30000, 'the slow job running');
    const cancelledAt = Date.now();
    q.cancel(slow.id);
    await waitFor(() => q.get(next.id).status === 'completed', 30000, 'the next job');
    expect(Date.now() - cancelledAt).toBeLessThan(5000); // not the 5 s the slow job had left
    expect(await w.exited).toEqual({ code: 0, signal: null });
    const c = q.get(slow.id);
    expect(c.status).toBe('cancelled');
    expect(c.progress.step).toBeLessThan(100);
    expect(count('done', slow.id)).toBe(0);
  });

  it('a job that keeps killing its worker is failed after maxAttempts and the others still run', async () => {
    const poison = q.add({ poison: true }, { maxAttempts: 2 });
    const ok = [q.add({ steps: 1 }), q.add({ steps: 1 }), q.add({ steps: 1 })];
    const exits: (string | number | null)[] = [];
    for (let i = 0; i < 5; i++) {
      const w = spawnFixture('worker-proc.ts', [t.db, log, t.dir], { EXIT_WHEN_IDLE: '1' });
      const e = await w.exited;
      exits.push(e.signal ?? e.code);
      if (e.code === 0) break;
    }
    expect(exits).toEqual(['SIGKILL', 'SIGKILL', 0]);
    const p = q.get(poison.id);
    expect(p.status).toBe('failed');
    expect(p.attempts).toBe(2);
    expect(p.error).toMatch(/died during attempt 2\/2; no attempts left/);
    expect(count('start', poison.id)).toBe(2);
    for (const j of ok) {
      expect(q.get(j.id).status).toBe('completed');
      expect(count('done', j.id)).toBe(1);
    }
  });

  it('killing workers and a submitter at random points loses nothing', async () => {
    // Submitter killed mid-stream: every id it reported is stored, and nothing half-written remains.
    const idsFile = join(t.dir, 'ids.txt');
    const reportedIds = () => (existsSync(idsFile) ? readFileSync(idsFile, 'utf8').split('\n').filter((l) => /^\d+$/.test(l)).map(Number) : []);
    const sub = spawnFixture('submit-proc.ts', [t.db, '100000', 'sub', idsFile]);
    await waitFor(() => reportedIds().length > 200, 30000, 'submissions');
    sub.kill('SIGKILL');
    expect((await sub.exited).signal).toBe('SIGKILL');
    const reported = reportedIds();
    const stored = q.list().map((j) => j.id);
    expect(stored.length).toBeGreaterThanOrEqual(reported.length);
    expect(stored.length - reported.length).toBeLessThanOrEqual(1); // at most one stored but not yet printed
    expect(new Set(stored).size).toBe(stored.length);
    for (const id of reported) expect(q.find(id)?.status).toBe('queued');
    expect(integrityOk(t.db)).toBe(true);
    // Keep the worker part short: work on 40 of them, with attempts to spare for the random kills.
    q.clear(['queued']);
    const jobs = Array.from({ length: 40 }, (_, i) => q.add({ steps: 2, stepMs: 5, i }, { maxAttempts: 100 }));

    let kills = 0;
    for (let round = 0; round < 8; round++) {
      const w = spawnFixture('worker-proc.ts', [t.db, log, t.dir]);
      await sleep(300 + Math.floor(Math.random() * 700)); // sometimes still starting, usually mid-job
      w.kill('SIGKILL');
      await w.exited;
      kills++;
      expect(integrityOk(t.db)).toBe(true);
    }
    const last = spawnFixture('worker-proc.ts', [t.db, log, t.dir], { EXIT_WHEN_IDLE: '1' });
    expect(await last.exited).toEqual({ code: 0, signal: null });
    expect(kills).toBe(8);
    for (const j of jobs) {
      const done = q.get(j.id);
      expect(done.status).toBe('completed');
      expect(existsSync(join(t.dir, `job-${j.id}.txt`))).toBe(true);
      // At-least-once: a job runs again only if a worker died holding it. (A kill between the claim and the
      // runner's first line uses an attempt without a "start" line.)
      const starts = count('start', j.id);
      expect(starts).toBeGreaterThanOrEqual(1);
      expect(starts).toBeLessThanOrEqual(done.attempts);
      expect(count('done', j.id)).toBeGreaterThanOrEqual(1);
      expect(count('done', j.id)).toBeLessThanOrEqual(starts);
    }
    expect(q.counts()).toMatchObject({ queued: 0, running: 0, completed: 40, failed: 0 });
  });
});
