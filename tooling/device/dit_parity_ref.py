# The PyTorch side of the full-size DiT parity check (issue 5): FramePack's own HunyuanVideoTransformer3DModelPacked
# (imported from the fetched reference in .device/ref, never copied here) with the real config and seeded random
# bf16 weights made on the GPU, one forward per FramePack section shape. Writes, for dit-parity.ts to read:
#   <work>/weights.safetensors + config.json   every parameter, diffusers key names, BF16 (what the dit-model
#                                       loader reads), and the module's own config
#   <work>/case-<px>.safetensors        in.* inputs exactly as the sampler feeds them, out.sample (f32) and
#                                       out.sample_bf16, dbg.* intermediates (bf16, the dtype they are computed in)
#   <work>/truth-<px>.safetensors       out.sample_f32: the same weights and inputs run in f32 end to end
# and JSON lines (timings, peak memory, context numbers) to stdout and <out>/ref.jsonl.
#   python3 tooling/device/dit_parity_ref.py --ref .device/ref --work /tmp/parity --out $OUT [--tiny --device cpu]
import argparse
import json
import math
import os
import struct
import sys
import time
import types

ap = argparse.ArgumentParser()
ap.add_argument('--ref', default='.device/ref', help='folder with framepack/diffusers_helper and diffusers/diffusers')
ap.add_argument('--work', default='/tmp/dit-parity', help='where the weights and case files go')
ap.add_argument('--out', default=os.environ.get('OUT', '.'), help='where ref.jsonl goes')
ap.add_argument('--sizes', default='320,640')
ap.add_argument('--device', default='cuda')
ap.add_argument('--tiny', action='store_true', help='toy config (a CPU check of this script and of dit-parity.ts)')
ap.add_argument('--seed', type=int, default=20251124)
ap.add_argument('--warmup', type=int, default=1)
ap.add_argument('--iters', type=int, default=3)
ap.add_argument('--no-f32', action='store_true', help='skip the f32 forward of the same weights and inputs')
ap.add_argument('--text-tokens', type=int, default=100, help='valid LLaMA tokens (of 512, zero padded)')
args = ap.parse_args()

ref = os.path.abspath(args.ref)
sys.path[:0] = [os.path.join(ref, 'framepack'), os.path.join(ref, 'diffusers')]
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
# what the reference module imports from diffusers, first and for real: diffusers and transformers probe optional
# packages (find_spec) while importing, and must not see the stubs below
from diffusers.loaders import FromOriginalModelMixin, PeftAdapterMixin  # noqa: E402,F401
import diffusers.models.attention, diffusers.models.attention_processor, diffusers.models.embeddings  # noqa: E402,F401,E401
import diffusers.models.modeling_outputs, diffusers.models.modeling_utils, diffusers.models.normalization  # noqa: E402,F401,E401

# diffusers_helper.utils imports cv2 and torchvision at the top, but only its image/video file helpers use them:
# stand-ins while the reference module imports, removed again afterwards
STUBBED = []
for _name in ('cv2', 'torchvision'):
    try:
        __import__(_name)
    except ImportError:
        sys.modules[_name] = types.ModuleType(_name)
        STUBBED.append(_name)
import diffusers_helper.models.hunyuan_video_packed as hvp  # noqa: E402
from diffusers_helper.models.hunyuan_video_packed import HunyuanVideoTransformer3DModelPacked  # noqa: E402
for _name in STUBBED:
    del sys.modules[_name]

# batch 1 attention goes to sage/flash/xformers when installed, else SDPA: pin SDPA (what dit-model is compared with)
FORCED_OFF = [n for n in ('sageattn', 'flash_attn_func', 'xformers_attn_func') if getattr(hvp, n, None) is not None]
for n in FORCED_OFF:
    setattr(hvp, n, None)

os.makedirs(args.work, exist_ok=True)
os.makedirs(args.out, exist_ok=True)
dev = torch.device(args.device)
cuda = dev.type == 'cuda'
bf16 = torch.bfloat16
jsonl = open(os.path.join(args.out, 'ref.jsonl'), 'w')
t00 = time.time()


def emit(**o):
    o['device'] = torch.cuda.get_device_name(dev) if cuda else 'cpu'
    line = json.dumps(o)
    print(line, flush=True)
    jsonl.write(line + '\n')
    jsonl.flush()


def log(s):
    print(f'[dit-parity-ref {time.time() - t00:.1f}s] {s}', file=sys.stderr, flush=True)


