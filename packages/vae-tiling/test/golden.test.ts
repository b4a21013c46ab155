import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// Imported by path: a workspace dependency on @framepack/golden-runner would make a cycle (it depends on us).
import { defaultGoldenDir, formatResult, runGoldenDir } from '../../../tooling/golden/src/index.js';

describe.skipIf(!existsSync(defaultGoldenDir()))('golden cases', () => {
  it('every vae case passes (decode, per-frame decode, encode, every tiling, preview)', async () => {
    const results = await runGoldenDir(defaultGoldenDir(), { only: ['vae'] });
    expect(results.length).toBeGreaterThan(0);
    for (const r of results) {
      expect(r.status, formatResult(r)).toBe('pass');
      // every out.* tensor of the case was compared
      const json = JSON.parse(readFileSync(join(defaultGoldenDir(), r.case, 'case.json'), 'utf8'));
      const outs = Object.keys(json.tensors).filter((n) => n.startsWith('out.'));
      expect(Object.keys(r.details ?? {}).sort()).toEqual(outs.sort());
    }
  });
});
