// Timing of the encoders at FramePack's real sizes on a CUDA device (run on the device machine; see README):
// LLaMA-3-8B text encoder to hidden_states[-3] (30 of 32 layers) on 351 tokens, CLIP-L text on 77 tokens,
// SigLIP-so400m on one 384x384 image, all in f16 with constant weights (timing only: values are meaningless).
// Prints one JSON line per model: milliseconds per forward (median of N, after warm-up) and peak device memory.
import * as T from '@framepack/tensor-core';
import { ClipTextEncoder, LlamaTextEncoder, SiglipVisionEncoder } from '@framepack/encoders';

const device = (process.env.BENCH_DEVICE ?? 'cuda') as T.DeviceType;
const dtype = (process.env.BENCH_DTYPE ?? 'f16') as T.DType;
const iters = Number(process.env.BENCH_ITERS ?? 5);

function constWeights(shapes: Record<string, number[]>): Map<string, T.Tensor> {
  const m = new Map<string, T.Tensor>();
  for (const [k, s] of Object.entries(shapes)) m.set(k, T.full(s, /norm|layer_norm|layernorm/.test(k) && k.endsWith('weight') ? 1 : 1e-4, { dtype, device }));
  return m;
}
function bench(name: string, fn: () => T.Tensor): void {
  for (let i = 0; i < 2; i++) fn().dispose();
  T.resetPeakMemory(device);
  const ms: number[] = [];
  for (let i = 0; i < iters; i++) {
    // device time between two events around the call (no host download in the measurement)
    const a = T.CudaEvent.create().record();
    const out = fn();
    const b = T.CudaEvent.create().record();
    b.synchronize();
    ms.push(a.elapsedMs(b));
    a.dispose();
    b.dispose();
    out.dispose();
  }
  ms.sort((x, y) => x - y);
  const st = T.memoryStats(device);
  console.log(JSON.stringify({ kind: 'encoder-bench', model: name, device, dtype, msMedian: +ms[ms.length >> 1].toFixed(2), msMin: +ms[0].toFixed(2), peakGiB: +(st.peakBytes / 2 ** 30).toFixed(2) }));
}

