#!/usr/bin/env bash
# Run HERE (not on the device) before `run`: builds the CUDA addon, bundles the GPU check and the golden runner
# (with every golden kind) into plain JS, packs Node 22 and the golden cases into .device/ (ignored by git),
# so one device call can carry everything:  carry: [".device"]   command: bash tooling/device/gpu-test.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
cd "$FRAMEPACK_ROOT"
D=.device
GOLDEN_SRC=${FRAMEPACK_GOLDEN_DIR:-$FRAMEPACK_ROOT/../shared/golden}
mkdir -p $D
log() { printf '[prepare] %s\n' "$*" >&2; }

log "building the CUDA addon"
(cd packages/tensor-core && node native/build.mjs)
cp packages/tensor-core/native/build/framepack_cuda.node $D/framepack_cuda.node
# sources + npm headers so the device can rebuild and check cuBLASLt's ABI against its real header
rm -rf $D/napi && mkdir -p $D/napi
cp -rL packages/tensor-core/node_modules/node-addon-api packages/tensor-core/node_modules/node-api-headers $D/napi/

log "bundling the GPU check and the golden runner"
rm -rf $D/bundle && mkdir -p $D/bundle/golden
pnpm exec esbuild tooling/device/gpu-check.ts --bundle --platform=node --format=esm --target=node22 \
  --conditions=source --outfile=$D/bundle/gpu-check.mjs --log-level=warning
pnpm exec esbuild tooling/device/run-cuda-test.ts --bundle --platform=node --format=esm --target=node22 \
  --conditions=source --alias:vitest=./tooling/device/vitest-shim.ts --outfile=$D/bundle/cuda-test.mjs --log-level=warning
kinds=$(ls tooling/golden/src/kinds/*.ts 2>/dev/null || true)
pnpm exec esbuild tooling/golden/src/cli.ts $kinds --bundle --splitting --platform=node --format=esm --target=node22 \
  --conditions=source --outbase=tooling/golden/src --outdir=$D/bundle/golden --out-extension:.js=.mjs \
  --external:'*.node' --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
# the runner discovers kinds/*.ts|js: rename .mjs -> .js so its filter sees them (chunks keep .mjs)
for f in $D/bundle/golden/kinds/*.mjs; do [ -e "$f" ] && mv "$f" "${f%.mjs}.js"; done
echo '{"type":"module"}' > $D/bundle/golden/package.json
echo '{"type":"module"}' > $D/bundle/package.json

if [ ! -f $D/node.tar.xz ] || [ .tooling/node -nt $D/node.tar.xz ]; then
  log "packing node $(node -v)"
  tar -C "$(dirname "$(command -v node)")" -cf - node | xz -T2 -6 > $D/node.tar.xz
fi
log "copying golden cases from $GOLDEN_SRC"
rm -rf $D/golden && mkdir -p $D/golden
if [ -d "$GOLDEN_SRC" ]; then
  for c in "$GOLDEN_SRC"/*/; do
    n=$(basename "$c")
    [ -f "$c/case.json" ] && cp -r "$c" $D/golden/$n
  done
fi
du -sh $D $D/* >&2
