import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Queue, QueueConfigError, ValidationError, Worker, startQueueServer, type JobRunner, type QueueServer } from '@framepack/queue';
import { tempDir } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let q: Queue;
let srv: QueueServer;
const TOKEN = 's3cret-token';
const auth = { authorization: `Bearer ${TOKEN}` };

/** A validator like the generator's: requires a prompt, and an image path that exists. */
const validateParams = (p: unknown) => {
  const o = p as Record<string, unknown>;
  if (typeof o.prompt !== 'string' || o.prompt === '') throw new ValidationError('is required', 'prompt');
  if (o.image !== undefined && (typeof o.image !== 'string' || !existsSync(o.image))) throw new ValidationError(`file not found: ${String(o.image)}`, 'image');
  return o;
};

beforeEach(async () => {
  t = tempDir();
  q = Queue.open(t.db);
  srv = await startQueueServer({ queue: q, port: 0, token: TOKEN, validateParams, maxBodyBytes: 64 * 1024, ssePollMs: 30 });
});
afterEach(async () => {
  await srv.close();
  q.close();
  t.cleanup();
});

/** fetch's Response with an untyped json() for terse assertions. */
type Res = Omit<Response, 'json'> & { json(): Promise<any> };
const api = (path: string, init: RequestInit = {}): Promise<Res> =>
  fetch(srv.url + path, { ...init, headers: { ...auth, ...(init.headers ?? {}) } }) as Promise<Res>;
