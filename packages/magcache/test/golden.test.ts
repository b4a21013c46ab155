import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// Imported by path: a workspace dependency on @framepack/golden-runner would make a cycle (it depends on us).
import { defaultGoldenDir, formatResult, runGoldenDir } from '../../../tooling/golden/src/index.js';

describe.skipIf(!existsSync(defaultGoldenDir()))('golden step-skip sampling', () => {
  it.each(['teacache', 'magcache'])('every %s case passes (outputs and exact skip decisions)', async (kind) => {
    const results = await runGoldenDir(defaultGoldenDir(), { only: [kind] });
    for (const r of results) console.log(formatResult(r), `${r.seconds.toFixed(1)} s`);
    expect(results.length).toBeGreaterThan(0);
    for (const r of results) expect(r.status, formatResult(r)).toBe('pass');
  });
});
