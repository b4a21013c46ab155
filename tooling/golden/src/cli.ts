import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDevice } from '@framepack/tensor-core';
import { formatResult, runGoldenDir } from './runner.js';

const usage = `usage: pnpm golden <dir> [--only kind|case,...] [--device cpu|cuda] [--dtype f32|bf16|f16] [--json] [--verbose]
Runs every case folder (case.json + tensors.safetensors) in <dir> and prints one line per case.
Exit 0 only if every selected case passes ('unsupported' kinds count as failures).`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    only: { type: 'string' },
    device: { type: 'string', default: 'cpu' },
    dtype: { type: 'string' },
    json: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help || positionals.length !== 1) {
  console.log(usage);
  process.exit(values.help ? 0 : 2);
}
const dir = positionals[0];
if (!existsSync(dir)) {
  console.error(`golden: no such folder '${dir}'`);
  process.exit(2);
}
const results = await runGoldenDir(dir, {
  only: values.only?.split(',').map((s) => s.trim()).filter(Boolean),
  device: parseDevice(values.device!),
  dtype: values.dtype as never,
  onResult: (r) => {
    if (values.json) console.log(JSON.stringify(r));
    else {
      console.log(formatResult(r));
      if (values.verbose && r.details) for (const [k, v] of Object.entries(r.details)) console.log(`    ${k}: ${v.toExponential(3)}`);
      if (values.verbose && r.error) console.log(r.error);
    }
  },
});
const failed = results.filter((r) => r.status !== 'pass').length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 && results.length > 0 ? 0 : 1);
