#!/usr/bin/env bash
# Run HERE after tooling/device/prepare.sh: bundles the framepack CLI into .device/bundle/framepack.mjs (plain JS, no
# node_modules needed) and copies the example image, for tooling/device/generator-e2e.sh on the device.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
cd "$FRAMEPACK_ROOT"
D=.device
mkdir -p $D/bundle
pnpm exec esbuild apps/generator/src/cli.ts --bundle --platform=node --format=esm --target=node22 --conditions=source \
  --outfile=$D/bundle/framepack.mjs --external:'*.node' --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
cp apps/generator/assets/example.png $D/example.png
du -sh $D/bundle/framepack.mjs >&2
