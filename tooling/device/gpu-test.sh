#!/usr/bin/env bash
# The whole GPU check in one device call (prepare first, here: bash tooling/device/prepare.sh):
#   run(command="bash tooling/device/gpu-test.sh", carry=[".device"])
# 1. unpacks Node 22; rebuilds the addon on the device if it was not carried, and checks our cuBLASLt
#    declarations against the device's real cublasLt.h; 2. every CUDA op vs the CPU backend + flash vs generic
#    attention + benchmarks (bench.jsonl); 3. the golden cases with --device cuda (bf16) and --device cuda --dtype f32;
#    4. PyTorch reference rates for the same shapes. Logs and JSON lines go to $OUT.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/gpu-test-out}; mkdir -p "$OUT"; export OUT
D=.device
step() { printf '\n=== %s\n' "$*"; }
status=0

step "environment"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/env.txt"
nvcc --version | tail -1 | tee -a "$OUT/env.txt"

mkdir -p /tmp/fpnode && tar -xJf $D/node.tar.xz -C /tmp/fpnode && export PATH=/tmp/fpnode:$PATH
node -v

step "addon"
mkdir -p packages/tensor-core/node_modules
cp -r $D/napi/* packages/tensor-core/node_modules/ 2>/dev/null
if [ -f $D/framepack_cuda.node ] && [ -z "${FRAMEPACK_REBUILD:-}" ]; then
  export FRAMEPACK_CUDA_ADDON=$PWD/$D/framepack_cuda.node
  # compile only the ABI check against the real header (seconds)
  nvcc -std=c++17 -I packages/tensor-core/native/src -c packages/tensor-core/native/src/cublaslt_abi_check.cpp -o /tmp/abi.o \
    && echo "cuBLASLt ABI check: our declarations match $(ls /usr/local/cuda/include/cublasLt.h)" || { echo "cuBLASLt ABI check FAILED"; status=1; }
else
  (cd packages/tensor-core && time node native/build.mjs) || status=1
  export FRAMEPACK_CUDA_ADDON=$PWD/packages/tensor-core/native/build/framepack_cuda.node
fi

step "cuDNN (conv3d's fast path, loaded with dlopen: find the pip wheel's library and header)"
source tooling/device/find-cudnn.sh
inc=$CUDNN_INCLUDE
if [ -f "$inc/cudnn.h" ]; then
  nvcc -std=c++17 -I"$inc" -I packages/tensor-core/native/src -c packages/tensor-core/native/src/cudnn_abi_check.cpp -o /tmp/cudnn_abi.o \
    && echo "cuDNN ABI check: our declarations match $inc/cudnn.h" || { echo "cuDNN ABI check FAILED"; status=1; }
fi

step "packages/tensor-core/test/cuda.test.ts (through a vitest shim)"
timeout 120 node $D/bundle/cuda-test.mjs 2>&1 | tee "$OUT/cuda-test.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

step "op checks + benchmarks"
timeout ${CHECK_TIMEOUT:-240} node $D/bundle/gpu-check.mjs 2>&1 | tee "$OUT/gpu-check.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

if [ -d $D/golden ] && [ -n "$(ls $D/golden)" ]; then
  step "golden cases --device cuda (bf16 storage)"
  (cd $D/bundle/golden && timeout ${GOLDEN_TIMEOUT:-150} node cli.mjs ../../golden --device cuda ${GOLDEN_ONLY:+--only $GOLDEN_ONLY} 2>&1) | tee "$OUT/golden-cuda-bf16.log"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
  step "golden cases --device cuda --dtype f32"
  (cd $D/bundle/golden && timeout ${GOLDEN_TIMEOUT:-150} node cli.mjs ../../golden --device cuda --dtype f32 ${GOLDEN_ONLY:+--only $GOLDEN_ONLY} 2>&1) | tee "$OUT/golden-cuda-f32.log"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
else
  echo "no golden cases carried (.device/golden is empty)"
fi

if [ -z "${SKIP_TORCH:-}" ] && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  step "PyTorch reference rates"
  timeout 120 python3 tooling/device/torch_bench.py 2>&1 | tee "$OUT/torch.jsonl"
fi

step "summary"
grep -h '"kind":"\(attention\|attention-masked\|attention-v1\|attention-v2\|attention-wgmma\|attention-wgmma-vs-generic\|attention-flash-vs-generic\|gemm\|op-checks\|conv3d\|elementwise\)"' "$OUT/bench.jsonl" 2>/dev/null | cut -c1-220
grep -h 'passed, ' "$OUT"/cuda-test.log "$OUT"/golden-*.log 2>/dev/null
echo "gpu-test status: $status"
exit $status