def sync():
    if cuda:
        torch.cuda.synchronize()


# FramePack's transformer config (lllyasviel/FramePackI2V_HY config.json = the constructor's defaults plus the
# image projection and the clean-latent embedders, which demo_gradio.py loads with from_pretrained)
REAL = dict(in_channels=16, out_channels=16, num_attention_heads=24, attention_head_dim=128, num_layers=20, num_single_layers=40,
            num_refiner_layers=2, mlp_ratio=4.0, patch_size=2, patch_size_t=1, qk_norm='rms_norm', guidance_embeds=True,
            text_embed_dim=4096, pooled_projection_dim=768, rope_theta=256.0, rope_axes_dim=(16, 56, 56),
            has_image_proj=True, image_proj_dim=1152, has_clean_x_embedder=True)
TINY = dict(REAL, num_attention_heads=2, attention_head_dim=16, num_layers=2, num_single_layers=3, num_refiner_layers=1,
            text_embed_dim=32, pooled_projection_dim=16, rope_axes_dim=(4, 6, 6), image_proj_dim=24)
cfg = TINY if args.tiny else REAL
text_len, image_tokens, siglip_dim = (16, 9, cfg['image_proj_dim']) if args.tiny else (512, 729, 1152)
valid_text = min(args.text_tokens, text_len) if not args.tiny else 5

# ------------------------------------------------------------------------------------------------ weights
with torch.device('meta'):
    model = HunyuanVideoTransformer3DModelPacked(**cfg)
# cast on meta first: materialising in f32 would need 51 GB of device memory before the cast
model = model.to(bf16).to_empty(device=dev)
model.eval().requires_grad_(False)
model.high_quality_fp32_output_for_inference = True  # as demo_gradio.py sets it
params = dict(model.named_parameters())
state_keys = list(model.state_dict().keys())
assert sorted(state_keys) == sorted(params), 'the state dict holds more than parameters (buffers?)'
n_params = sum(p.numel() for p in params.values())
if not args.tiny:
    assert n_params == 12_874_314_816, n_params


def fill(name, p, gen):
    """Seeded N(0,1) on the device, scaled: matrices and kernels std 1/sqrt(fan_in) (a trained net's scale, so every
    block changes the residual stream), biases std 0.02, norm weights 1 + 0.1 N(0,1)."""
    z = torch.randn(p.shape, generator=gen, device=dev, dtype=torch.float32)
    if p.ndim > 1:
        z.mul_(1 / math.sqrt(p[0].numel()))
    elif name.endswith('.bias'):
        z.mul_(0.02)
    else:
        z.mul_(0.1).add_(1)
    p.copy_(z.to(bf16))


t0 = time.time()
gen = torch.Generator(device=dev)
with torch.no_grad():
    for i, name in enumerate(sorted(params)):
        gen.manual_seed(args.seed * 1000003 + i)
        fill(name, params[name], gen)
sync()
emit(what='ref-config', parameters=n_params, hidden=cfg['num_attention_heads'] * cfg['attention_head_dim'], dual=cfg['num_layers'],
     single=cfg['num_single_layers'], weights_seconds=time.time() - t0, torch=torch.__version__, tiny=args.tiny, attention='sdpa',
     attention_libs_forced_off=FORCED_OFF, stubbed_modules=STUBBED,
     sdp_backends={k: getattr(torch.backends.cuda, f'{k}_sdp_enabled')() for k in ('flash', 'mem_efficient', 'math', 'cudnn')} if cuda else None)

ST_DTYPE = {torch.bfloat16: 'BF16', torch.float32: 'F32', torch.float16: 'F16', torch.int64: 'I64', torch.int32: 'I32', torch.bool: 'BOOL'}


def save_safetensors(path, tensors):
    """Streaming safetensors writer: header, then one tensor at a time (never the whole 25.7 GB in host memory)."""
    header, offset = {}, 0
    for k, t in tensors.items():
        n = t.numel() * t.element_size()
        header[k] = {'dtype': ST_DTYPE[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + n]}
        offset += n
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for t in tensors.values():
            c = t.detach().contiguous().cpu()
            if c.numel():
                f.write(memoryview(c.view(torch.uint8).numpy()))
    os.replace(tmp, path)
    return offset


with open(os.path.join(args.work, 'config.json'), 'w') as f:
    json.dump(dict(model.config), f, indent=1)  # the diffusers config.json the dit-model loader reads beside the weights
