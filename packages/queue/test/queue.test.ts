import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobNotFoundError, JobStateError, Queue, QueueDatabaseError, ValidationError, isPidAlive, isProcessAlive, processStartId, hostIdentity } from '@framepack/queue';
import { tempDir } from './helpers.js';

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

const owner = (id: string, pid = process.pid, host = hostIdentity()) => ({ id, pid, host });

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  const pid = Number(r.stdout.toString());
  expect(isPidAlive(pid)).toBe(false);
  return pid;
}

describe('Queue basics', () => {
  it('stores jobs with their params and reads them back from another connection', () => {
    const a = q.add({ prompt: 'a cat', seed: 31337, nested: { x: [1, 2] } }, { name: 'cat' });
    expect(a).toMatchObject({ id: 1, status: 'queued', attempts: 0, maxAttempts: 3, name: 'cat', outputs: [], error: null });
    const q2 = Queue.open(t.db);
    expect(q2.get(a.id).params).toEqual({ prompt: 'a cat', seed: 31337, nested: { x: [1, 2] } });
    q2.close();
    expect(() => q.get(99)).toThrow(JobNotFoundError);
    expect(q.find(99)).toBeUndefined();
  });

  it('uses WAL and rejects bad options', () => {
    const raw = new DatabaseSync(t.db, { readOnly: true });
    expect(raw.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    expect(raw.prepare('PRAGMA user_version').get()).toEqual({ user_version: 2 });
    raw.close();
    expect(() => q.add([] as never)).toThrow(ValidationError);
    expect(() => q.add({}, { maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => q.add({}, { priority: 1.5 })).toThrow(/priority/);
    expect(() => q.list({ status: 'done' as never })).toThrow(/unknown status "done"/);
  });

  it('migrates an older database in place and refuses a newer one', () => {
    const old = join(t.dir, 'v1.sqlite');
    const raw = new DatabaseSync(old);
    raw.exec(`CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, status TEXT NOT NULL, params TEXT NOT NULL,
      priority INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL DEFAULT 3,
      progress TEXT NOT NULL DEFAULT '{"fraction":0}', outputs TEXT NOT NULL DEFAULT '[]', error TEXT, owner TEXT,
      owner_host TEXT, owner_pid INTEGER, owner_start TEXT, lease_until INTEGER, heartbeat_at INTEGER,
      created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER);
      INSERT INTO jobs (status, params, created_at, updated_at) VALUES ('queued', '{"kept":true}', 1, 1);
      PRAGMA user_version = 1;`);
    raw.close();
    const q1 = Queue.open(old);
    expect(q1.get(1).params).toEqual({ kept: true });
    expect(q1.acquireSlot('s', owner('w'), 1000)).toEqual({ ok: true }); // the v2 table exists
    q1.close();
    const newer = new DatabaseSync(old);
    newer.exec('PRAGMA user_version = 99');
    newer.close();
    expect(() => Queue.open(old)).toThrow(/schema version 99 is newer than this package supports \(2\)/);
  });

  it('a closed queue says so', () => {
    const q2 = Queue.open(t.db);
    q2.close();
    expect(q2.closed).toBe(true);
    expect(() => q2.add({})).toThrow(/the queue was closed/);
    expect(() => q2.get(1)).toThrow(QueueDatabaseError);
    q2.close(); // idempotent
  });

  it('gives a clear error for a path it cannot open', () => {
    writeFileSync(join(t.dir, 'a-file'), '');
    expect(() => Queue.open(join(t.dir, 'a-file', 'q.sqlite'))).toThrow(QueueDatabaseError);
    expect(() => Queue.open(join(t.dir, 'a-file', 'q.sqlite'))).toThrow(/cannot open queue database/);
  });

  it('claims in priority then FIFO order, each job once', () => {
    const ids = [q.add({ n: 0 }).id, q.add({ n: 1 }).id, q.add({ n: 2 }, { priority: 5 }).id];
    const o = owner('w1');
    const got = [q.claim(o, 30000)!, q.claim(o, 30000)!, q.claim(o, 30000)!];
    expect(got.map((j) => j.id)).toEqual([ids[2], ids[0], ids[1]]);
    expect(got.every((j) => j.status === 'running' && j.attempts === 1 && j.owner === 'w1')).toBe(true);
    expect(q.claim(o, 30000)).toBeUndefined();
    expect(q.counts()).toMatchObject({ queued: 0, running: 3 });
  });

  it('two connections never claim the same job', () => {
    for (let i = 0; i < 50; i++) q.add({ i });
    const q2 = Queue.open(t.db);
    const seen: number[] = [];
    for (;;) {
      const a = q.claim(owner('a'), 30000);
      const b = q2.claim(owner('b'), 30000);
      if (a) seen.push(a.id);
      if (b) seen.push(b.id);
      if (!a && !b) break;
    }
    q2.close();
    expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('cancels queued and running jobs, not finished ones', () => {
    const a = q.add({});
    const b = q.add({});
    expect(q.cancel(a.id).status).toBe('cancelled');
    q.claim(owner('w'), 30000);
    const cancelled = q.cancel(b.id);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.finishedAt).not.toBeNull();
    // the worker's late completion is refused
    expect(q.complete(b.id, 'w', ['/x.mp4'])).toBe(false);
    expect(q.get(b.id).status).toBe('cancelled');
    expect(() => q.cancel(b.id)).toThrow(JobStateError);
  });

  it('retry resets a failed job; clear removes finished jobs only', () => {
    const a = q.add({}, { maxAttempts: 1 });
    const b = q.add({});
    q.claim(owner('w'), 30000);
    expect(q.fail(a.id, 'w', 'boom', true)).toBe('failed'); // no attempts left
    expect(q.get(a.id)).toMatchObject({ status: 'failed', error: 'boom', attempts: 1 });
    expect(() => q.retry(b.id)).toThrow(/only failed or cancelled/);
    expect(q.retry(a.id)).toMatchObject({ status: 'queued', attempts: 0, error: null });
    q.cancel(b.id);
    expect(() => q.clear(['running'])).toThrow(ValidationError);
    expect(q.clear()).toBe(1);
    expect(q.list().map((j) => j.id)).toEqual([a.id]);
    expect(q.clear(['queued'])).toBe(1);
    expect(q.list()).toEqual([]);
  });

  it('outputs stay partial unless listed at completion', () => {
    const a = q.add({});
    const j = q.claim(owner('w'), 30000)!;
    q.addOutput(a.id, 'w', { path: '/o/section1.mp4', kind: 'section', partial: true, attempt: j.attempts });
    q.addOutput(a.id, 'w', { path: '/o/final.mp4', kind: 'video', partial: true, attempt: j.attempts });
    expect(q.addOutput(a.id, 'someone-else', { path: '/x', kind: 'x', partial: true, attempt: 1 })).toBe(false);
    expect(q.complete(a.id, 'w', ['/o/final.mp4', '/o/meta.json'])).toBe(true);
    expect(q.get(a.id).outputs).toEqual([
      { path: '/o/section1.mp4', kind: 'section', partial: true, attempt: 1 },
      { path: '/o/final.mp4', kind: 'video', partial: false, attempt: 1 },
      { path: '/o/meta.json', kind: 'output', partial: false, attempt: 1 },
    ]);
    expect(q.get(a.id).progress.fraction).toBe(1);
  });

  it('fail with retry re-queues while attempts remain', () => {
    const a = q.add({}, { maxAttempts: 2 });
    q.claim(owner('w'), 30000);
    expect(q.fail(a.id, 'w', 'oom', true)).toBe('queued');
    expect(q.get(a.id)).toMatchObject({ status: 'queued', attempts: 1, owner: null });
    expect(q.get(a.id).error).toMatch(/attempt 1\/2 failed, re-queued: oom/);
    q.claim(owner('w'), 30000);
    expect(q.fail(a.id, 'w', 'oom', true)).toBe('failed');
    expect(q.fail(a.id, 'w', 'oom', true)).toBe('lost');
  });

  it('release gives the job back without counting the attempt', () => {
    const a = q.add({});
    q.claim(owner('w'), 30000);
    expect(q.release(a.id, 'w')).toBe(true);
    expect(q.get(a.id)).toMatchObject({ status: 'queued', attempts: 0 });
  });
});

describe('editing and removing', () => {
  it('reorders and edits queued jobs only; removes anything not running', () => {
    const a = q.add({ prompt: 'a' });
    const b = q.add({ prompt: 'b' });
    expect(q.update(b.id, { priority: 10, name: 'urgent', params: { prompt: 'b2' }, maxAttempts: 5 })).toMatchObject({
      priority: 10, name: 'urgent', params: { prompt: 'b2' }, maxAttempts: 5,
    });
    expect(q.update(b.id, {})).toMatchObject({ name: 'urgent' });
    expect(q.list().map((j) => j.id)).toEqual([b.id, a.id]);
    expect(() => q.update(a.id, { priority: 0.5 })).toThrow(/priority/);
    expect(() => q.update(a.id, { params: [] as never })).toThrow(/params/);
    const claimed = q.claim(owner('w'), 30000)!;
    expect(claimed.id).toBe(b.id);
    expect(() => q.update(b.id, { priority: 1 })).toThrow(/cannot edit job \d+: it is running/);
    expect(() => q.remove(b.id)).toThrow(/cannot remove job \d+: it is running \(cancel it first\)/);
    expect(q.remove(a.id).id).toBe(a.id);
    expect(() => q.remove(a.id)).toThrow(JobNotFoundError);
    expect(q.list().map((j) => j.id)).toEqual([b.id]);
  });
});

describe('Queue.recover', () => {
  it('re-queues jobs of a dead local pid, fails them when attempts are used up, leaves live owners alone', () => {
    const dead = deadPid();
    const a = q.add({}, { maxAttempts: 2 });
    const b = q.add({}, { maxAttempts: 1 });
    const c = q.add({});
    q.claim(owner('dead:a', dead), 30000);
    q.claim(owner('dead:b', dead), 30000);
    q.claim(owner('alive', process.ppid), 30000); // the parent process is alive
    expect(q.abandoned()).toEqual([a.id, b.id]); // read-only view of what recover() would take
    expect(q.get(a.id).status).toBe('running');
    const rec = q.recover();
    expect(rec.map((r) => [r.id, r.action])).toEqual([[a.id, 'requeued'], [b.id, 'failed']]);
    expect(q.get(a.id)).toMatchObject({ status: 'queued', attempts: 1, owner: null });
    expect(q.get(a.id).error).toMatch(/died during attempt 1\/2; re-queued/);
    expect(q.get(b.id)).toMatchObject({ status: 'failed' });
    expect(q.get(b.id).error).toMatch(/no attempts left/);
    expect(q.get(c.id).status).toBe('running');
  });

  it.skipIf(process.platform !== 'linux')('a reused pid (alive, but started later than the claimer) counts as dead', () => {
    const parentStart = processStartId(process.ppid);
    expect(parentStart).toMatch(/^[0-9a-f-]+:\d+$/); // Linux /proc
    const a = q.add({});
    const b = q.add({});
    q.claim({ ...owner('reused', process.ppid), start: 'another-boot:1' }, 30000);
    q.claim({ ...owner('same', process.ppid), start: parentStart }, 30000);
    expect(q.recover().map((r) => r.id)).toEqual([a.id]);
    expect(q.get(b.id).status).toBe('running');
    expect(isProcessAlive(process.pid, processStartId(process.pid))).toBe(true);
  });

  it('same process: only owners that are not live workers are recovered', () => {
    const a = q.add({});
    q.claim(owner('this-process-but-gone'), 30000);
    expect(q.recover().map((r) => r.id)).toEqual([a.id]);
  });

  it.skipIf(process.platform !== 'linux')('the host identity includes the pid namespace, so containers sharing a host name are not judged by pid', () => {
    expect(hostIdentity()).toMatch(/\/pid:\[\d+\]$/);
    const a = q.add({});
    // same host name, another pid namespace, a pid that does not exist here: judged by its (valid) lease
    q.claim(owner('container', deadPid(), `${hostIdentity().split('/')[0]}/pid:[1]`), 60000);
    expect(q.recover()).toEqual([]);
    expect(q.get(a.id).status).toBe('running');
  });

  it('other hosts are judged by their lease', () => {
    const a = q.add({});
    const b = q.add({});
    q.claim(owner('far:1', 1, 'other-host'), 1000);
    q.claim(owner('far:2', 1, 'other-host'), 60000);
    expect(q.recover(Date.now() + 5000).map((r) => r.id)).toEqual([a.id]);
    expect(q.get(b.id).status).toBe('running');
    // a heartbeat extends the lease
    expect(q.heartbeat(b.id, 'far:2', 120000)).toBe(true);
    expect(q.recover(Date.now() + 90000)).toEqual([]);
  });
});