// ---- LLaMA-3-8B (HunyuanVideo text_encoder), hidden_states[-3]
{
  const D = 4096, ff = 14336, kv = 1024, layers = 32;
  const shapes: Record<string, number[]> = { 'embed_tokens.weight': [128320, D], 'norm.weight': [D] };
  for (let i = 0; i < layers; i++) {
    const p = `layers.${i}.`;
    Object.assign(shapes, {
      [`${p}input_layernorm.weight`]: [D], [`${p}post_attention_layernorm.weight`]: [D],
      [`${p}self_attn.q_proj.weight`]: [D, D], [`${p}self_attn.k_proj.weight`]: [kv, D], [`${p}self_attn.v_proj.weight`]: [kv, D], [`${p}self_attn.o_proj.weight`]: [D, D],
      [`${p}mlp.gate_proj.weight`]: [ff, D], [`${p}mlp.up_proj.weight`]: [ff, D], [`${p}mlp.down_proj.weight`]: [D, ff],
    });
  }
  const enc = LlamaTextEncoder.fromWeights({ vocab_size: 128320, hidden_size: D, intermediate_size: ff, num_hidden_layers: layers, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128, rms_norm_eps: 1e-5, rope_theta: 500000 }, constWeights(shapes));
  const L = 351;
  const ids = T.tensor(BigInt64Array.from({ length: L }, (_, i) => BigInt((i * 7919) % 128000)), [1, L], { dtype: 'i64' });
  const mask = T.tensor(BigInt64Array.from({ length: L }, (_, i) => (i < 120 ? 1n : 0n)), [1, L], { dtype: 'i64' });
  bench('llama3-8b hidden_states[-3], 351 tokens', () => enc.forward(ids, mask, { hiddenStateIndex: -3 }));
  if (process.env.BENCH_PROFILE) {
    bench('llama3-8b, no padding mask (causal only)', () => enc.forward(ids, null, { hiddenStateIndex: -3 }));
    const x = T.full([1, L, 4096], 0.1, { dtype, device }), w = T.full([14336, 4096], 1e-4, { dtype, device });
    bench('one 351x4096x14336 linear', () => T.linear(x, w));
    const q = T.full([1, 32, L, 128], 0.1, { dtype, device });
    const km = T.reshape(T.ne(mask, 0), [1, 1, 1, L]);
    const kmd = T.toDevice(km, device);
    bench('attention 32x351x128 causal', () => T.scaledDotProductAttention(q, q, q, { causal: true }));
    bench('attention 32x351x128 causal + key mask', () => T.scaledDotProductAttention(q, q, q, { causal: true, mask: kmd }));
  }
  enc.dispose();
}
// ---- CLIP-L text
{
  const D = 768, ff = 3072;
  const shapes: Record<string, number[]> = { 'embeddings.token_embedding.weight': [49408, D], 'embeddings.position_embedding.weight': [77, D], 'final_layer_norm.weight': [D], 'final_layer_norm.bias': [D] };
  for (let i = 0; i < 12; i++) {
    const p = `encoder.layers.${i}.`;
    for (const n of ['layer_norm1', 'layer_norm2']) Object.assign(shapes, { [`${p}${n}.weight`]: [D], [`${p}${n}.bias`]: [D] });
    for (const n of ['q', 'k', 'v', 'out']) Object.assign(shapes, { [`${p}self_attn.${n}_proj.weight`]: [D, D], [`${p}self_attn.${n}_proj.bias`]: [D] });
    Object.assign(shapes, { [`${p}mlp.fc1.weight`]: [ff, D], [`${p}mlp.fc1.bias`]: [ff], [`${p}mlp.fc2.weight`]: [D, ff], [`${p}mlp.fc2.bias`]: [D] });
  }
  const enc = ClipTextEncoder.fromWeights({ vocab_size: 49408, hidden_size: D, intermediate_size: ff, num_hidden_layers: 12, num_attention_heads: 12, max_position_embeddings: 77, eos_token_id: 2 }, constWeights(shapes));
  const ids = T.tensor(BigInt64Array.from({ length: 77 }, (_, i) => BigInt(i === 0 ? 49406 : i < 9 ? 1000 + i : 49407)), [1, 77], { dtype: 'i64' });
  bench('clip-l text pooled, 77 tokens', () => enc.pooled(ids));
  enc.dispose();
}
// ---- SigLIP so400m vision
{
  const D = 1152, ff = 4304;
  const shapes: Record<string, number[]> = { 'embeddings.patch_embedding.weight': [D, 3, 14, 14], 'embeddings.patch_embedding.bias': [D], 'embeddings.position_embedding.weight': [729, D], 'post_layernorm.weight': [D], 'post_layernorm.bias': [D] };
  for (let i = 0; i < 27; i++) {
    const p = `encoder.layers.${i}.`;
    for (const n of ['layer_norm1', 'layer_norm2']) Object.assign(shapes, { [`${p}${n}.weight`]: [D], [`${p}${n}.bias`]: [D] });
    for (const n of ['q', 'k', 'v', 'out']) Object.assign(shapes, { [`${p}self_attn.${n}_proj.weight`]: [D, D], [`${p}self_attn.${n}_proj.bias`]: [D] });
    Object.assign(shapes, { [`${p}mlp.fc1.weight`]: [ff, D], [`${p}mlp.fc1.bias`]: [ff], [`${p}mlp.fc2.weight`]: [D, ff], [`${p}mlp.fc2.bias`]: [D] });
  }
  const enc = SiglipVisionEncoder.fromWeights({ hidden_size: D, intermediate_size: ff, num_hidden_layers: 27, num_attention_heads: 16, image_size: 384, patch_size: 14, hidden_act: 'gelu_pytorch_tanh', layer_norm_eps: 1e-6 }, constWeights(shapes));
  const px = T.full([1, 3, 384, 384], 0.1, { dtype: 'f32', device });
  bench('siglip-so400m last_hidden_state, 384px', () => enc.forward(px));
  if (process.env.BENCH_PROFILE) {
    const w = T.full([1152, 3, 14, 14], 1e-4, { dtype, device });
    const pxh = T.cast(px, dtype);
    bench('siglip patch conv 3->1152 k14 s14 on 384px', () => T.conv2d(pxh, w, null, { stride: 14 }));
    const q = T.full([1, 16, 729, 72], 0.1, { dtype, device });
    bench('attention 16x729x72', () => T.scaledDotProductAttention(q, q, q));
    const x = T.full([1, 729, 1152], 0.1, { dtype, device }), w2 = T.full([4304, 1152], 1e-4, { dtype, device });
    bench('one 729x1152x4304 linear', () => T.linear(x, w2));
    bench('layerNorm 729x1152', () => T.layerNorm(x, null, null, 1e-6));
    bench('gelu tanh 729x4304', () => T.gelu(T.linear(x, w2), 'tanh'));
  }
  enc.dispose();
}
