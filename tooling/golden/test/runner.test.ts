import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareOutputs, defaultGoldenDir, formatResult, relL2, runGoldenDir, toleranceFor } from '../src/index.js';

const root = resolve(__dirname, '../../..');

describe('compare', () => {
  it('computes rel-L2 and lets NaN fail', () => {
    expect(relL2([3, 4], [3, 4])).toBe(0);
    expect(relL2([3, 5], [3, 4])).toBeCloseTo(1 / 5);
    const r = compareOutputs({ a: { ours: [NaN], ref: [1] } }, { metric: 'max_rel_l2', limit: 1 });
    expect(r.pass).toBe(false);
  });
  it('widens max_rel_l2 only for half-precision storage', () => {
    expect(toleranceFor({ max_rel_l2: 1e-4 }, 'f32').limit).toBe(1e-4);
    expect(toleranceFor({ max_rel_l2: 1e-4 }, 'bf16').limit).toBe(2e-2);
    expect(toleranceFor({ max_abs: 1e-6 }, 'bf16').limit).toBe(1e-6);
  });
});

describe('runner', () => {
  it('reports unknown kinds as unsupported and broken cases as failures', async () => {
    const d = mkdtempSync(join(tmpdir(), 'golden-'));
    mkdirSync(join(d, 'a-case'));
    writeFileSync(join(d, 'a-case', 'case.json'), JSON.stringify({ kind: 'no-such-kind' }));
    mkdirSync(join(d, 'b-broken'));
    writeFileSync(join(d, 'b-broken', 'case.json'), '{not json');
    mkdirSync(join(d, 'not-a-case'));
    const rs = await runGoldenDir(d);
    expect(rs.map((r) => [r.case, r.status])).toEqual([
      ['a-case', 'unsupported'],
      ['b-broken', 'FAIL'],
    ]);
    expect(formatResult(rs[0])).toBe('a-case no-such-kind unsupported');
  });

  it.skipIf(!existsSync(defaultGoldenDir()))('the CLI runs a copied folder of cases and exits 0 only when all pass', () => {
    // a copy under another name proves nothing is keyed to our folder names
    const d = mkdtempSync(join(tmpdir(), 'golden-cli-'));
    cpSync(join(defaultGoldenDir(), 'flux-sigmas'), join(d, 'renamed-sigmas'), { recursive: true });
    const out = execFileSync('node', ['--conditions=source', '--import', 'tsx', 'tooling/golden/src/cli.ts', d], { cwd: root, encoding: 'utf8' });
    expect(out).toMatch(/^renamed-sigmas sigmas pass max_/m);
    expect(out).toMatch(/^1 passed, 0 failed$/m);
    writeFileSync(join(d, 'x.json'), '');
    mkdirSync(join(d, 'zz-unknown'));
    writeFileSync(join(d, 'zz-unknown', 'case.json'), JSON.stringify({ kind: 'nope' }));
    let code = 0;
    try {
      execFileSync('node', ['--conditions=source', '--import', 'tsx', 'tooling/golden/src/cli.ts', d], { cwd: root, encoding: 'utf8' });
    } catch (e) {
      code = (e as { status: number }).status;
    }
    expect(code).toBe(1);
  });
});
