import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Queue } from '@framepack/queue';
import { tempDir } from './helpers.js';
import { spawnFixture } from './proc.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => t.cleanup());

it('1000 jobs from 4 concurrent submitter processes run exactly once on 3 worker processes', async () => {
  const q = Queue.open(t.db);
  const log = join(t.dir, 'runs.log');
  const SUBMITTERS = 4;
  const PER = 250;
  // Workers first, so claims race with the inserts.
  const workers = Array.from({ length: 3 }, () => spawnFixture('worker-proc.ts', [t.db, log, t.dir]));
  const started = Date.now();
  const subs = Array.from({ length: SUBMITTERS }, (_, s) =>
    spawnFixture('submit-proc.ts', [t.db, String(PER), `s${s}`, join(t.dir, `ids-${s}.txt`)]),
  );
  for (const s of subs) expect(await s.exited).toEqual({ code: 0, signal: null });
  // Wait for the queue to drain, then stop the workers (SIGTERM: graceful stop).
  const deadline = Date.now() + 60000;
  while (q.counts().completed < SUBMITTERS * PER && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const elapsed = Date.now() - started;
  for (const w of workers) w.kill('SIGTERM');
  for (const w of workers) expect(await w.exited).toEqual({ code: 0, signal: null });

  const ids = new Set<number>();
  for (let s = 0; s < SUBMITTERS; s++) {
    for (const l of readFileSync(join(t.dir, `ids-${s}.txt`), 'utf8').trim().split('\n')) ids.add(Number(l));
  }
  expect(ids.size).toBe(SUBMITTERS * PER);
  const jobs = q.list();
  expect(jobs.length).toBe(SUBMITTERS * PER);
  expect(q.counts()).toMatchObject({ queued: 0, running: 0, completed: SUBMITTERS * PER, failed: 0, cancelled: 0 });
  // every (tag, i) pair exactly once
  const pairs = new Set(jobs.map((j) => `${j.params.tag}:${j.params.i}`));
  expect(pairs.size).toBe(SUBMITTERS * PER);
  // each job ran exactly once, on one of the workers
  const lines = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
  const done = new Map<number, number>();
  const byPid = new Map<number, number>();
  for (const l of lines) {
    const [ev, id, pid] = l.split(' ');
    if (ev !== 'done') continue;
    done.set(Number(id), (done.get(Number(id)) ?? 0) + 1);
    byPid.set(Number(pid), (byPid.get(Number(pid)) ?? 0) + 1);
  }
  expect(done.size).toBe(SUBMITTERS * PER);
  expect([...done.values()].every((n) => n === 1)).toBe(true);
  expect([...ids].every((id) => done.get(id) === 1)).toBe(true);
  expect(jobs.every((j) => j.attempts === 1)).toBe(true);
  expect(byPid.size).toBeGreaterThan(1); // the work was really shared
  console.log(`throughput: ${SUBMITTERS * PER} jobs in ${elapsed} ms; per worker ${[...byPid.values()].join('/')}`);
  q.close();
});
