#!/usr/bin/env bash
# On the device (after tooling/device/prepare.sh + prepare-dit-parity.sh here):
#   run(command="bash tooling/device/dit-parity.sh",
#       carry=[".device/node.tar.xz", ".device/framepack_cuda.node", ".device/parity", ".device/ref"])
# The full-size 13B DiT against FramePack's PyTorch module on the same seeded bf16 weights and inputs, at 320x320 and
# 640x640: the reference first (dit_parity_ref.py: writes the weights, inputs, outputs and intermediates), then ours
# (dit-parity.mjs) in its own process, so each has the GPU to itself; the 25.7 GB of weights are deleted at the end.
# $OUT gets env.txt, ref.jsonl + ref.log, ours.jsonl + ours.log. Extra arguments go to both scripts (e.g. --sizes 320).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/dit-parity-out}; mkdir -p "$OUT"; export OUT
D=.device
PY=${PYTHON:-python3}
# the largest free disk of /tmp and the checkout (weights 25.7 GB + cases ~2 GB)
WORK=${PARITY_WORK:-$(for d in /tmp "$PWD/$D"; do echo "$(df -k --output=avail "$d" | tail -1) $d"; done | sort -n | tail -1 | cut -d' ' -f2)/dit-parity-work}
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; free -g; df -h "$WORK"; echo "work: $WORK"
  $PY -c 'import sys, torch, huggingface_hub, transformers, accelerate, safetensors; print(sys.version.split()[0], "torch", torch.__version__, "hub", huggingface_hub.__version__, "transformers", transformers.__version__, "accelerate", accelerate.__version__, "safetensors", safetensors.__version__)'
} 2>&1 | tee "$OUT/env.txt"

echo "=== reference (PyTorch)"
PYTHONUNBUFFERED=1 timeout ${REF_TIMEOUT:-330} $PY tooling/device/dit_parity_ref.py --ref $D/ref --work "$WORK" --out "$OUT" "$@" 2> >(tee "$OUT/ref.log" >&2)
ref_status=$?
echo "reference status: $ref_status"

ours_status=1
if ls "$WORK"/case-*.safetensors >/dev/null 2>&1; then
  echo "=== ours (dit-model, cuda bf16)"
  if [ -f $D/node.tar.xz ]; then mkdir -p /tmp/fpnode && tar -xJf $D/node.tar.xz -C /tmp/fpnode && export PATH=/tmp/fpnode:$PATH; fi
  [ -f $D/framepack_cuda.node ] && export FRAMEPACK_CUDA_ADDON=$PWD/$D/framepack_cuda.node
  timeout ${OURS_TIMEOUT:-200} node $D/parity/dit-parity.mjs --work "$WORK" "$@" 2> >(tee "$OUT/ours.log" >&2)
  ours_status=$?
fi
echo "=== summary"
cut -c1-700 "$OUT/ref.jsonl" "$OUT/ours.jsonl" 2>/dev/null | grep -v '"ours-intermediate"'
echo "reference status: $ref_status, ours status: $ours_status"
exit $(( ref_status != 0 ? ref_status : ours_status ))
