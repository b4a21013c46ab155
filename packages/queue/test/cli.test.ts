import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Queue, ValidationError, Worker, defaultQueuePath, hostIdentity, jsonParams, registerQueueCommands, type JobRunner } from '@framepack/queue';
import { tempDir, waitFor } from './helpers.js';
import { spawnFixture } from './proc.js';

let t: ReturnType<typeof tempDir>;
let lines: string[];
let errs: string[];
beforeEach(() => {
  t = tempDir();
  lines = [];
  errs = [];
});
afterEach(() => t.cleanup());

const quick: JobRunner = async (p, ctx) => {
  ctx.progress({ fraction: 0.5 });
  return { outputs: p.out ? [String(p.out)] : [] };
};

function cli(extra: { runner?: JobRunner; stopSignal?: AbortSignal; onListening?: (u: string) => void } = {}) {
  const program = new Command('framepack').exitOverride();
  program.configureOutput({ writeOut: (s) => lines.push(s), writeErr: (s) => errs.push(s) });
  registerQueueCommands(program, {
    openQueue: () => Queue.open(t.db),
    runner: async () => extra.runner ?? quick,
    validateParams: (p) => jsonParams(p),
    out: (l) => lines.push(l),
    err: (l) => errs.push(l),
    ...(extra.stopSignal ? { stopSignal: extra.stopSignal } : {}),
    ...(extra.onListening ? { onListening: extra.onListening } : {}),
  });
  return (...args: string[]) => program.parseAsync(args, { from: 'user' });
}
const look = (fn: (q: Queue) => unknown) => {
  const q = Queue.open(t.db);
  try {
    return fn(q);
  } finally {
    q.close();
  }
};

