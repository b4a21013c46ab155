#!/usr/bin/env bash
# Run HERE before `run` (after tooling/device/prepare.sh has put Node 22 and the CUDA addon in .device/): bundles
# tooling/device/dit-parity.ts into .device/parity/dit-parity.mjs (plain JS, no node_modules needed on the device)
# and checks that the fetched reference is in .device/ref (framepack/diffusers_helper, diffusers/diffusers: see
# dit-parity.sh). One device call then runs both sides:
#   run(command="bash tooling/device/dit-parity.sh",
#       carry=[".device/node.tar.xz", ".device/framepack_cuda.node", ".device/parity", ".device/ref"])
# Check it here first on the CPU, toy config (needs a python3 with torch, safetensors, accelerate, transformers,
# huggingface_hub, einops):
#   python3 tooling/device/dit_parity_ref.py --tiny --device cpu --sizes 64,128 --work /tmp/p --out /tmp/p
#   node .device/parity/dit-parity.mjs --device cpu --sizes 64,128 --work /tmp/p --out /tmp/p
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh"
cd "$FRAMEPACK_ROOT"
D=.device
mkdir -p $D/parity
echo '{"type":"module"}' > $D/parity/package.json
pnpm exec esbuild tooling/device/dit-parity.ts --bundle --platform=node --format=esm --target=node22 --conditions=source \
  --outfile=$D/parity/dit-parity.mjs --external:'*.node' --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
for f in node.tar.xz framepack_cuda.node; do [ -f $D/$f ] || echo "note: $D/$f is missing: run tooling/device/prepare.sh first" >&2; done
for f in ref/framepack/diffusers_helper/models/hunyuan_video_packed.py ref/diffusers/diffusers/__init__.py; do
  [ -f $D/$f ] || echo "note: $D/$f is missing: fetch lllyasviel/FramePack and huggingface/diffusers v0.33.1 into $D/ref" >&2
done
du -sh $D/parity $D/ref $D/node.tar.xz $D/framepack_cuda.node >&2
