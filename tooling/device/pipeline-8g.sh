#!/usr/bin/env bash
# On the device (after tooling/device/prepare-pipeline.sh here), one call:
#   run(command="bash tooling/device/pipeline-8g.sh", carry=[".device/pipeline", ".device/node.tar.xz"], timeout_s=540)
# 1. writes the full-size random-weights family (apps/generator/src/full-family.ts, ~42 GB) into an HF home;
# 2. runs the real CLI on it: one section (window 9) of 25 steps at 640x640, --device cuda --vram-budget 8, under
#    /usr/bin/time -v (host max RSS) with an nvidia-smi sampler (driver peak); the CLI's --json 'done' line has the
#    per-stage times and allocator peaks, its 'memory-plan' line the plan;
# 3. when the CLI has --stream-weights, the same job with int8 and fp8 streamed weights, and the rel-L2 of their
#    latents against the bf16 run (skipped when time runs short: PIPELINE_DEADLINE seconds from the start).
# Results: $OUT/summary.jsonl (one line per run), family.jsonl, <run>.jsonl/.stderr, env.txt.
# PIPELINE_8BIT: the 8-bit formats to run after bf16 (default "int8 fp8"; "" skips them). Host quantization runs on
# all cores in the addon (a 13B dual block's largest matrix: tooling/device/results quant-bench lines).
# PIPELINE_NODE_ARGS: extra node flags for the CLI runs (e.g. "--cpu-prof --cpu-prof-dir=$OUT/prof").
# Knobs (CPU rehearsal): PIPELINE_SCALE=small PIPELINE_DEVICE=cpu PIPELINE_RES=128 PIPELINE_STEPS=2 (no budget on the CPU).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
T0=$(date +%s)
OUT=${OUT:-/tmp/pipeline-8g-out}; mkdir -p "$OUT"
P=.device/pipeline
SCALE=${PIPELINE_SCALE:-full} DEVICE=${PIPELINE_DEVICE:-cuda} RES=${PIPELINE_RES:-640} STEPS=${PIPELINE_STEPS:-25}
BUDGET=${PIPELINE_BUDGET:-8} DEADLINE=${PIPELINE_DEADLINE:-300} RUN_TIMEOUT=${PIPELINE_RUN_TIMEOUT:-400}
LIMIT=${PIPELINE_LIMIT:-515}  # seconds from the start by which every run has ended (the call's limit is 540)
{ nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,pcie.link.gen.current,pcie.link.width.current --format=csv 2>/dev/null; nproc; free -g; df -h /tmp /dev/shm . 2>/dev/null; } > "$OUT/env.txt"
cat "$OUT/env.txt"
if [ -f .device/node.tar.xz ] && [ "$DEVICE" = cuda ]; then
  mkdir -p /tmp/fpnode && tar -xJf .device/node.tar.xz -C /tmp/fpnode && export PATH=/tmp/fpnode:$PATH
fi
[ -f $P/framepack_cuda.node ] && export FRAMEPACK_CUDA_ADDON=$PWD/$P/framepack_cuda.node
[ "$DEVICE" = cuda ] && source tooling/device/find-cudnn.sh
# the family needs ~43 GB: the first of these with room (tmpfs first: writing is then memory-speed; 128 GiB RAM
# holds it beside the ~24 GiB of pinned weights)
need_kb=46000000
[ "$SCALE" = full ] || need_kb=200000
HF=${PIPELINE_HF_HOME:-}
if [ -z "$HF" ]; then
  for d in /dev/shm /tmp "$PWD/.device"; do
    avail=$(df -Pk "$d" 2>/dev/null | awk 'NR==2 {print $4}')
    if [ -n "$avail" ] && [ "$avail" -gt "$need_kb" ]; then HF=$d/fp-family-hf; break; fi
  done
fi
[ -n "$HF" ] || { echo "no filesystem with $need_kb kB free for the family"; exit 1; }
echo "family -> $HF"
/usr/bin/time -v node $P/make-family.mjs --hf-home "$HF" --scale "$SCALE" --llama-tokenizer $P/llama-tokenizer > "$OUT/family.jsonl" 2> "$OUT/family.stderr"
rc=$?
cat "$OUT/family.jsonl"; grep -E "Maximum resident|Elapsed" "$OUT/family.stderr"
[ $rc -eq 0 ] || { tail -20 "$OUT/family.stderr"; exit 1; }
df -h "$HF" | tail -1