const post = (path: string, body: unknown) => api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('HTTP API', () => {
  it('binds to loopback by default and refuses a public address without a token', async () => {
    expect(srv.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await expect(startQueueServer({ queue: q, host: '0.0.0.0', port: 0 })).rejects.toThrow(QueueConfigError);
    const port = Number(new URL(srv.url).port);
    await expect(startQueueServer({ queue: q, port })).rejects.toThrow(new RegExp(`127.0.0.1:${port} is already in use`));
  });

  it('requires the bearer token', async () => {
    expect((await fetch(srv.url + '/jobs')).status).toBe(401);
    const bad = (await fetch(srv.url + '/jobs', { headers: { authorization: 'Bearer nope' } })) as Res;
    expect(bad.status).toBe(401);
    expect((await bad.json()).error).toMatch(/bearer token/);
    expect((await api('/health')).status).toBe(200);
  });

  it('submits with params and an input image by path; lists and shows jobs', async () => {
    const img = join(t.dir, 'in.png');
    writeFileSync(img, 'png-bytes');
    const r = await post('/jobs', { params: { prompt: 'a cat', image: img }, name: 'cat', priority: 2 });
    expect(r.status).toBe(201);
    const { job } = await r.json();
    expect(r.headers.get('location')).toBe(`/jobs/${job.id}`);
    expect(job).toMatchObject({ status: 'queued', name: 'cat', priority: 2, params: { prompt: 'a cat', image: img } });
    expect(q.get(job.id).params).toEqual({ prompt: 'a cat', image: img });
    await post('/jobs', { params: { prompt: 'a dog' } });
    const list = await (await api('/jobs?status=queued&limit=10')).json();
    expect(list.jobs.map((j: { name: string | null }) => j.name)).toEqual(['cat', null]);
    expect((await (await api('/jobs?order=newest')).json()).jobs[0].params.prompt).toBe('a dog');
    expect((await (await api('/jobs?limit=1&offset=1')).json()).jobs.map((j: { name: string | null }) => j.name)).toEqual([null]);
    expect((await (await api(`/jobs/${job.id}`)).json()).job.id).toBe(job.id);
  });

  it('accepts an upload as base64 JSON and as multipart, storing the file and its path in params', async () => {
    const b64 = await post('/jobs', { params: { prompt: 'x' }, files: { image: { base64: Buffer.from('PNGDATA1').toString('base64'), filename: '../../evil name.png' } } });
    expect(b64.status).toBe(201);
    const j1 = (await b64.json()).job;
    expect(j1.params.image.startsWith(join(t.dir, 'uploads') + '/')).toBe(true);
    expect(j1.params.image).toMatch(/-evil_name\.png$/); // no path traversal, no odd characters
    expect(readFileSync(j1.params.image, 'utf8')).toBe('PNGDATA1');

    const form = new FormData();
    form.set('params', JSON.stringify({ prompt: 'y' }));
    form.set('maxAttempts', '5');
    form.set('image', new Blob([Buffer.from('PNGDATA2')], { type: 'image/png' }), 'start.png');
    const mp = await api('/jobs', { method: 'POST', body: form });
    expect(mp.status).toBe(201);
    const j2 = (await mp.json()).job;
    expect(j2.maxAttempts).toBe(5);
    expect(j2.params.image).toMatch(/-start\.png$/);
    expect(readFileSync(j2.params.image, 'utf8')).toBe('PNGDATA2');
  });

  it('answers bad input with 4xx JSON and keeps serving', async () => {
    const cases: [Promise<Res>, number, RegExp][] = [
      [api('/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' }), 400, /not valid JSON/],
      [post('/jobs', { prompt: 'forgot the envelope' }), 400, /unknown field/],
      [post('/jobs', { params: { prompt: '' } }), 400, /prompt: is required/],
      [post('/jobs', { params: { prompt: 'x', image: '/nope.png' } }), 400, /image: file not found/],
      [post('/jobs', { params: { prompt: 'x' }, maxAttempts: 0 }), 400, /maxAttempts/],
      [post('/jobs', { params: { prompt: 'x' }, files: { image: { base64: '!!!' } } }), 400, /not base64/],
      [post('/jobs', { params: { prompt: 'x' }, files: { image: 'abc' } }), 400, /files.image/],
      [post('/jobs', { params: { prompt: 'x', pad: 'x'.repeat(70 * 1024) } }), 413, /exceeds the limit/],
      [api('/jobs', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' }), 415, /application\/json/],
      [api('/jobs', { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=zz' }, body: 'garbage' }), 400, /multipart/],
      [api('/jobs', { method: 'DELETE' }), 405, /not allowed/],
      [api('/jobs/abc'), 404, /not a job id/],
      [api('/jobs/999'), 404, /job 999 does not exist/],
      [api('/jobs/999/cancel', { method: 'POST' }), 404, /does not exist/],
      [api('/jobs?status=done'), 400, /unknown status "done"/],
      [api('/jobs?limit=-1'), 400, /limit/],
      [api('/jobs?limit=0'), 400, /limit: must be from 1 to 10000/],
      [api('/jobs?bogus=1'), 400, /unknown query parameter/],
      [api('/nope'), 404, /no route/],
    ];
    for (const [p, status, msg] of cases) {
      const r = await p;
      const body = await r.json();
      expect([r.status, body.error]).toEqual([status, expect.stringMatching(msg)]);
    }
    // multipart with an unexpected field or no params
    const f = new FormData();
    f.set('prompt', 'x');
    const r = await api('/jobs', { method: 'POST', body: f });
    expect([r.status, (await r.json()).error]).toEqual([400, expect.stringMatching(/unknown form field/)]);
    expect(q.list()).toEqual([]);
    expect(readdirSync(t.dir).includes('uploads') ? readdirSync(join(t.dir, 'uploads')) : []).toEqual([]); // failed submissions leave no files
    expect((await api('/health')).status).toBe(200);
  });

  it('random request bodies never get a 5xx', async () => {
    // A small deterministic generator of odd JSON values and byte strings.
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T,>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
    const value = (depth: number): unknown => {
      const kinds = depth > 3 ? ['num', 'str', 'null', 'bool'] : ['num', 'str', 'null', 'bool', 'arr', 'obj'];
      switch (pick(kinds)) {
        case 'num': return pick([0, -1, 1.5, 1e308, -0, 2 ** 53]);
        case 'str': return pick(['', 'x', '../../etc/passwd', '\u0000', 'é', '{"a":1}', '!!!']);
        case 'null': return null;
        case 'bool': return rnd() < 0.5;
        case 'arr': return Array.from({ length: Math.floor(rnd() * 3) }, () => value(depth + 1));
        default: {
          const keys = ['params', 'name', 'priority', 'maxAttempts', 'files', 'prompt', 'image', 'base64', 'filename', '__proto__'];
          return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 4) }, () => [pick(keys), value(depth + 1)]));
        }
      }
    };
    const statuses = new Map<number, number>();
    for (let i = 0; i < 150; i++) {
      const body = i % 5 === 4 ? Buffer.from(Array.from({ length: 40 }, () => Math.floor(rnd() * 256))) : JSON.stringify(value(0));
      const path = i % 3 === 2 ? '/jobs/1' : '/jobs';
      const method = path === '/jobs' ? 'POST' : 'PATCH';
      const ctype = pick(['application/json', 'application/json; charset=utf-8', 'multipart/form-data; boundary=x']);
      const r = await api(path, { method, headers: { 'content-type': ctype }, body });
      const json = await r.json();
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      expect(r.status, JSON.stringify(json)).toBeLessThan(500);
      if (r.status >= 400) expect(typeof json.error).toBe('string');
    }
    expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);
    expect((await api('/health')).status).toBe(200);
  });

  it('cancels, retries, and refuses to cancel twice', async () => {
    const { job } = await (await post('/jobs', { params: { prompt: 'x' } })).json();
    const c = await api(`/jobs/${job.id}/cancel`, { method: 'POST' });
    expect((await c.json()).job.status).toBe('cancelled');
    const again = await api(`/jobs/${job.id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect((await again.json()).error).toMatch(/cannot cancel job \d+: it is cancelled/);
    expect((await (await api(`/jobs/${job.id}/retry`, { method: 'POST' })).json()).job.status).toBe('queued');
  });

  it('edits (PATCH) and removes (DELETE) queued jobs', async () => {
    const { job: a } = await (await post('/jobs', { params: { prompt: 'a' } })).json();
    const { job: b } = await (await post('/jobs', { params: { prompt: 'b' } })).json();
    const patch = (id: number, body: unknown) => api(`/jobs/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const r = await patch(b.id, { priority: 3, name: 'first', params: { prompt: 'b2' } });
    expect(r.status).toBe(200);
    expect((await r.json()).job).toMatchObject({ priority: 3, name: 'first', params: { prompt: 'b2' } });
    expect((await (await api('/jobs')).json()).jobs.map((j: { id: number }) => j.id)).toEqual([b.id, a.id]);
    const bad = await patch(b.id, { params: { prompt: '' } });
    expect([bad.status, (await bad.json()).error]).toEqual([400, 'prompt: is required']);
    const unknown = await patch(b.id, { status: 'completed' });
    expect([unknown.status, (await unknown.json()).error]).toEqual([400, expect.stringMatching(/^status: unknown field/)]);
    q.cancel(a.id);
    const late = await patch(a.id, { priority: 1 });
    expect([late.status, (await late.json()).error]).toEqual([409, expect.stringMatching(/only queued jobs can be edited/)]);
    const del = await api(`/jobs/${a.id}`, { method: 'DELETE' });
    expect((await del.json()).removed.id).toBe(a.id);
    expect((await api(`/jobs/${a.id}`)).status).toBe(404);
  });

  it('streams progress over SSE and serves the outputs for download', async () => {
    const out = join(t.dir, 'video.mp4');
    const partial = join(t.dir, 'section-1.mp4');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const runner: JobRunner = async (_p, ctx) => {
      await gate;
      for (let s = 1; s <= 4; s++) {
        ctx.progress({ fraction: s / 4, step: s, message: `step ${s}` });
        await new Promise((r) => setTimeout(r, 40));
      }
      writeFileSync(partial, 'SECTION');
      ctx.output(partial, 'section');
      writeFileSync(out, 'MP4DATA');
      return { outputs: [out] };
    };
    const { job } = await (await post('/jobs', { params: { prompt: 'x' } })).json();
    const worker = new Worker({ queue: q, runner, progressIntervalMs: 10, pollMs: 20 });
    const loop = worker.run();

    const events: { event: string; data: any }[] = [];
    const sse = await api(`/jobs/${job.id}/events`);
    expect(sse.headers.get('content-type')).toMatch(/text\/event-stream/);
    release();
    const text = await sse.text(); // the server ends the stream when the job finishes
    for (const block of text.split('\n\n')) {
      const ev = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
    }
    await worker.stop();
    await loop;
    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe('job');
    expect(kinds.at(-1)).toBe('end');
    expect(kinds).toContain('status');
    const fractions = events.filter((e) => e.event === 'progress').map((e) => e.data.progress.fraction);
    expect(fractions.length).toBeGreaterThanOrEqual(2);
    expect([...fractions].sort((a, b) => a - b)).toEqual(fractions); // monotonic
    const end = events.at(-1)!.data;
    expect(end.status).toBe('completed');
    expect(end.outputs.map((o: any) => [o.kind, o.partial, o.url])).toEqual([
      ['section', true, `/jobs/${job.id}/outputs/0`],
      ['output', false, `/jobs/${job.id}/outputs/1`],
    ]);

    const dl = await api(`/jobs/${job.id}/outputs/1`);
    expect(dl.status).toBe(200);
    expect(dl.headers.get('content-type')).toBe('video/mp4');
    expect(dl.headers.get('content-disposition')).toBe('attachment; filename="video.mp4"');
    expect(await dl.text()).toBe('MP4DATA');
    const dp = await api(`/jobs/${job.id}/outputs/0`);
    expect(dp.headers.get('content-disposition')).toBe('attachment; filename="partial-section-1.mp4"');
    expect(dp.headers.get('x-output-partial')).toBe('true');
    const part = await api(`/jobs/${job.id}/outputs/1`, { headers: { range: 'bytes=2-4' } });
    expect([part.status, part.headers.get('content-range'), await part.text()]).toEqual([206, 'bytes 2-4/7', '4DA']);
    const tail = await api(`/jobs/${job.id}/outputs/1`, { headers: { range: 'bytes=-3' } });
    expect([tail.status, await tail.text()]).toEqual([206, 'ATA']);
    const open = await api(`/jobs/${job.id}/outputs/1`, { headers: { range: 'bytes=5-' } });
    expect([open.status, await open.text()]).toEqual([206, 'TA']);
    const beyond = await api(`/jobs/${job.id}/outputs/1`, { headers: { range: 'bytes=7-' } });
    expect([beyond.status, beyond.headers.get('content-range')]).toEqual([416, 'bytes */7']);
    const multi = await api(`/jobs/${job.id}/outputs/1`, { headers: { range: 'bytes=0-1,3-4' } });
    expect([multi.status, await multi.text()]).toEqual([200, 'MP4DATA']); // unsupported: the whole file
    expect((await api(`/jobs/${job.id}/outputs/2`)).status).toBe(404);
    expect((await api(`/jobs/${job.id}/outputs/x`)).status).toBe(400);
  });

  it('an SSE stream of a finished job ends at once; one for a job cancelled from another process ends too', async () => {
    const { job } = await (await post('/jobs', { params: { prompt: 'x' } })).json();
    q.cancel(job.id);
    const text = await (await api(`/jobs/${job.id}/events`)).text();
    expect(text).toMatch(/event: job[\s\S]*event: end/);

    const { job: j2 } = await (await post('/jobs', { params: { prompt: 'y' } })).json();
    const res = await api(`/jobs/${j2.id}/events`);
    const other = Queue.open(t.db); // no in-process event: the stream must see it by polling
    other.cancel(j2.id);
    other.close();
    const text2 = await res.text();
    expect(text2).toMatch(/event: status[\s\S]*"status":"cancelled"[\s\S]*event: end/);
  });

  it('GET /events streams queue counts and job changes, including changes made by other processes', async () => {
    const ac = new AbortController();
    const res = await api('/events', { signal: ac.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (re: RegExp) => {
      const end = Date.now() + 10000;
      while (!re.test(text)) {
        if (Date.now() > end) throw new Error(`no ${re} in ${text}`);
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        text += new TextDecoder().decode(value);
      }
    };
    await readUntil(/event: counts\ndata: \{"queued":0,/);
    const { job } = await (await post('/jobs', { params: { prompt: 'x' }, name: 'watched' })).json();
    await readUntil(new RegExp(`event: job\\ndata: \\{"id":${job.id},"name":"watched","status":"queued"`));
    await readUntil(/event: counts\ndata: \{"queued":1,/);
    const other = Queue.open(t.db); // another connection: seen by polling only
    other.cancel(job.id);
    other.close();
    await readUntil(new RegExp(`"id":${job.id},"name":"watched","status":"cancelled"`));
    await readUntil(/"queued":0,"running":0,"completed":0,"failed":0,"cancelled":1/);
    ac.abort();
    await reader.cancel().catch(() => {});
    expect((text.match(/"status":"queued"/g) ?? []).length).toBe(1); // no duplicates for an unchanged job
  });

  it('survives a client that disconnects mid-upload', async () => {
    await new Promise<void>((resolve) => {
      const u = new URL(srv.url);
      const req = request({ host: u.hostname, port: u.port, path: '/jobs', method: 'POST', headers: { ...auth, 'content-type': 'application/json', 'content-length': '5000' } });
      req.on('error', () => resolve());
      req.write('{"params": {"prompt": "x", "pad": "');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 50);
    });
    expect((await api('/health')).status).toBe(200);
  });
});