describe('queue commands', () => {
  it('add merges a params file, a JSON argument and --set pairs', async () => {
    const file = join(t.dir, 'p.json');
    writeFileSync(file, JSON.stringify({ prompt: 'from file', steps: 25, seed: 1 }));
    await cli()('queue', 'add', '{"seed": 7}', '-f', file, '--set', 'steps=9', '-s', 'lora.name=style', '-s', 'note=hello world', '--name', 'n1', '--priority', '3', '--max-attempts', '2');
    expect(lines).toEqual(['added job 1']);
    const job = look((q) => q.get(1)) as ReturnType<Queue['get']>;
    expect(job.params).toEqual({ prompt: 'from file', steps: 9, seed: 7, lora: { name: 'style' }, note: 'hello world' });
    expect(job).toMatchObject({ name: 'n1', priority: 3, maxAttempts: 2 });
  });

  it('add rejects bad JSON, bad flags and params the validator refuses', async () => {
    await expect(cli()('queue', 'add', '{oops')).rejects.toThrow(ValidationError);
    await expect(cli()('queue', 'add', '[1]')).rejects.toThrow(/must be a JSON object/);
    await expect(cli()('queue', 'add', '--set', 'novalue')).rejects.toThrow(/expected key=value/);
    await expect(cli()('queue', 'add', '--set', '__proto__.x=1')).rejects.toThrow(/invalid key/);
    await expect(cli()('queue', 'add', '--priority', 'high')).rejects.toThrow(/priority must be an integer/);
    await expect(cli()('queue', 'add', '-f', join(t.dir, 'missing.json'))).rejects.toThrow(/cannot read/);
    expect(look((q) => q.list())).toEqual([]);
  });

  it('list, show, cancel, retry and clear', async () => {
    const run = cli();
    await run('queue', 'add', '{"prompt": "a very long prompt about a cat walking through a garden at dusk"}');
    await run('queue', 'add', '{"x": 1}', '--name', 'second');
    lines = [];
    await run('queue', 'list');
    expect(lines[0]!.split('\n')[0]).toMatch(/^ID\s+STATUS\s+TRIES\s+DONE\s+UPDATED \(UTC\)\s+JOB$/);
    expect(lines[0]!.split('\n')[1]).toMatch(/^1\s+queued\s+0\/3\s+0%\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+a very long prompt about a cat walking…$/);
    expect(lines[0]!.split('\n')[2]).toMatch(/second$/);
    expect(lines[1]).toBe('queued 2 | running 0 | completed 0 | failed 0 | cancelled 0');

    lines = [];
    await run('queue', 'cancel', '1');
    expect(lines).toEqual(['job 1 cancelled']);
    lines = [];
    await expect(run('queue', 'cancel', '1', '2')).rejects.toThrow(/cancel failed for 1 of 2/);
    expect(lines).toEqual(['job 2 cancelled']);
    expect(errs.at(-1)).toMatch(/cannot cancel job 1: it is cancelled/);
    await expect(run('queue', 'cancel', 'abc')).rejects.toThrow(/job id must be an integer/);

    lines = [];
    await run('queue', 'show', '2');
    expect(lines[0]).toMatch(/^job 2 \(second\): cancelled\n/);
    expect(lines[0]).toMatch(/error {5}cancelled by user/);
    lines = [];
    await run('queue', 'show', '2', '--json');
    expect(JSON.parse(lines[0]!)).toMatchObject({ id: 2, status: 'cancelled', params: { x: 1 } });
    await expect(run('queue', 'show', '9')).rejects.toThrow(/job 9 does not exist/);

    lines = [];
    await run('queue', 'retry', '2');
    expect(lines).toEqual(['job 2 queued']);
    await expect(run('queue', 'retry', '2')).rejects.toThrow(/retry failed for 1 of 1/);
    expect(errs.at(-1)).toMatch(/cannot retry job 2: it is queued/);
    lines = [];
    await run('queue', 'list', '--status', 'queued', '--json');
    expect((JSON.parse(lines[0]!) as { id: number }[]).map((j) => j.id)).toEqual([2]);
    await expect(run('queue', 'list', '--status', 'done')).rejects.toThrow(/unknown status "done"/);

    lines = [];
    await run('queue', 'clear');
    expect(lines).toEqual(['cleared 1 job(s)']);
    await run('queue', 'clear', '--status', 'queued');
    expect(look((q) => q.list())).toEqual([]);
    await expect(run('queue', 'clear', '--status', 'running')).rejects.toThrow(/cancel them first/);
  });

  it('edit reorders and changes params (validated again); remove deletes; list flags jobs of dead workers', async () => {
    const run = cli();
    await run('queue', 'add', '{"prompt": "a", "steps": 25}');
    await run('queue', 'add', '{"prompt": "b"}');
    lines = [];
    await run('queue', 'edit', '2', '--priority', '5', '--name', 'first', '-s', 'steps=9');
    expect(lines).toEqual(['job 2 updated']);
    expect(look((q) => q.list().map((j) => [j.id, j.name, j.params]))).toEqual([
      [2, 'first', { prompt: 'b', steps: 9 }],
      [1, null, { prompt: 'a', steps: 25 }],
    ]);
    await run('queue', 'edit', '1', '--params', '{"prompt": "z"}');
    expect(look((q) => q.get(1).params)).toEqual({ prompt: 'z' });
    await expect(run('queue', 'edit', '1', '--params', '[]')).rejects.toThrow(/must be a JSON object/);
    // a job left running by a dead worker is flagged, and remove refuses it
    look((q) => q.claim({ id: 'ghost', host: hostIdentity(), pid: process.pid }, 30000));
    lines = [];
    await run('queue', 'list');
    expect(lines[0]).toMatch(/\n2\s+running \(worker gone\)\s/);
    expect(lines[1]).toBe('job(s) 2: their worker is gone; the next `worker` re-queues them');
    lines = [];
    await run('queue', 'show', '2');
    expect(lines[0]).toMatch(/^job 2 \(first\): running \(worker gone\)/);
    await expect(run('queue', 'edit', '2', '--priority', '1')).rejects.toThrow(/only queued jobs can be edited/);
    lines = [];
    await expect(run('queue', 'remove', '1', '2')).rejects.toThrow(/remove failed for 1 of 2/);
    expect(lines).toEqual(['job 1 removed']);
    expect(look((q) => q.list().map((j) => j.id))).toEqual([2]);
  });

  it('worker --once runs everything, validating params again before each job', async () => {
    const run = cli();
    await run('queue', 'add', '{"out": "/tmp/a.mp4"}');
    await run('queue', 'add', '{"out": "/tmp/b.mp4"}');
    await run('worker', '--once', '--poll-ms', '20');
    const jobs = look((q) => q.list()) as ReturnType<Queue['list']>;
    expect(jobs.map((j) => [j.status, j.outputs.map((o) => o.path)])).toEqual([
      ['completed', ['/tmp/a.mp4']],
      ['completed', ['/tmp/b.mp4']],
    ]);
    expect(errs.some((l) => /job 1 completed/.test(l))).toBe(true);
  });

  it('serve answers the API until stopped, with an in-process worker', async () => {
    const ac = new AbortController();
    let url = '';
    const serving = cli({ stopSignal: ac.signal, onListening: (u) => (url = u) })('serve', '--port', '0', '--worker', '--token', 'tok');
    await waitFor(() => url, 10000, 'server');
    const r = await fetch(`${url}/jobs`, { method: 'POST', headers: { authorization: 'Bearer tok', 'content-type': 'application/json' }, body: JSON.stringify({ params: { out: '/tmp/c.mp4' } }) });
    expect(r.status).toBe(201);
    const { job } = (await r.json()) as { job: { id: number } };
    await waitFor(() => look((q) => q.get(job.id).status === 'completed'), 10000, 'job done');
    expect((await fetch(`${url}/jobs/${job.id}`)).status).toBe(401);
    ac.abort();
    await serving;
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  it('worker --slot refuses to start while a live worker holds the slot; serve --worker fails loudly too', async () => {
    const q = Queue.open(t.db);
    expect(q.acquireSlot('cuda:0', { id: 'parent', host: hostIdentity(), pid: process.ppid }, 60000)).toEqual({ ok: true });
    q.close();
    await expect(cli()('worker', '--once', '--slot', 'cuda:0')).rejects.toThrow(/worker slot "cuda:0" is held by parent/);
    await expect(cli()('serve', '--port', '0', '--worker', '--slot', 'cuda:0')).rejects.toThrow(/worker slot "cuda:0" is held by parent/);
    await cli()('worker', '--once', '--slot', 'cuda:1');
  });

  it('add --wait and queue wait follow a job to its end and fail unless it completes', async () => {
    const run = cli();
    await run('queue', 'add', '{"out": "/tmp/w.mp4"}');
    // A worker in this process finishes job 1 while `add --wait` follows job 2.
    const wq = Queue.open(t.db);
    const w = new Worker({ queue: wq, runner: quick, pollMs: 20 });
    const loop = w.run();
    lines = [];
    await run('queue', 'add', '{"out": "/tmp/w2.mp4"}', '--wait');
    expect(lines).toEqual(['added job 2', '/tmp/w2.mp4']);
    expect(errs.at(-1)).toBe('job 2 completed 100%');
    lines = [];
    await run('queue', 'wait', '1');
    expect(lines).toEqual(['/tmp/w.mp4']);
    await w.stop();
    await loop;
    wq.close();
    const q = Queue.open(t.db);
    const c = q.add({});
    q.cancel(c.id);
    q.close();
    await expect(run('queue', 'wait', String(c.id))).rejects.toThrow(/job 3 cancelled: cancelled by user/);
  });

  it('the default database path honours FRAMEPACK_QUEUE_DB', () => {
    expect(defaultQueuePath({ FRAMEPACK_QUEUE_DB: '/x/q.sqlite' })).toBe('/x/q.sqlite');
    expect(defaultQueuePath({})).toMatch(/\.framepack\/queue\.sqlite$/);
  });
});

describe('worker command as a process', () => {
  it('SIGTERM re-queues the running job without using an attempt; the next worker finishes it', async () => {
    const q = Queue.open(t.db);
    const job = q.add({ steps: 200, stepMs: 10 });
    const w = spawnFixture('cli-proc.ts', [t.db, 'worker', '--poll-ms', '20']);
    await waitFor(() => (q.get(job.id).progress.step ?? 0) >= 5, 20000, 'job running');
    w.kill('SIGTERM');
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(q.get(job.id)).toMatchObject({ status: 'queued', attempts: 0 });
    q.close();
    const w2 = spawnFixture('cli-proc.ts', [t.db, 'worker', '--once', '--poll-ms', '20']);
    expect(await w2.exited).toEqual({ code: 0, signal: null });
    expect(look((x) => x.get(job.id).status)).toBe('completed');
  });
});
