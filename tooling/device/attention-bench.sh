#!/usr/bin/env bash
# On the device, the attention kernels alone plus the resident 13B forward, in one call (the quick loop while working
# on attention; gpu-test.sh is the whole check). Needs a folder with node.tar.xz, framepack_cuda.node and
# bundle/{gpu-check,dit-bench}.mjs (tooling/device/prepare.sh + prepare-dit-bench.sh make .device/):
#   run(command="bash tooling/device/attention-bench.sh .device", carry=[".device"])
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
D=${1:-.device}
OUT=${OUT:-/tmp/attention-bench-out}; mkdir -p "$OUT"; export OUT
mkdir -p /tmp/fpnode && tar -xJf $D/node.tar.xz -C /tmp/fpnode && export PATH=/tmp/fpnode:$PATH
export FRAMEPACK_CUDA_ADDON=$PWD/$D/framepack_cuda.node
status=0
echo "=== attention checks + rates"
mkdir -p "$OUT/attn" && OUT="$OUT/attn" timeout ${ATTN_TIMEOUT:-150} node $D/bundle/gpu-check.mjs --attention-only 2>&1 | cut -c1-400 | tee "$OUT/attention.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
if [ $status = 0 ] && [ -z "${SKIP_DIT:-}" ]; then
  echo "=== 13B forward, resident"
  skip=--skip-streamed; [ -n "${DIT_STREAMED:-}" ] && skip=  # DIT_STREAMED=1: also the 8 GiB streamed forward
  mkdir -p "$OUT/dit" && OUT="$OUT/dit" timeout ${DIT_TIMEOUT:-240} node $D/bundle/dit-bench.mjs $skip ${DIT_ARGS:-} --sizes ${DIT_SIZES:-640,320} 2>&1 | cut -c1-600 | tee "$OUT/dit.log"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
fi
echo "attention-bench status: $status"
exit $status
