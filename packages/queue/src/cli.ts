import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { QueueError, ValidationError } from './errors.js';
import { startQueueServer } from './http.js';
import { applyAssignments } from './params.js';
import type { Queue } from './queue.js';
import { FINISHED_STATUSES, JOB_STATUSES, type Job, type JobRunner, type JobStatus } from './types.js';
import { Worker } from './worker.js';

/** What the host CLI (apps/generator) injects; the queue package never imports the generator. */
export interface QueueCommandDeps<P = Record<string, unknown>> {
  openQueue(): Queue;
  /** Loaded lazily: only `worker` and `serve --worker` need the model stack. */
  runner: () => Promise<JobRunner<P>>;
  validateParams(p: unknown): P;
  /** Line output (default: stdout / stderr). */
  out?: (line: string) => void;
  err?: (line: string) => void;
  /** Stops `worker` / `serve` when aborted (default: the first SIGINT/SIGTERM; a second one exits at once). */
  stopSignal?: AbortSignal;
  /** How often `queue wait` / `add --wait` look at the job. Default 250 ms. */
  waitPollMs?: number;
  /** Called once `serve` listens (tests use it to learn the URL). */
  onListening?: (url: string) => void;
}

/** The default database: $FRAMEPACK_QUEUE_DB, else ~/.framepack/queue.sqlite. */
export function defaultQueuePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.FRAMEPACK_QUEUE_DB || join(homedir(), '.framepack', 'queue.sqlite');
}

const int = (what: string, lo: number, hi: number) => (v: string) => {
  if (!/^-?\d+$/.test(v.trim())) throw new InvalidArgumentError(`${what} must be an integer`);
  const n = Number(v);
  if (n < lo || n > hi) throw new InvalidArgumentError(`${what} must be from ${lo} to ${hi}`);
  return n;
};
const jobIdArg = (v: string) => int('job id', 1, Number.MAX_SAFE_INTEGER)(v);
const statusList = (v: string): JobStatus[] => {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean) as JobStatus[];
  for (const s of list) {
    if (!JOB_STATUSES.includes(s)) throw new InvalidArgumentError(`unknown status "${s}" (one of ${JOB_STATUSES.join(', ')})`);
  }
  return list;
};
const collect = (v: string, prev: string[] = []) => [...prev, v];

/**
 * Adds `queue add|list|show|cancel|retry|clear`, `worker` and `serve` to a commander program. Errors are thrown
 * as typed QueueErrors (or commander's InvalidArgumentError for bad flags) for the host CLI to print.
 */
