#!/usr/bin/env bash
# The test command (README, .ci/run): set up, then run the whole vitest suite and close with
# a plain "N passed, N failed" line (the skipped count on the line before).
set -uo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh" || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
source "$here/env.sh"
cd "$FRAMEPACK_ROOT"
mkdir -p .tooling
rm -f .tooling/vitest-report.json
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=.tooling/vitest-report.json "$@"
status=$?
node tooling/summarize-tests.mjs .tooling/vitest-report.json
exit $status
