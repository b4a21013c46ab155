#!/usr/bin/env bash
# On the device (after tooling/device/prepare.sh + prepare-dit-bench.sh here):
#   run(command="bash tooling/device/dit-bench.sh", carry=[".device"])
# The full-size 13B DiT forward at 320x320 and 640x640: resident, then streamed under an 8 GiB budget (see
# dit-bench.ts). An nvidia-smi sampler logs device memory for the driver's view of the peaks. JSON lines and logs
# go to $OUT (bench.jsonl, dit-bench.log, smi.log, env.txt). Extra arguments go to dit-bench.mjs.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/dit-bench-out}; mkdir -p "$OUT"; export OUT
D=.device
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm,pcie.link.gen.current,pcie.link.width.current --format=csv | tee "$OUT/env.txt"
free -g | tee -a "$OUT/env.txt"
mkdir -p /tmp/fpnode && tar -xJf $D/node.tar.xz -C /tmp/fpnode && export PATH=/tmp/fpnode:$PATH
export FRAMEPACK_CUDA_ADDON=$PWD/$D/framepack_cuda.node
# driver view of device memory, ~20 samples/s: "<epoch ms> <MiB used>"
( while :; do echo "$(date +%s%3N) $(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0)"; sleep 0.03; done ) > "$OUT/smi.log" 2>/dev/null &
SMI=$!
SMI_LOG="$OUT/smi.log" timeout ${BENCH_TIMEOUT:-220} node $D/bundle/dit-bench.mjs "$@" 2> >(tee "$OUT/dit-bench.log" >&2)
status=$?
kill $SMI 2>/dev/null
sleep 0.5
echo "=== summary"
cut -c1-600 "$OUT/bench.jsonl"
echo "dit-bench status: $status"
exit $status
