import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '..', '..', '..');
export const fixture = (name: string) => join(here, 'fixtures', name);

/** Spawns a TypeScript fixture the way the CLI runs: node --conditions=source --import tsx. */
export function spawnFixture(name: string, args: string[], env: Record<string, string> = {}): ChildProcess & { stdoutText(): string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, ['--conditions=source', '--disable-warning=ExperimentalWarning', '--import', 'tsx', fixture(name), ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on('close', (code, signal) => {
      if (code !== 0 && signal === null && err) process.stderr.write(`[${name} ${child.pid}] ${err}\n`);
      res({ code, signal });
    }),
  );
  return Object.assign(child, { stdoutText: () => out, exited });
}