# the host quantizer's rate on this machine's cores (one 3072 x 12288 bf16 matrix, 1 thread and all)
if [ -x $P/quantize-bench ]; then
  for t in 1 0; do $P/quantize-bench --bench 3072 12288 $t; done | tee "$OUT/quant-bench.jsonl"
fi

export HF_HOME=$HF HF_HUB_OFFLINE=1 FRAMEPACK_DEBUG=1
job=(generate --image $P/input-640.png --prompt "a paper boat drifts across a pond, gentle ripples, soft morning light"
  --seconds 1.2 --window 9 --steps "$STEPS" --resolution "$RES" --device "$DEVICE" --json --verbose --no-mp4)
[ "$DEVICE" = cuda ] && job+=(--vram-budget "$BUDGET")
runs=()
run() { # name, extra args...
  local name=$1; shift
  local smi=""
  if command -v nvidia-smi > /dev/null && [ "$DEVICE" = cuda ]; then
    ( while :; do echo "$(date +%s%3N) $(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0)"; sleep 0.05; done ) > "$OUT/$name.smi.log" 2>/dev/null &
    smi=$!
  fi
  echo "=== $name ($(( $(date +%s) - T0 )) s in)"
  # every run ends inside the call's limit; stdout lines get a ms timestamp (how far a stopped run got, and when)
  local left=$(( LIMIT - ($(date +%s) - T0) ))
  ( timeout "$(( left < RUN_TIMEOUT ? left : RUN_TIMEOUT ))" /usr/bin/time -v node --disable-warning=ExperimentalWarning ${PIPELINE_NODE_ARGS:-} $P/framepack.mjs "${job[@]}" \
      --png-frames "/tmp/fp-frames-$name" --save-latents "$OUT/$name.latents.safetensors" "$@" 2> "$OUT/$name.stderr"
    echo $? > "$OUT/$name.rc" ) | while IFS= read -r l; do printf '%s %s\n' "$(date +%s%3N)" "$l"; done > "$OUT/$name.jsonl"
  [ -n "$smi" ] && kill $smi 2>/dev/null
  # the sidecar: timings and peaks of the stages that finished, also when the job failed
  [ -f "/tmp/fp-frames-$name/job.json" ] && cp "/tmp/fp-frames-$name/job.json" "$OUT/$name.sidecar.json"
  runs+=("$name")
  grep -v '"event":"progress"' "$OUT/$name.jsonl" | sed 's/"files":\[[^]]*\],//' | cut -c1-2500
  grep -E "^framepack: error|Maximum resident|Elapsed" "$OUT/$name.stderr"
}
run bf16
if [ "$DEVICE" != cuda ]; then
  echo "8-bit runs skipped: --stream-weights needs --vram-budget (CUDA)"
elif node $P/framepack.mjs generate --help 2>/dev/null | grep -q -- '--stream-weights'; then
  for q in ${PIPELINE_8BIT-int8 fp8}; do
    if [ $(( $(date +%s) - T0 )) -lt "$DEADLINE" ]; then run "$q" --stream-weights "$q"
    else echo "skipping the $q run: past the ${DEADLINE} s deadline"; fi
  done
else
  echo "the CLI has no --stream-weights yet: 8-bit runs skipped"
fi
echo "=== summary ($(( $(date +%s) - T0 )) s)"
node $P/pipeline-tools.mjs summary "$OUT" "${runs[@]}"
# what comes back is at most 8 files: merge the per-run logs (the latents only matter for the comparison above)
rm -f "$OUT"/*.latents.safetensors
for r in "${runs[@]}"; do
  grep -v '"event":"progress"' "$OUT/$r.jsonl" | sed "s/^/$r /" >> "$OUT/events.txt"
  sed "s/^/$r /" "$OUT/$r.stderr" >> "$OUT/stderr.txt"
  [ -f "$OUT/$r.smi.log" ] && sed "s/^/$r /" "$OUT/$r.smi.log" >> "$OUT/smi.txt"
  [ -f "$OUT/$r.sidecar.json" ] && node -e 'process.stdout.write(process.argv[1] + " " + JSON.stringify(JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"))) + "\n")' "$r" "$OUT/$r.sidecar.json" >> "$OUT/events.txt"
  rm -f "$OUT/$r.jsonl" "$OUT/$r.stderr" "$OUT/$r.smi.log" "$OUT/$r.rc" "$OUT/$r.sidecar.json"
done
ls -la "$OUT"
exit 0
