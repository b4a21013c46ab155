#!/usr/bin/env bash
# Run HERE before `run` (after tooling/device/prepare.sh has put Node 22 and the CUDA addon in .device/): bundles
# tooling/device/dit-bench.ts into .device/bundle/dit-bench.mjs (plain JS, no node_modules needed on the device):
#   run(command="bash tooling/device/dit-bench.sh", carry=[".device"])
# Check it here first on the CPU backend:  node .device/bundle/dit-bench.mjs --device cpu --tiny --out /tmp/dit-bench
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
cd "$FRAMEPACK_ROOT"
D=.device
mkdir -p $D/bundle
[ -f $D/bundle/package.json ] || echo '{"type":"module"}' > $D/bundle/package.json
pnpm exec esbuild tooling/device/dit-bench.ts --bundle --platform=node --format=esm --target=node22 --conditions=source \
  --outfile=$D/bundle/dit-bench.mjs --external:'*.node' --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
for f in node.tar.xz framepack_cuda.node; do [ -f $D/$f ] || echo "note: $D/$f is missing: run tooling/device/prepare.sh first" >&2; done
du -sh $D/bundle/dit-bench.mjs >&2
