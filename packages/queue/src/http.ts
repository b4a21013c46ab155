import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { QueueConfigError, QueueError, ValidationError } from './errors.js';
import { jsonParams, parseJobOptions, parseSubmission } from './params.js';
import type { JobPatch, Queue } from './queue.js';
import { FINISHED_STATUSES, JOB_STATUSES, type Job, type JobStatus, type ParamsValidator } from './types.js';

export interface QueueServerOptions<P = Record<string, unknown>> {
  queue: Queue;
  /** Checks and normalises submitted params (the generator injects its schema). Default: any JSON object. */
  validateParams?: ParamsValidator<P>;
  /** Bind address. Default 127.0.0.1; a non-loopback address requires a token. */
  host?: string;
  /** Default 8765; 0 picks a free port. */
  port?: number;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  token?: string;
  /** Where uploaded input files are stored. Default: `uploads/` next to the queue database. */
  uploadDir?: string;
  /** Largest request body accepted. Default 64 MiB. */
  maxBodyBytes?: number;
  /** How often an SSE stream looks for changes made by other processes. Default 250 ms. */
  ssePollMs?: number;
  /** Interval of SSE keep-alive comments. Default 15000 ms. */
  sseKeepAliveMs?: number;
  log?: (line: string) => void;
}

export interface QueueServer {
  server: Server;
  /** e.g. http://127.0.0.1:8765 */
  url: string;
  close(): Promise<void>;
}

/** An error answered with its status and `{ error }` body. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
  }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost', '::ffff:127.0.0.1']);
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const MIME: Record<string, string> = {
  '.mp4': 'video/mp4', '.webm': 'video/webm', '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg',
  '.webp': 'image/webp', '.json': 'application/json', '.txt': 'text/plain; charset=utf-8', '.gif': 'image/gif',
  '.safetensors': 'application/octet-stream',
};

/** Starts the HTTP API. Resolves once listening. */
export async function startQueueServer<P>(opts: QueueServerOptions<P>): Promise<QueueServer> {
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopback(host) && !opts.token) {
    throw new QueueConfigError(`refusing to serve on ${host} without a token: pass --token (or FRAMEPACK_TOKEN), or bind to 127.0.0.1`);
  }
  const server = createServer(createQueueHandler(opts));
  await new Promise<void>((res, rej) => {
    const onError = (err: NodeJS.ErrnoException) =>
      rej(err.code === 'EADDRINUSE' ? new QueueConfigError(`${host}:${opts.port ?? 8765} is already in use: stop the other server or pick another --port`)
        : err.code === 'EADDRNOTAVAIL' ? new QueueConfigError(`cannot bind to ${host}: no such local address (--host)`)
        : err);
    server.once('error', onError);
    server.listen(opts.port ?? 8765, host, () => {
      server.off('error', onError);
      res();
    });
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((res) => {
        server.close(() => res());
        server.closeAllConnections(); // SSE streams would otherwise keep it open
      }),
  };
}

