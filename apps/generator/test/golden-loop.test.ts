import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// by path: a dependency would make a cycle (the runner depends on us)
import { defaultGoldenDir, formatResult, runGoldenDir } from '../../../tooling/golden/src/index.js';

describe.skipIf(!existsSync(defaultGoldenDir()))('golden: the FramePack section loop', () => {
  it('original, original-6sec and f1 match the reference worker', async () => {
    const results = await runGoldenDir(defaultGoldenDir(), { only: ['framepack-loop'] });
    expect(results.length).toBeGreaterThanOrEqual(3);
    for (const r of results) expect(r.status, formatResult(r)).toBe('pass');
  }, 300_000);
});
