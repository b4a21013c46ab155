// The CUDA caching allocator's logic (native/src/allocator.cpp: best fit, splitting, merging, the budget that releases
// only what a request needs) compiled with the host C++ compiler against a fake driver and run on the CPU.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const cxx = ['g++', 'c++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);

describe.skipIf(!cxx)('native caching allocator (host compiler, fake driver)', () => {
  it('reuses, splits and merges blocks, and releases only what a budgeted request needs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fp-alloc-'));
    try {
      const exe = join(dir, 'allocator_test');
      const build = spawnSync(cxx!, ['-std=c++17', '-O1', '-Wall', '-Werror', '-o', exe, join(here, 'native/allocator_test.cpp'), join(here, '../native/src/allocator.cpp')], { encoding: 'utf8' });
      expect(build.stderr).toBe('');
      expect(build.status).toBe(0);
      const run = spawnSync(exe, [], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(run.stdout).toContain('allocator: all checks passed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