/** The request handler, for mounting on an existing server. Never throws: every failure is a JSON answer. */
export function createQueueHandler<P>(opts: QueueServerOptions<P>): (req: IncomingMessage, res: ServerResponse) => void {
  const queue = opts.queue;
  const validate = (opts.validateParams ?? jsonParams) as ParamsValidator<P>;
  const uploadDir = resolve(opts.uploadDir ?? join(queue.path === ':memory:' ? process.cwd() : dirname(queue.path), 'uploads'));
  const maxBody = opts.maxBodyBytes ?? 64 * 1024 * 1024;
  const tokenHash = opts.token ? sha256(opts.token) : null;

  const authorised = (req: IncomingMessage): boolean => {
    if (!tokenHash) return true;
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    return !!m && timingSafeEqual(sha256(m[1]!.trim()), tokenHash);
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!authorised(req)) throw new HttpError(401, 'missing or wrong bearer token (send Authorization: Bearer <token>)', { 'WWW-Authenticate': 'Bearer' });
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) throw new HttpError(405, `${method} is not allowed on ${url.pathname}`, { Allow: methods.join(', ') });
    };

    if (parts.length === 1 && parts[0] === 'health') {
      allow('GET');
      return sendJson(res, 200, { ok: true, counts: queue.counts() });
    }
    if (parts.length === 1 && parts[0] === 'events') {
      allow('GET');
      return streamQueueEvents(req, res);
    }
    if (parts[0] !== 'jobs') throw new HttpError(404, `no route ${url.pathname} (see the @framepack/queue README for the API)`);

    if (parts.length === 1) {
      allow('GET', 'POST');
      if (method === 'GET') return sendJson(res, 200, { jobs: queue.list(listQuery(url)).map(present) });
      const job = await submit(req);
      return sendJson(res, 201, { job: present(job) }, { Location: `/jobs/${job.id}` });
    }
    const id = jobId(parts[1]!);
    if (parts.length === 2) {
      allow('GET', 'PATCH', 'DELETE');
      if (method === 'GET') return sendJson(res, 200, { job: present(queue.get(id)) });
      if (method === 'DELETE') return sendJson(res, 200, { removed: present(queue.remove(id)) });
      return sendJson(res, 200, { job: present(await edit(req, id)) });
    }
    if (parts.length === 3 && parts[2] === 'cancel') {
      allow('POST');
      return sendJson(res, 200, { job: present(queue.cancel(id)) });
    }
    if (parts.length === 3 && parts[2] === 'retry') {
      allow('POST');
      return sendJson(res, 200, { job: present(queue.retry(id)) });
    }
    if (parts.length === 3 && parts[2] === 'events') {
      allow('GET');
      return streamEvents(req, res, id);
    }
    if (parts.length === 4 && parts[2] === 'outputs') {
      allow('GET');
      return sendOutput(req, res, queue.get(id), parts[3]!);
    }
    throw new HttpError(404, `no route ${url.pathname}`);
  };

  // ------------------------------------------------------------ POST /jobs

  const submit = async (req: IncomingMessage): Promise<Job> => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json' && type !== 'multipart/form-data') {
      throw new HttpError(415, 'send application/json ({ params, name?, priority?, maxAttempts?, files? }) or multipart/form-data');
    }
    const body = await readBody(req, maxBody);
    const saved: string[] = [];
    try {
      let params: Record<string, unknown>;
      let options;
      if (type === 'application/json') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch (err) {
          throw new ValidationError(`request body is not valid JSON: ${(err as Error).message}`);
        }
        const sub = parseSubmission(parsed);
        params = { ...sub.params };
        options = sub.options;
        for (const [key, f] of Object.entries(sub.files)) {
          const data = Buffer.from(f.base64, 'base64');
          if (data.length === 0) throw new ValidationError('is empty', `files.${key}`);
          params[key] = saveUpload(data, f.filename ?? key, saved);
        }
      } else {
        const form = await parseMultipart(req, body);
        const fields: Record<string, string> = {};
        let paramsText: string | undefined;
        const files: [string, File][] = [];
        for (const [k, v] of form.entries()) {
          if (typeof v === 'string') {
            if (k === 'params') paramsText = v;
            else if (k === 'name' || k === 'priority' || k === 'maxAttempts') fields[k] = v;
            else throw new ValidationError('unknown form field (expected params, name, priority, maxAttempts, or file parts)', k);
          } else files.push([k, v]);
        }
        if (paramsText === undefined) throw new ValidationError('form field is required (JSON object text)', 'params');
        let p: unknown;
        try {
          p = JSON.parse(paramsText);
        } catch (err) {
          throw new ValidationError(`is not valid JSON: ${(err as Error).message}`, 'params');
        }
        if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new ValidationError('must be a JSON object', 'params');
        params = p as Record<string, unknown>;
        options = parseJobOptions(fields);
        for (const [key, file] of files) {
          if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(key)) throw new ValidationError('is not a valid parameter name', key);
          const data = Buffer.from(await file.arrayBuffer());
          if (data.length === 0) throw new ValidationError('uploaded file is empty', key);
          params[key] = saveUpload(data, file.name || key, saved);
        }
      }
      let valid: P;
      try {
        valid = validate(params);
      } catch (err) {
        if (err instanceof QueueError) throw err;
        throw new ValidationError((err as Error)?.message ?? String(err), 'params');
      }
      return queue.add(valid as Record<string, unknown>, options);
    } catch (err) {
      for (const f of saved) rmSync(f, { force: true });
      throw err;
    }
  };

  // ------------------------------------------------------------ PATCH /jobs/:id (queued jobs only)

  const edit = async (req: IncomingMessage, id: number): Promise<Job> => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') throw new HttpError(415, 'send application/json ({ name?, priority?, maxAttempts?, params? })');
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req, maxBody)).toString('utf8'));
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new ValidationError(`request body is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ValidationError('request body must be a JSON object');
    const b = body as Record<string, unknown>;
    for (const k of Object.keys(b)) {
      if (!['name', 'priority', 'maxAttempts', 'params'].includes(k)) throw new ValidationError('unknown field (expected name, priority, maxAttempts, params)', k);
    }
    const patch: JobPatch = { ...parseJobOptions(b) };
    if (b.name === null) patch.name = null;
    if (b.params !== undefined) {
      try {
        patch.params = validate(b.params) as Record<string, unknown>;
      } catch (err) {
        if (err instanceof QueueError) throw err;
        throw new ValidationError((err as Error)?.message ?? String(err), 'params');
      }
    }
    return queue.update(id, patch);
  };

  const saveUpload = (data: Buffer, filename: string, saved: string[]): string => {
    mkdirSync(uploadDir, { recursive: true });
    const safe = basename(filename).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '').slice(-100) || 'upload';
    const path = join(uploadDir, `${Date.now()}-${randomBytes(4).toString('hex')}-${safe}`);
    writeFileSync(path, data, { flag: 'wx' });
    saved.push(path);
    return path;
  };

  // ------------------------------------------------------------ GET /jobs/:id/events (SSE)

  const streamEvents = (req: IncomingMessage, res: ServerResponse, id: number): void => {
    let job = queue.get(id); // 404 before the stream starts
    res.writeHead(200, sseHeaders);
    let seq = 0;
    const send = (event: string, data: unknown) => {
      res.write(`id: ${++seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    let closed = false;
    const cleanup = () => {
      if (closed) return;
      closed = true;
      clearInterval(poll);
      clearInterval(keepAlive);
      queue.events.off('changed', onChanged);
    };
    const finishIfDone = (j: Job) => {
      if (FINISHED_STATUSES.includes(j.status)) {
        send('end', present(j));
        cleanup();
        res.end();
        return true;
      }
      return false;
    };
    const check = () => {
      if (closed) return;
      let cur: Job | undefined;
      try {
        cur = queue.find(id);
      } catch (err) {
        send('error', { error: (err as Error).message });
        cleanup();
        res.end();
        return;
      }
      if (!cur) {
        send('error', { error: `job ${id} was cleared` });
        cleanup();
        res.end();
        return;
      }
      const prev = job;
      job = cur;
      for (let i = 0; i < cur.outputs.length; i++) {
        const o = cur.outputs[i]!;
        const before = prev.outputs[i];
        if (!before || before.path !== o.path || before.partial !== o.partial) send('output', { id, index: i, output: presentOutput(id, i, o) });
      }
      if (JSON.stringify(cur.progress) !== JSON.stringify(prev.progress)) send('progress', { id, status: cur.status, progress: cur.progress });
      if (cur.status !== prev.status || cur.attempts !== prev.attempts) send('status', present(cur));
      finishIfDone(cur);
    };
    const onChanged = (changed: number) => {
      if (changed === id) check();
    };
    send('job', present(job));
    const poll = setInterval(check, opts.ssePollMs ?? 250);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), opts.sseKeepAliveMs ?? 15000);
    queue.events.on('changed', onChanged);
    req.on('close', cleanup);
    res.on('error', cleanup);
    finishIfDone(job);
  };

  // ------------------------------------------------------------ GET /events (the whole queue, for dashboards)

  const streamQueueEvents = (req: IncomingMessage, res: ServerResponse): void => {
    let counts = queue.counts();
    let since = Date.now();
    const seen = new Map<number, { sig: string; at: number }>();
    res.writeHead(200, sseHeaders);
    let seq = 0;
    const send = (event: string, data: unknown) => res.write(`id: ${++seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    let closed = false;
    let scheduled = false;
    const check = () => {
      scheduled = false;
      if (closed) return;
      try {
        for (const j of queue.changedSince(since)) {
          const sig = `${j.status}|${j.attempts}|${j.updatedAt}|${JSON.stringify(j.progress)}|${j.outputs.length}`;
          if (seen.get(j.id)?.sig === sig) continue;
          seen.set(j.id, { sig, at: j.updatedAt });
          since = Math.max(since, j.updatedAt);
          send('job', { id: j.id, name: j.name, status: j.status, attempts: j.attempts, progress: j.progress, outputs: j.outputs.length, error: j.error, updatedAt: j.updatedAt });
        }
        for (const [id, v] of seen) if (v.at < since) seen.delete(id); // rows before `since` are never read again
        const now = queue.counts();
        if (JSON.stringify(now) !== JSON.stringify(counts)) send('counts', (counts = now));
      } catch (err) {
        send('error', { error: (err as Error).message });
      }
    };
    const soon = () => {
      if (!scheduled) {
        scheduled = true;
        setImmediate(check);
      }
    };
    send('counts', counts);
    const poll = setInterval(check, opts.ssePollMs ?? 250);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), opts.sseKeepAliveMs ?? 15000);
    queue.events.on('changed', soon);
    queue.events.on('added', soon);
    const cleanup = () => {
      closed = true;
      clearInterval(poll);
      clearInterval(keepAlive);
      queue.events.off('changed', soon);
      queue.events.off('added', soon);
    };
    req.on('close', cleanup);
    res.on('error', cleanup);
  };

  // ------------------------------------------------------------ GET /jobs/:id/outputs/:n

  const sendOutput = (req: IncomingMessage, res: ServerResponse, job: Job, nText: string): void => {
    if (!/^\d+$/.test(nText)) throw new HttpError(400, `output index must be a non-negative integer, got "${nText}"`);
    const n = Number(nText);
    const out = job.outputs[n];
    if (!out) throw new HttpError(404, `job ${job.id} has ${job.outputs.length} output(s); there is no output ${n}`);
    let size: number;
    try {
      const st = statSync(out.path);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      throw new HttpError(404, `output ${n} of job ${job.id} (${out.path}) no longer exists on disk`);
    }
    const name = basename(out.path).replace(/["\\\r\n]/g, '_');
    const headers: Record<string, string> = {
      'Content-Type': MIME[extname(out.path).toLowerCase()] ?? 'application/octet-stream',
      'Content-Disposition': `attachment; filename="${out.partial ? `partial-${name}` : name}"`,
      'Accept-Ranges': 'bytes',
      'X-Output-Kind': out.kind,
      'X-Output-Partial': String(out.partial),
    };
    // One byte range (what video players ask for when seeking); anything else gets the whole file.
    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') throw new HttpError(416, `range ${req.headers.range} is outside the file (${size} bytes)`, { 'Content-Range': `bytes */${size}` });
    if (range) {
      headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
      headers['Content-Length'] = String(range.end - range.start + 1);
      res.writeHead(206, headers);
    } else {
      headers['Content-Length'] = String(size);
      res.writeHead(200, headers);
    }
    const stream = createReadStream(out.path, range ? { start: range.start, end: range.end } : {});
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  };

  return (req, res) => {
    route(req, res).catch((err: unknown) => {
      const { status, message, headers } = toHttp(err);
      if (status >= 500) opts.log?.(`${req.method} ${req.url}: ${(err as Error)?.stack ?? String(err)}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, status, { error: message }, headers);
    });
  };
}

