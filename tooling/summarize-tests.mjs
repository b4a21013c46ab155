// Prints the skipped count, then the plain closing line "N passed, N failed" (alone, last) from vitest's JSON report.
// A test file that failed to load (no test ran in it) counts as one failure.
import { readFileSync } from 'node:fs';

let report;
try {
  report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
} catch {
  console.log('0 passed, 1 failed');
  process.exit(0);
}
let passed = 0, failed = 0, skipped = 0;
for (const file of report.testResults ?? []) {
  const tests = file.assertionResults ?? [];
  for (const t of tests) {
    if (t.status === 'passed') passed++;
    else if (t.status === 'failed') failed++;
    else skipped++;
  }
  if (file.status === 'failed' && !tests.some((t) => t.status === 'failed')) failed++;
}
console.log(`${skipped} skipped (GPU tests skip where no GPU exists)`);
console.log(`${passed} passed, ${failed} failed`);