t0 = time.time()
wbytes = save_safetensors(os.path.join(args.work, 'weights.safetensors'), {k: params[k] for k in state_keys})
emit(what='ref-weights-saved', bytes=wbytes, seconds=time.time() - t0)


# ------------------------------------------------------------------------------------------------ inputs
def section_inputs(px, seed):
    """The original mode's first section at a px x px bucket, as sample_hunyuan/fm_wrapper feed the transformer:
    latent_padding 3 -> indices [pre 0 | blank 1..27 | window 28..36 | post 37 | 2x 38,39 | 4x 40..55]; noisy latents
    and timestep cast to bf16 by fm_wrapper; guidance 10 * 1000 in bf16 (9984); LLaMA features zero padded to 512 with
    a bool mask; CLIP-L pooled and SigLIP last_hidden_state in bf16; clean latents f32 (the history is f32)."""
    g = torch.Generator(device='cpu').manual_seed(seed)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=torch.float32)  # noqa: E731
    window = 9
    h = w = px // 8
    latent, post = 1 + 3 * window, 1 + 4 * window
    two, four = post + 1, post + 3
    # step 1 of the 25-step schedule: exp(mu) = 7 at FramePack sizes, t = 1 - 1/25
    t = 1 - 1 / 25
    sigma = 7 / (7 + (1 / t - 1))
    enc = rn(1, text_len, cfg['text_embed_dim'])
    enc[:, valid_text:] = 0
    mask = torch.zeros(1, text_len, dtype=torch.bool)
    mask[:, :valid_text] = True
    idx = lambda a, n: torch.arange(a, a + n, dtype=torch.int64)[None]  # noqa: E731
    x = {
        'hidden_states': rn(1, 16, window, h, w).to(bf16),
        'timestep': torch.tensor([sigma * 1000.0]).to(bf16),
        'encoder_hidden_states': enc.to(bf16),
        'encoder_attention_mask': mask,
        'pooled_projections': rn(1, cfg['pooled_projection_dim']).to(bf16),
        'guidance': torch.tensor([10 * 1000.0]).to(bf16),
        'latent_indices': idx(latent, window),
        'clean_latents': rn(1, 16, 2, h, w),
        'clean_latent_indices': torch.tensor([[0, post]], dtype=torch.int64),
        'clean_latents_2x': rn(1, 16, 2, h, w),
        'clean_latent_2x_indices': idx(two, 2),
        'clean_latents_4x': rn(1, 16, 16, h, w),
        'clean_latent_4x_indices': idx(four, 16),
        'image_embeddings': rn(1, image_tokens, siglip_dim).to(bf16),
    }
    return x


