import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultGoldenDir, formatResult, runGoldenDir } from '../../../tooling/golden/src/index.js'; // by path: a dependency would make a cycle (the runner depends on us)
import { describe, expect, it } from 'vitest';

const dir = defaultGoldenDir();
const have = existsSync(join(dir, 'lora-diffusers', 'case.json')) || existsSync(join(dir, 'lora-kohya', 'case.json'));

describe.skipIf(!have)('golden: lora', () => {
  it('every lora case passes (merged DiT forward vs the reference, unmerge back to the base)', async () => {
    const results = await runGoldenDir(dir, { only: ['lora'] });
    expect(results.length).toBeGreaterThan(0);
    for (const r of results) expect(r.status, formatResult(r)).toBe('pass');
  });
});