export function registerQueueCommands<P>(program: Command, deps: QueueCommandDeps<P>): Command {
  const out = deps.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = deps.err ?? ((l: string) => process.stderr.write(`${l}\n`));
  const withQueue = async <T>(fn: (q: Queue) => T | Promise<T>): Promise<T> => {
    const q = deps.openQueue();
    try {
      return await fn(q);
    } finally {
      q.close();
    }
  };

  const queue = program.command('queue').description('manage the persistent job queue');

  queue
    .command('add')
    .description('add a job; params as JSON (argument or --params-file) plus --set key=value pairs')
    .argument('[params]', 'job parameters as a JSON object')
    .option('-f, --params-file <path>', 'read parameters from a JSON file')
    .option('-s, --set <key=value>', 'set one parameter (value parsed as JSON when it parses, dots nest); repeatable', collect)
    .option('--name <name>', 'a label for the job')
    .option('--priority <n>', 'higher runs first (default 0)', int('priority', -1_000_000, 1_000_000))
    .option('--max-attempts <n>', 'attempts allowed in total (crashes count)', int('max attempts', 1, 100))
    .option('--json', 'print the job as JSON')
    .option('--wait', 'wait for the job to finish, printing progress (fails unless it completes)')
    .action(async (paramsText: string | undefined, o: { paramsFile?: string; set?: string[]; name?: string; priority?: number; maxAttempts?: number; json?: boolean; wait?: boolean }) => {
      let params: Record<string, unknown> = {};
      if (o.paramsFile) params = { ...parseJsonObject(readText(o.paramsFile), o.paramsFile) };
      if (paramsText !== undefined) params = { ...params, ...parseJsonObject(paramsText, 'params argument') };
      applyAssignments(params, o.set ?? []);
      const valid = deps.validateParams(params);
      const job = await withQueue((q) =>
        q.add(valid as Record<string, unknown>, {
          ...(o.name !== undefined ? { name: o.name } : {}),
          ...(o.priority !== undefined ? { priority: o.priority } : {}),
          ...(o.maxAttempts !== undefined ? { maxAttempts: o.maxAttempts } : {}),
        }),
      );
      out(o.json ? JSON.stringify(job) : `added job ${job.id}`);
      if (o.wait) await waitForJob(job.id, !!o.json);
    });

  /** Follows a job until it finishes: progress to stderr, outputs to stdout; throws unless it completed. */
  const waitForJob = async (id: number, json: boolean): Promise<void> => {
    let last = '';
    const final = await withQueue(async (q) => {
      for (;;) {
        const j = q.get(id);
        const line = `job ${id} ${j.status} ${Math.round(j.progress.fraction * 100)}%${j.progress.message ? ` ${j.progress.message}` : ''}`;
        if (line !== last) err(line);
        last = line;
        if (FINISHED_STATUSES.includes(j.status)) return j;
        await new Promise((r) => setTimeout(r, deps.waitPollMs ?? 250));
      }
    });
    if (json) out(JSON.stringify(final));
    else for (const o of final.outputs) if (!o.partial) out(o.path);
    if (final.status !== 'completed') throw new QueueError(`job ${id} ${final.status}${final.error ? `: ${final.error}` : ''}`, 'E_STATE', 409);
  };

  queue
    .command('wait')
    .description('wait for a job to finish, printing progress; prints its outputs (fails unless it completes)')
    .argument('<id>', 'job id', jobIdArg)
    .option('--json', 'print the finished job as JSON')
    .action(async (id: number, o: { json?: boolean }) => waitForJob(id, !!o.json));

  queue
    .command('list')
    .description('list jobs in queue order')
    .option('--status <list>', `only these states (comma-separated: ${JOB_STATUSES.join(',')})`, statusList)
    .option('--limit <n>', 'at most n jobs', int('limit', 1, 1_000_000))
    .option('--newest', 'newest first')
    .option('--json', 'print JSON')
    .action(async (o: { status?: JobStatus[]; limit?: number; newest?: boolean; json?: boolean }) => {
      const { jobs, counts, abandoned } = await withQueue((q) => ({
        jobs: q.list({ ...(o.status ? { status: o.status } : {}), ...(o.limit ? { limit: o.limit } : {}), newestFirst: !!o.newest }),
        counts: q.counts(),
        abandoned: q.abandoned(),
      }));
      if (o.json) return out(JSON.stringify(jobs));
      out(formatTable(jobs, abandoned));
      if (abandoned.length) out(`job(s) ${abandoned.join(', ')}: their worker is gone; the next \`worker\` re-queues them`);
      out(JOB_STATUSES.map((s) => `${s} ${counts[s]}`).join(' | '));
    });

  queue
    .command('show')
    .description('show one job in full')
    .argument('<id>', 'job id', jobIdArg)
    .option('--json', 'print JSON')
    .action(async (id: number, o: { json?: boolean }) => {
      const [job, abandoned] = await withQueue((q) => [q.get(id), q.abandoned().includes(id)] as const);
      out(o.json ? JSON.stringify(job, null, 2) : formatJob(job, abandoned));
    });

  const eachId = (verb: string, fn: (q: Queue, id: number) => Job) => async (ids: number[]) => {
    const failures: string[] = [];
    await withQueue((q) => {
      for (const id of ids) {
        try {
          const job = fn(q, id);
          out(`job ${id} ${job.status}`);
        } catch (e) {
          if (!(e instanceof QueueError)) throw e;
          failures.push(e.message);
          err(e.message);
        }
      }
    });
    if (failures.length) throw new QueueError(`${verb} failed for ${failures.length} of ${ids.length} job(s)`, 'E_STATE', 409);
  };

  queue
    .command('cancel')
    .description('cancel queued or running jobs (a running job stops at its next step)')
    .argument('<ids...>', 'job ids', (v: string, prev: number[] = []) => [...prev, jobIdArg(v)])
    .action(eachId('cancel', (q, id) => q.cancel(id)));

  queue
    .command('retry')
    .description('re-queue failed or cancelled jobs with a fresh attempt budget')
    .argument('<ids...>', 'job ids', (v: string, prev: number[] = []) => [...prev, jobIdArg(v)])
    .action(eachId('retry', (q, id) => q.retry(id)));

  queue
    .command('edit')
    .description('edit a queued job: reorder it (--priority), rename it, or change its params')
    .argument('<id>', 'job id', jobIdArg)
    .option('-s, --set <key=value>', 'change one parameter (as in add); the result is validated again', collect)
    .option('--params <json>', 'replace all parameters')
    .option('--name <name>', 'a new label')
    .option('--priority <n>', 'a new priority (higher runs first)', int('priority', -1_000_000, 1_000_000))
    .option('--max-attempts <n>', 'a new attempt budget', int('max attempts', 1, 100))
    .action(async (id: number, o: { set?: string[]; params?: string; name?: string; priority?: number; maxAttempts?: number }) => {
      const job = await withQueue((q) => {
        const cur = q.get(id);
        let params: Record<string, unknown> | undefined;
        if (o.params !== undefined || o.set) {
          params = o.params !== undefined ? parseJsonObject(o.params, '--params') : structuredClone(cur.params);
          applyAssignments(params, o.set ?? []);
          params = deps.validateParams(params) as Record<string, unknown>;
        }
        return q.update(id, {
          ...(params ? { params } : {}),
          ...(o.name !== undefined ? { name: o.name } : {}),
          ...(o.priority !== undefined ? { priority: o.priority } : {}),
          ...(o.maxAttempts !== undefined ? { maxAttempts: o.maxAttempts } : {}),
        });
      });
      out(`job ${job.id} updated`);
    });

  queue
    .command('remove')
    .description('delete jobs that are not running (output files stay on disk)')
    .argument('<ids...>', 'job ids', (v: string, prev: number[] = []) => [...prev, jobIdArg(v)])
    .action(async (ids: number[]) => {
      const failures: string[] = [];
      await withQueue((q) => {
        for (const id of ids) {
          try {
            q.remove(id);
            out(`job ${id} removed`);
          } catch (e) {
            if (!(e instanceof QueueError)) throw e;
            failures.push(e.message);
            err(e.message);
          }
        }
      });
      if (failures.length) throw new QueueError(`remove failed for ${failures.length} of ${ids.length} job(s)`, 'E_STATE', 409);
    });

  queue
    .command('clear')
    .description('delete finished jobs (completed, failed, cancelled) from the queue; output files stay on disk')
    .option('--status <list>', 'delete jobs in these states instead (running is never deleted)', statusList)
    .action(async (o: { status?: JobStatus[] }) => {
      const n = await withQueue((q) => q.clear(o.status ?? FINISHED_STATUSES));
      out(`cleared ${n} job(s)`);
    });

  program
    .command('worker')
    .description('run queued jobs one at a time until stopped (Ctrl-C re-queues the running job)')
    .option('--once', 'exit when the queue is empty')
    .option('--max-jobs <n>', 'exit after n jobs', int('max jobs', 1, 1_000_000_000))
    .option('--poll-ms <ms>', 'idle poll interval', int('poll interval', 10, 3_600_000), 1000)
    .option('--lease-ms <ms>', 'lease renewed by the heartbeat', int('lease', 1000, 3_600_000), 30000)
    .option('--slot <name>', 'refuse to start while another live worker holds this slot (e.g. the GPU: cuda:0)')
    .action(async (o: { once?: boolean; maxJobs?: number; pollMs: number; leaseMs: number; slot?: string }) => {
      const runner = await deps.runner();
      await withQueue(async (q) => {
        const worker = new Worker<P>({
          queue: q,
          runner,
          validateParams: deps.validateParams,
          pollMs: o.pollMs,
          leaseMs: o.leaseMs,
          exitWhenIdle: !!o.once,
          ...(o.maxJobs !== undefined ? { maxJobs: o.maxJobs } : {}),
          ...(o.slot !== undefined ? { slot: o.slot } : {}),
          log: (l) => err(l),
        });
        const stop = stopSignal(deps.stopSignal, err);
        const onStop = () => void worker.stop('requeue');
        stop.signal.addEventListener('abort', onStop, { once: true });
        err(`worker ${worker.owner.id} on ${q.path}`);
        try {
          await worker.run();
        } finally {
          stop.signal.removeEventListener('abort', onStop);
          stop.dispose();
        }
      });
    });

  program
    .command('serve')
    .description('serve the queue over HTTP (loopback by default; --token or FRAMEPACK_TOKEN for auth)')
    .option('--host <host>', 'bind address', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', int('port', 0, 65535), 8765)
    .option('--token <token>', 'require Authorization: Bearer <token> (default: $FRAMEPACK_TOKEN)')
    .option('--upload-dir <dir>', 'where uploaded inputs are stored (default: uploads/ next to the database)')
    .option('--max-body-mb <n>', 'largest request body in MiB', int('max body', 1, 4096), 64)
    .option('--worker', 'also run a worker in this process')
    .option('--slot <name>', 'the in-process worker\'s slot (see worker --slot)')
    .action(async (o: { host: string; port: number; token?: string; uploadDir?: string; maxBodyMb: number; worker?: boolean; slot?: string }) => {
      const token = o.token ?? process.env.FRAMEPACK_TOKEN ?? undefined;
      const runner = o.worker ? await deps.runner() : undefined;
      await withQueue(async (q) => {
        const srv = await startQueueServer<P>({
          queue: q,
          validateParams: deps.validateParams,
          host: o.host,
          port: o.port,
          ...(token ? { token } : {}),
          ...(o.uploadDir ? { uploadDir: o.uploadDir } : {}),
          maxBodyBytes: o.maxBodyMb * 1024 * 1024,
          log: (l) => err(l),
        });
        const worker = runner
          ? new Worker<P>({ queue: q, runner, validateParams: deps.validateParams, log: (l) => err(l), ...(o.slot !== undefined ? { slot: o.slot } : {}) })
          : undefined;
        const loop = worker?.run();
        // A worker that cannot start (e.g. its slot is taken) takes the server down with it, loudly.
        const failed = loop?.then(() => undefined, (e: unknown) => e);
        err(`serving ${q.path} on ${srv.url}${token ? ' (token required)' : ''}${worker ? ' with a worker' : ''}`);
        deps.onListening?.(srv.url);
        const stop = stopSignal(deps.stopSignal, err);
        try {
          const workerError = await new Promise<unknown>((res) => {
            if (stop.signal.aborted) res(undefined);
            stop.signal.addEventListener('abort', () => res(undefined), { once: true });
            void failed?.then((e) => e !== undefined && res(e));
          });
          await worker?.stop('requeue');
          await srv.close();
          if (workerError !== undefined) throw workerError;
        } finally {
          stop.dispose();
        }
      });
    });

  return program;
}

/** An AbortSignal for "stop": the given one, or the first SIGINT/SIGTERM (a second one exits at once). */
function stopSignal(given: AbortSignal | undefined, err: (l: string) => void): { signal: AbortSignal; dispose(): void } {
  if (given) return { signal: given, dispose: () => {} };
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) {
      err(`${sig} again: exiting now (a running job is recovered by the next worker)`);
      process.exit(130);
    }
    err(`${sig}: stopping (the running job goes back to the queue); send it again to exit at once`);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ValidationError(`cannot read ${path}: ${(e as Error).message}`, '--params-file');
  }
}

function parseJsonObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ValidationError(`is not valid JSON: ${(e as Error).message}`, what);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ValidationError('must be a JSON object', what);
  return v as Record<string, unknown>;
}

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19));

/** A one-line summary of what the job is: its name, else its prompt, else its params. */
function summary(job: Job, width = 40): string {
  const prompt = typeof job.params.prompt === 'string' ? job.params.prompt : undefined;
  const s = (job.name ?? prompt ?? JSON.stringify(job.params)).replace(/\s+/g, ' ');
  return s.length > width ? `${s.slice(0, width - 1).trimEnd()}…` : s;
}

/** The status column: a running job whose worker died is shown as such. */
const statusText = (j: Job, abandoned: readonly number[]) => (j.status === 'running' && abandoned.includes(j.id) ? 'running (worker gone)' : j.status);

export function formatTable(jobs: readonly Job[], abandoned: readonly number[] = []): string {
  if (jobs.length === 0) return '(no jobs)';
  const rows = jobs.map((j) => [
    String(j.id),
    statusText(j, abandoned),
    `${j.attempts}/${j.maxAttempts}`,
    `${Math.round(j.progress.fraction * 100)}%`,
    iso(j.updatedAt),
    summary(j),
  ]);
  const head = ['ID', 'STATUS', 'TRIES', 'DONE', 'UPDATED (UTC)', 'JOB'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ')).join('\n');
}

export function formatJob(j: Job, abandoned = false): string {
  const p = j.progress;
  const lines = [
    `job ${j.id}${j.name ? ` (${j.name})` : ''}: ${statusText(j, abandoned ? [j.id] : [])}`,
    `  attempts  ${j.attempts}/${j.maxAttempts}   priority ${j.priority}`,
    `  progress  ${Math.round(p.fraction * 100)}%${p.section !== undefined ? ` section ${p.section}` : ''}${p.step !== undefined ? ` step ${p.step}` : ''}${p.message ? ` - ${p.message}` : ''}`,
    `  created   ${iso(j.createdAt)}   started ${iso(j.startedAt)}   finished ${iso(j.finishedAt)}`,
  ];
  if (j.owner) lines.push(`  worker    ${j.owner}`);
  if (j.error) lines.push(`  error     ${j.error}`);
  lines.push('  outputs' + (j.outputs.length ? '' : '   (none)'));
  j.outputs.forEach((o, i) => lines.push(`    [${i}] ${o.kind}${o.partial ? ' (partial)' : ''}: ${o.path}`));
  lines.push('  params');
  for (const l of JSON.stringify(j.params, null, 2).split('\n')) lines.push(`    ${l}`);
  return lines.join('\n');
}