def capture(model, store):
    """Hooks that copy the reference's module outputs under dit-model's debug names (ForwardOptions.debug)."""
    hooks = []
    keep = lambda n, t: store.__setitem__(f'dbg.{n}', t.detach().to('cpu', copy=True))  # noqa: E731

    def pre0(_m, a):
        keep('packed_hidden_states', a[0])
        keep('temb', a[2])
    hooks.append(model.transformer_blocks[0].register_forward_pre_hook(pre0))
    hooks.append(model.context_embedder.register_forward_hook(lambda _m, _a, o: keep('context_embedder', o)))
    hooks.append(model.image_projection.register_forward_hook(lambda _m, _a, o: keep('image_projection', o)))
    nd, ns = len(model.transformer_blocks), len(model.single_transformer_blocks)
    picks = [('transformer_blocks', i, model.transformer_blocks[i]) for i in sorted({0, nd // 2, nd - 1})]
    picks += [('single_transformer_blocks', i, model.single_transformer_blocks[i]) for i in sorted({0, ns // 2, ns - 1})]
    for kind, i, blk in picks:
        def post(_m, _a, o, n=f'{kind}.{i}'):
            keep(n, o[0])
            keep(f'{n}.context', o[1])
        hooks.append(blk.register_forward_hook(post))
    hooks.append(model.norm_out.register_forward_hook(lambda _m, _a, o: keep('norm_out', o)))
    return hooks


def rel_l2(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


for px in [int(s) for s in args.sizes.split(',')]:
    x_cpu = section_inputs(px, args.seed + px)
    x = {k: v.to(dev) for k, v in x_cpu.items()}
    dbg = {}
    times = []
    out = None
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev) if cuda else 0
    with torch.inference_mode():
        # the first (warm-up) forward carries the capture hooks; the timed ones run bare
        for i in range(args.warmup + args.iters):
            hooks = capture(model, dbg) if i == 0 else []
            sync()
            t0 = time.perf_counter()
            y = model(**x, return_dict=False)[0]
            sync()
            dt = time.perf_counter() - t0
            for hk in hooks:
                hk.remove()
            if i >= args.warmup:
                times.append(dt)
            if i == 0:
                first = y.float().cpu()
            out = y
            log(f'{px}x{px} forward {i}: {dt:.3f} s')
    peak = torch.cuda.max_memory_allocated(dev) if cuda else 0
    # what the caching allocator held from the driver (the process's footprint, like our allocator's peakReserved)
    peak_reserved = torch.cuda.max_memory_reserved(dev) if cuda else 0
    y = out.float().cpu()
    assert y.dtype == torch.float32 and out.dtype == torch.float32, out.dtype
    n_img = dbg['dbg.packed_hidden_states'].shape[1]
    n_ctx = dbg['dbg.transformer_blocks.0.context'].shape[1]
    case = {f'in.{k}': v for k, v in x_cpu.items()}
    case['out.sample'] = y
    case['out.sample_bf16'] = y.to(bf16)
    case.update({k: v.contiguous() for k, v in dbg.items()})
    save_safetensors(os.path.join(args.work, f'case-{px}.safetensors'), case)
    final = dbg[f'dbg.single_transformer_blocks.{len(model.single_transformer_blocks) - 1}']
    times_sorted = sorted(times)
    emit(what='ref-forward', shape=f'{px}x{px}', image_tokens=n_img, context_tokens=n_ctx, seconds=times_sorted[len(times) // 2], runs=times,
         peak_gib=peak / 2**30, peak_reserved_gib=peak_reserved / 2**30, activation_peak_gib=(peak - base) / 2**30, out_shape=list(y.shape), non_finite=int((~torch.isfinite(y)).sum()),
         mean_abs=y.abs().mean().item(), timestep=x_cpu['timestep'].float().item(), guidance=x_cpu['guidance'].float().item(),
         # context: how far the output is from the noisy input, and how much the 60 blocks moved the image tokens
         rel_l2_out_vs_input=rel_l2(y, x_cpu['hidden_states'].float()),
         rel_l2_blocks_out_vs_in=rel_l2(final.float(), dbg['dbg.packed_hidden_states'].float()),
         rel_l2_warmup_vs_timed=rel_l2(first, y))
    del x, out, dbg, case

# The same weights (bf16 values, exactly) and inputs in f32 end to end: a higher-precision answer that both bf16
# forwards are measured against, so the rel-L2 between them can be read as bf16 rounding or as a real difference.
# In place: each bf16 parameter is freed as its f32 copy is made (51.5 GB at the end, not 77).
if not args.no_f32:
    torch.backends.cuda.matmul.allow_tf32 = False  # true f32 products and convolutions, not TF32
    torch.backends.cudnn.allow_tf32 = False
    model.to(torch.float32)
    if cuda:
        torch.cuda.empty_cache()
    for px in [int(s) for s in args.sizes.split(',')]:
        path = os.path.join(args.work, f'case-{px}.safetensors')
        case = load_file(path)
        x = {k[3:]: (v.float() if v.is_floating_point() else v).to(dev) for k, v in case.items() if k.startswith('in.')}
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        sync()
        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                y32 = model(**x, return_dict=False)[0].float().cpu()
        except torch.OutOfMemoryError as e:  # the bf16 results above stand without it
            emit(what='ref-f32-oom', shape=f'{px}x{px}', message=str(e)[:300])
            del x, case
            torch.cuda.empty_cache()
            continue
        sync()
        dt = time.perf_counter() - t0
        save_safetensors(os.path.join(args.work, f'truth-{px}.safetensors'), {'out.sample_f32': y32})
        emit(what='ref-f32-forward', shape=f'{px}x{px}', seconds=dt, peak_gib=(torch.cuda.max_memory_allocated(dev) if cuda else 0) / 2**30,
             rel_l2_ref_bf16_vs_f32=rel_l2(case['out.sample'], y32), max_abs_ref_bf16_vs_f32=(case['out.sample'] - y32).abs().max().item(),
             non_finite=int((~torch.isfinite(y32)).sum()))
        del x, case, y32
emit(what='ref-done', seconds=time.time() - t00)