const sseHeaders = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
};

/** `bytes=a-b`, `bytes=a-` or `bytes=-n` (one range); undefined for no or unsupported ranges. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

function toHttp(err: unknown): { status: number; message: string; headers: Record<string, string> } {
  if (err instanceof HttpError) return { status: err.status, message: err.message, headers: err.headers };
  if (err instanceof QueueError) return { status: err.status, message: err.message, headers: {} };
  return { status: 500, message: `internal error: ${(err as Error)?.message ?? String(err)}`, headers: {} };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function jobId(text: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new HttpError(404, `"${text}" is not a job id`);
  return Number(text);
}

const DEFAULT_LIST_LIMIT = 100;
const MAX_LIST_LIMIT = 10000;

function listQuery(url: URL): { status?: JobStatus[]; limit?: number; offset?: number; newestFirst?: boolean } {
  const out: { status?: JobStatus[]; limit?: number; offset?: number; newestFirst?: boolean } = {};
  for (const k of url.searchParams.keys()) {
    if (!['status', 'limit', 'offset', 'order'].includes(k)) throw new ValidationError('unknown query parameter (status, limit, offset, order)', k);
  }
  const status = url.searchParams.get('status');
  if (status) {
    const list = status.split(',').map((s) => s.trim()) as JobStatus[];
    for (const s of list) if (!JOB_STATUSES.includes(s)) throw new ValidationError(`unknown status "${s}" (one of ${JOB_STATUSES.join(', ')})`, 'status');
    out.status = list;
  }
  out.limit = DEFAULT_LIST_LIMIT;
  for (const k of ['limit', 'offset'] as const) {
    const v = url.searchParams.get(k);
    if (v === null) continue;
    if (!/^\d{1,9}$/.test(v)) throw new ValidationError('must be a non-negative integer', k);
    out[k] = Number(v);
  }
  if (out.limit! < 1 || out.limit! > MAX_LIST_LIMIT) throw new ValidationError(`must be from 1 to ${MAX_LIST_LIMIT}`, 'limit');
  const order = url.searchParams.get('order');
  if (order !== null) {
    if (order !== 'queue' && order !== 'newest') throw new ValidationError('must be "queue" or "newest"', 'order');
    out.newestFirst = order === 'newest';
  }
  return out;
}

function presentOutput(id: number, index: number, o: Job['outputs'][number]) {
  return { ...o, url: `/jobs/${id}/outputs/${index}` };
}

/** The job as the API shows it: outputs carry their download URL. */
function present(job: Job) {
  return { ...job, outputs: job.outputs.map((o, i) => presentOutput(job.id, i, o)) };
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new HttpError(413, `request body of ${declared} bytes exceeds the limit of ${limit} bytes`, { Connection: 'close' });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.resume();
      throw new HttpError(413, `request body exceeds the limit of ${limit} bytes`, { Connection: 'close' });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** multipart/form-data through the WHATWG Request parser built into Node (no extra dependency). */
async function parseMultipart(req: IncomingMessage, body: Buffer): Promise<FormData> {
  const contentType = req.headers['content-type'] ?? '';
  if (!/boundary=/i.test(contentType)) throw new ValidationError('multipart/form-data without a boundary', 'content-type');
  try {
    return await new Request('http://localhost/', { method: 'POST', headers: { 'content-type': contentType }, body }).formData();
  } catch (err) {
    throw new ValidationError(`malformed multipart body: ${(err as Error).message}`);
  }
}
