#!/usr/bin/env bash
# The test command (README, .ci/run): set up, then run the whole vitest suite and close with
# a plain "N passed, N failed, N skipped" line.
set -uo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh" || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
source "$here/env.sh"
cd "$FRAMEPACK_ROOT"
mkdir -p .tooling
rm -f .tooling/vitest-report.json
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=.tooling/vitest-report.json "$@"
status=$?
node -e '
const fs = require("fs");
let r; try { r = JSON.parse(fs.readFileSync(".tooling/vitest-report.json", "utf8")); } catch { console.log("0 passed, 1 failed"); process.exit(0); }
const failed = r.numFailedTests + (r.numFailedTestSuites || 0) - (r.numFailedTestSuites ? 0 : 0);
console.log(`${r.numPassedTests} passed, ${r.numFailedTests + r.numRuntimeErrorTestSuites || r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
'
exit $status
