#!/usr/bin/env bash
# On the device (after prepare.sh + prepare-generator.sh here):
#   run(command="bash tooling/device/generator-e2e.sh", carry=[".device"])
# The framepack CLI end to end on the GPU with the tiny model family: resident, and under a VRAM budget (streamed
# weights), each compared with the CPU run of the same job; the sidecars and frames go to $OUT.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/generator-e2e-out}; mkdir -p "$OUT"
D=.device
mkdir -p /tmp/fpnode && tar -xJf $D/node.tar.xz -C /tmp/fpnode && export PATH=/tmp/fpnode:$PATH
export FRAMEPACK_CUDA_ADDON=$PWD/$D/framepack_cuda.node FRAMEPACK_CACHE=/tmp/fpcache
status=0
job=(generate --tiny --image $D/example.png --prompt "a paper boat drifts across a pond" --seconds 2 --resolution 128 --steps 4 --no-mp4 --json)
run() { # name, extra args...
  local name=$1; shift
  /usr/bin/time -v node --disable-warning=ExperimentalWarning $D/bundle/framepack.mjs "${job[@]}" --png-frames "$OUT/$name" "$@" \
    > "$OUT/$name.jsonl" 2> "$OUT/$name.stderr" || { echo "$name FAILED"; tail -5 "$OUT/$name.stderr"; status=1; }
  tail -1 "$OUT/$name.jsonl" | cut -c1-400
  grep -h "Maximum resident set size" "$OUT/$name.stderr"
}
run cpu --device cpu
run cuda --device cuda
run cuda-budget --device cuda --vram-budget 1 --verbose
python3 - "$OUT" <<'PY' || status=1
import sys, os, json, zlib, struct
import numpy as np
out = sys.argv[1]
def read_png(path):  # 8-bit RGB PNGs as pngjs writes them (no PIL on the device)
    b = open(path, 'rb').read(); i = 8; idat = b''
    while i < len(b):
        n, t = struct.unpack('>I4s', b[i:i + 8]); data = b[i + 8:i + 8 + n]; i += 12 + n
        if t == b'IHDR': w, h = struct.unpack('>II', data[:8])
        elif t == b'IDAT': idat += data
    raw = zlib.decompress(idat); stride = w * 3; img = np.zeros((h, stride), np.int32); prev = np.zeros(stride, np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]; row = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32); cur = np.zeros(stride, np.int32)
        for x in range(stride):
            a = cur[x - 3] if x >= 3 else 0; up = prev[x]; c = prev[x - 3] if x >= 3 else 0
            if f == 0: p = 0
            elif f == 1: p = a
            elif f == 2: p = up
            elif f == 3: p = (a + up) // 2
            else:
                pa, pb, pc = abs(up - c), abs(a - c), abs(a + up - 2 * c); p = a if pa <= pb and pa <= pc else (up if pb <= pc else c)
            cur[x] = (row[x] + p) & 255
        img[y] = cur; prev = cur
    return img.reshape(h, w, 3).astype(np.float64)
def frames(name):
    d = os.path.join(out, name)
    fs = sorted(f for f in os.listdir(d) if f.endswith('.png'))
    return np.stack([read_png(os.path.join(d, f)) for f in fs])
cpu = frames('cpu')
for name in ('cuda', 'cuda-budget'):
    g = frames(name)
    rel = np.linalg.norm(g - cpu) / np.linalg.norm(cpu)
    print(json.dumps({"what": "generator-e2e", "run": name, "frames": len(g), "cpu_frames": len(cpu), "rel_l2_vs_cpu_uint8": rel, "max_abs_levels": float(np.abs(g - cpu).max())}))
PY
echo "generator-e2e status: $status"
exit $status
