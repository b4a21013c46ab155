# Reference rates on the same GPU for the report: PyTorch SDPA (default backend choice) and bf16 linear at the
# shapes gpu-check.ts times. Prints JSON lines; run by gpu-test.sh when python3 has torch.
import json, sys
import torch
import torch.nn.functional as F

def bench(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]

dev = 'cuda'
for S in (5585, 19385):
    q, k, v = (torch.randn(1, 24, S, 128, device=dev, dtype=torch.bfloat16) for _ in range(3))
    ms = bench(lambda: F.scaled_dot_product_attention(q, k, v), 5 if S > 10000 else 10)
    print(json.dumps({'kind': 'torch-attention', 'S': S, 'ms': ms, 'tflops': 4 * 24 * S * S * 128 / (ms * 1e-3) / 1e12}), flush=True)
    del q, k, v
for S in (5585, 19385):
    for name, N, K in (('qkv', 9216, 3072), ('mlp-up', 12288, 3072), ('mlp-down', 3072, 12288), ('single-linear1', 21504, 3072), ('single-linear2', 3072, 15360)):
        x = torch.randn(S, K, device=dev, dtype=torch.bfloat16)
        w = torch.randn(N, K, device=dev, dtype=torch.bfloat16) * 0.02
        b = torch.randn(N, device=dev, dtype=torch.bfloat16)
        ms = bench(lambda: F.linear(x, w, b), 10)
        print(json.dumps({'kind': 'torch-linear', 'name': name, 'M': S, 'N': N, 'K': K, 'ms': ms, 'tflops': 2 * S * N * K / (ms * 1e-3) / 1e12}), flush=True)
x = torch.randn(1, 128, 5, 80, 80, device=dev, dtype=torch.bfloat16)
w = torch.randn(128, 128, 3, 3, 3, device=dev, dtype=torch.bfloat16) * 0.05
ms = bench(lambda: F.conv3d(x, w, padding=1), 5)
print(json.dumps({'kind': 'torch-conv3d', 'ms': ms, 'tflops': 2 * 128 * 128 * 27 * 5 * 80 * 80 / (ms * 1e-3) / 1e12}), flush=True)
