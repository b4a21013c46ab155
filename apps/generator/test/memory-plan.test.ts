import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { STREAM_HEADROOM_BYTES, planMemory, totalBytes, type MemoryPlan, type PlanModels } from '../src/memory-plan.js';
import { modelShapesFromConfigs, planModels, readModelShapes, type ModelShapes } from '../src/model-sizes.js';
import { ensureTinyModels, tinyConfigs } from '../src/tiny/family.js';

const GiB = 2 ** 30;

// The real FramePack checkpoints' config.json files (lllyasviel/FramePackI2V_HY; hunyuanvideo-community/HunyuanVideo
// text_encoder, text_encoder_2, vae; lllyasviel/flux_redux_bfl image_encoder), as research/framepack-spec.md lists
// them. Shapes come from the tiny family's shape maps, which a test pins to the reference checkpoints' headers.
const dit = {
  in_channels: 16, out_channels: 16, num_attention_heads: 24, attention_head_dim: 128, num_layers: 20, num_single_layers: 40,
  num_refiner_layers: 2, mlp_ratio: 4, patch_size: 2, patch_size_t: 1, text_embed_dim: 4096, pooled_projection_dim: 768,
  image_proj_dim: 1152, has_image_proj: true, has_clean_x_embedder: true, rope_axes_dim: [16, 56, 56], rope_theta: 256, guidance_embeds: true, qk_norm: 'rms_norm',
};
const llama = { vocab_size: 128320, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 500000, hidden_act: 'silu' };
const clip = { vocab_size: 49408, hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, max_position_embeddings: 77, hidden_act: 'quick_gelu' };
const siglip = { hidden_size: 1152, intermediate_size: 4304, num_hidden_layers: 27, num_attention_heads: 16, num_channels: 3, image_size: 384, patch_size: 14 };
const vae = {
  in_channels: 3, out_channels: 3, latent_channels: 16, down_block_types: Array(4).fill('HunyuanVideoDownBlock3D'), up_block_types: Array(4).fill('HunyuanVideoUpBlock3D'),
  block_out_channels: [128, 256, 512, 512], layers_per_block: 2, act_fn: 'silu', norm_num_groups: 32, scaling_factor: 0.476986,
  spatial_compression_ratio: 8, temporal_compression_ratio: 4, mid_block_add_attention: true,
};
const real: ModelShapes = modelShapesFromConfigs({ transformer: dit, text_encoder: llama, text_encoder_2: clip, image_encoder: siglip, vae });
const models: PlanModels = planModels(real, 2);
const job = { height: 640, width: 640, window: 9 };
const plan = (budgetGiB: number, j = job): MemoryPlan => planMemory({ budgetBytes: budgetGiB * GiB, bytesPerElement: 2, models, job: j });

describe('model sizes from configs and headers', () => {
  it('counts the real checkpoints as the loaders place them', () => {
    // 12.87e9 DiT parameters (DESIGN.md), in 20 dual + 40 single blocks
    expect(totalBytes(models.dit.weights) / 2 / 1e9).toBeCloseTo(12.87, 2);
    expect(models.dit.weights.unitBytes).toHaveLength(60);
    const D = 3072;
    // dual: 2 x norm (6D x D + 6D) + 8 D x D linears + 4 qk norms + 2 MLPs (D -> 4D -> D)
    const dual = 2 * (6 * D * D + 6 * D) + 8 * (D * D + D) + 4 * 128 + 2 * (4 * D * D + 4 * D + 4 * D * D + D);
    expect(models.dit.weights.unitBytes[0]).toBe(dual * 2);
    // LLaMA: hidden_states[-3] runs 30 of 32 layers; the embedding table may stay on the host
    expect(models.llama.weights.unitBytes).toHaveLength(30);
    const layer = 4096 * 4096 * 2 + 1024 * 4096 * 2 + 3 * 14336 * 4096 + 2 * 4096;
    expect(models.llama.weights.unitBytes.every((b) => b === layer * 2)).toBe(true);
    expect(models.llama.weights.hostableBytes).toBe(128320 * 4096 * 2);
    expect(models.llama.weights.fixedBytes).toBe(128320 * 4096 * 2); // no final norm for hidden_states[-3]
    expect(models.llama.tokens).toBe(95 + 256);
    expect(models.siglip.tokens).toBe(729);
    expect(models.siglip.weights.unitBytes).toHaveLength(27);
    expect(totalBytes(models.clip.weights) / 2 / 1e6).toBeCloseTo(123.06, 1); // CLIP-L text: 123.06M parameters
  });

  it('reads the same from a model folder (config.json + safetensors headers): the tiny family', () => {
    const root = ensureTinyModels();
    const p = (n: string) => join(root, n);
    const s = readModelShapes({ transformer: p('transformer'), text_encoder: p('text_encoder'), text_encoder_2: p('text_encoder_2'), image_encoder: p('image_encoder'), vae: p('vae') });
    const fromFiles = planModels(s, 4);
    const fromConfigs = planModels(modelShapesFromConfigs(tinyConfigs), 4);
    expect(fromFiles).toEqual(fromConfigs);
    expect(fromFiles.llama.weights.unitBytes).toHaveLength(tinyConfigs.text_encoder.num_hidden_layers - 2);
  });
});

describe('memory planner on the real FramePack sizes (bf16, 640x640, window 9)', () => {
  const plans = Object.fromEntries([8, 12, 24, 80].map((b) => [b, plan(b)])) as Record<number, MemoryPlan>;

  it('fits every phase of every budget under the allocator cap (budget - reserve), with reasons', () => {
    for (const [b, p] of Object.entries(plans)) {
      expect(p.fits, `${b} GiB`).toBe(true);
      expect(p.allocatorBudgetBytes).toBe(Number(b) * GiB - 0.75 * GiB);
      for (const ph of p.phases) expect(ph.bytes, `${b} GiB ${ph.phase}`).toBeLessThanOrEqual(p.usableBytes);
      expect(p.phases.map((x) => x.phase)).toEqual(['text-encode', 'image-encode', 'vae-encode', 'sample', 'decode']);
      expect(p.reasons.length).toBeGreaterThan(3);
    }
  });

  it('80 GiB: everything resident and kept between jobs, the reference VAE tiling', () => {
    const p = plans[80];
    expect(p.dit).toMatchObject({ mode: 'resident', streamedBytesPerForward: 0 });
    for (const e of [p.llama, p.clip, p.siglip]) expect(e).toMatchObject({ mode: 'resident', lifetime: 'kept' });
    expect(p.vae.tiling.spatial).toBe(false);
    expect(p.order[0]).toMatch(/start-up: load DiT \(resident\), VAE, LLaMA \(resident\), CLIP-L \(resident\), SigLIP \(resident\)/);
    expect(p.order.some((s) => /free/.test(s))).toBe(false);
    expect(p.reasons.join('\n')).toMatch(/everything fits resident/);
  });

  it('24 GiB: the 24 GiB of DiT weights cannot be resident, so the DiT streams with most blocks kept resident', () => {
    const p = plans[24];
    expect(totalBytes(models.dit.weights)).toBeGreaterThan(p.usableBytes);
    expect(p.dit.mode).toBe('streamed');
    expect(p.dit.slots).toBe(2);
    expect(p.dit.residentBlocks).toBeGreaterThan(30);
    expect(p.dit.streamedBytesPerForward).toBeLessThan(8 * GiB);
    // the encoders make room for resident blocks: per job, streamed, freed after use
    expect(p.llama).toMatchObject({ mode: 'streamed', lifetime: 'per-job' });
    expect(p.siglip.lifetime).toBe('per-job');
    expect(p.reasons.join('\n')).toMatch(/blocks stay resident/);
  });

  it('12 and 8 GiB: fewer resident blocks, 256 px VAE tiles at most, the LLaMA embedding table left on the host', () => {
    for (const b of [12, 8]) {
      const p = plans[b];
      expect(p.dit.mode).toBe('streamed');
      expect(p.vae.tiling.spatial).toBe(true);
      expect(p.vae.tiling.tileSampleMinHeight).toBeLessThanOrEqual(256);
      expect(p.llama.mode).toBe('streamed');
      // 2 layer slots, no embedding table on the device
      expect(p.llama.deviceBytes).toBe(2 * models.llama.weights.unitBytes[0]);
    }
    expect(plans[8].dit.residentBlocks).toBeLessThan(plans[12].dit.residentBlocks);
    // resident blocks leave STREAM_HEADROOM free while sampling (measured: at the cap the copies stop overlapping)
    for (const b of [12, 8]) {
      const sample = plans[b].phases.find((ph) => ph.phase === 'sample')!;
      expect(sample.bytes).toBeLessThanOrEqual(plans[b].usableBytes - STREAM_HEADROOM_BYTES);
    }
    expect(plans[12].dit.residentBlocks).toBeLessThan(plans[24].dit.residentBlocks);
    expect(plans[8].dit.streamedBytesPerForward).toBeGreaterThan(plans[12].dit.streamedBytesPerForward);
    // 8 GiB: the text encoders are loaded per job and freed before sampling
    const order = plans[8].order;
    const freeText = order.findIndex((s) => /free LLaMA, CLIP-L/.test(s));
    expect(freeText).toBeGreaterThan(order.findIndex((s) => /encode the prompts/.test(s)));
    expect(freeText).toBeLessThan(order.findIndex((s) => /sample with the DiT/.test(s)));
  });

  it('reports the host memory of streamed weights: per-job encoders read from the checkpoint, only the DiT is pinned', () => {
    const p = plans[8];
    const w = models.llama.weights;
    expect(p.hostPhases.find((x) => x.phase === 'sample')!.bytes).toBe(p.dit.streamedBytesPerForward);
    // a per-job streamed encoder runs one pass: its layers are read from the checkpoint into 2 staging slots
    expect(p.llama.hostCopy).toBe('source');
    expect(p.siglip.hostCopy).toBe('source');
    expect(p.hostPhases.find((x) => x.phase === 'text-encode')!.bytes).toBe(p.dit.streamedBytesPerForward + 2 * w.unitBytes[0] + w.hostableBytes);
    expect(Math.max(...p.hostPhases.map((x) => x.bytes))).toBeLessThanOrEqual(32 * GiB);
    expect(p.reasons.join('\n')).not.toMatch(/host budget/);
    expect(p.order.join('\n')).toMatch(/LLaMA \(streamed, 2 slots, layers read from the checkpoint each pass\)/);
    // the same with host memory to spare (reading from the source is the faster way for one pass)
    const roomy = planMemory({ budgetBytes: 8 * GiB, bytesPerElement: 2, models, job, hostBudgetBytes: 64 * GiB });
    expect(roomy.llama.hostCopy).toBe('source');
    expect(roomy.hostPhases).toEqual(p.hostPhases);
    // a host budget smaller than the DiT's pinned blocks is reported
    const tight = planMemory({ budgetBytes: 8 * GiB, bytesPerElement: 2, models, job, hostBudgetBytes: 16 * GiB });
    expect(tight.reasons.join('\n')).toMatch(/pinned host copies peak at ~24\.\d\d GiB, over the 16\.00 GiB host budget/);
    expect(plans[80].hostPhases.every((x) => x.bytes === 0)).toBe(true);
  });


  it('the DiT device part is its fixed weights + resident blocks + the slots', () => {
    const p = plans[8];
    const u = models.dit.weights.unitBytes;
    const streamed = u.slice(p.dit.residentBlocks);
    expect(p.dit.deviceBytes).toBe(models.dit.weights.fixedBytes + u.slice(0, p.dit.residentBlocks).reduce((a, b) => a + b, 0) + 2 * Math.max(...streamed));
    expect(p.dit.streamedBytesPerForward).toBe(streamed.reduce((a, b) => a + b, 0));
  });

  it('the job shape matters: a 768x768 window-16 job (2.2x the tokens) keeps fewer DiT blocks resident', () => {
    const big = plan(12, { height: 768, width: 768, window: 16 });
    expect(big.fits).toBe(true);
    expect(big.dit.residentBlocks).toBeLessThan(plans[12].dit.residentBlocks);
    expect(big.phases.find((x) => x.phase === 'sample')!.bytes).toBeGreaterThan(plans[12].phases.find((x) => x.phase === 'sample')!.bytes);
    expect(plan(12, { height: 320, width: 320, window: 9 }).dit.residentBlocks).toBeGreaterThanOrEqual(plans[12].dit.residentBlocks);
  });

  it('40 GiB: the DiT stays resident, LLaMA is loaded per job', () => {
    const p = plan(40);
    expect(p.dit.mode).toBe('resident');
    expect(p.llama.lifetime).toBe('per-job');
    expect(p.clip.lifetime).toBe('kept');
  });

  it('a budget too small says so and by how much', () => {
    const p = plan(3);
    expect(p.fits).toBe(false);
    expect(p.problem).toMatch(/needs ~[\d.]+ GiB at the peak, [\d.]+ GiB more than the [\d.]+ GiB usable; lower --resolution or --window, or raise --vram-budget/);
    expect(p.reasons.join('\n')).toContain(`does not fit: ${p.problem}`);
    expect(plan(8).problem).toBeUndefined();
  });

  it('--stream-weights int8/fp8: streamed blocks as 8-bit codes + f32 row scales, half the bytes per forward, the scratch counted', () => {
    const D = 3072;
    // dual block: 36 D^2 matrix values (2 x 6D x D norms, 8 D x D attention, 2 x 2 x 4D x D MLP), 30 D rows, 30 D + 512 bias/norm values
    const w8 = models.dit.weights8bit!;
    expect(w8.unitBytes[0]).toBe(36 * D * D + 30 * D * 4 + (30 * D + 512) * 2);
    expect(w8.scratchBytes[0]).toBe(36 * D * D * 2);
    expect(w8.unitBytes.reduce((a, b) => a + b, 0) / models.dit.weights.unitBytes.reduce((a, b) => a + b, 0)).toBeCloseTo(0.5, 2);
    for (const f of ['int8', 'fp8'] as const) {
      const p = planMemory({ budgetBytes: 8 * GiB, bytesPerElement: 2, models, job, streamWeights: f });
      const bf = plans[8];
      expect(p.fits).toBe(true);
      expect(p.dit).toMatchObject({ mode: 'streamed', slots: 2, weights8bit: f, scratchBytes: Math.max(...w8.scratchBytes.slice(p.dit.residentBlocks)) });
      // 2 half-size slots + a scratch of one block's matrices take what 2 bf16 slots took: the same blocks stay resident
      expect(p.dit.residentBlocks).toBe(bf.dit.residentBlocks);
      expect(Math.abs(p.dit.deviceBytes - bf.dit.deviceBytes)).toBeLessThan(0.02 * GiB);
      const u = models.dit.weights.unitBytes, s8 = w8.unitBytes.slice(p.dit.residentBlocks);
      expect(p.dit.deviceBytes).toBe(models.dit.weights.fixedBytes + u.slice(0, p.dit.residentBlocks).reduce((a, b) => a + b, 0) + 2 * Math.max(...s8) + p.dit.scratchBytes);
      expect(p.dit.streamedBytesPerForward).toBe(s8.reduce((a, b) => a + b, 0));
      expect(p.dit.streamedBytesPerForward).toBeLessThan(0.51 * bf.dit.streamedBytesPerForward);
      expect(p.hostPhases.find((x) => x.phase === 'sample')!.bytes).toBeLessThan(bf.hostPhases.find((x) => x.phase === 'sample')!.bytes);
      expect(p.reasons.join('\n')).toContain(`streamed blocks stored as ${f}`);
      expect(p.order[0]).toContain(`DiT (streamed as ${f}, 2 slots`);
    }
    // resident DiT: nothing to quantize, and the plan says so
    const big = planMemory({ budgetBytes: 40 * GiB, bytesPerElement: 2, models, job, streamWeights: 'int8' });
    expect(big.dit).toMatchObject({ mode: 'resident', weights8bit: null, scratchBytes: 0 });
    expect(big.reasons.join('\n')).toContain('--stream-weights int8 has no effect: the DiT is resident');
    expect(plans[8].dit.weights8bit).toBeNull();
    expect(() => planMemory({ budgetBytes: GiB, bytesPerElement: 2, models, job, streamWeights: 'int4' as 'int8' })).toThrow(/streamWeights/);
    const { weights8bit: _, ...noSizes } = models.dit;
    expect(() => planMemory({ budgetBytes: 8 * GiB, bytesPerElement: 2, models: { ...models, dit: noSizes }, job, streamWeights: 'fp8' })).toThrow(/8-bit block sizes/);
  });

  it('refuses nonsense inputs', () => {
    expect(() => planMemory({ budgetBytes: 0, bytesPerElement: 2, models, job })).toThrow(RangeError);
    expect(() => planMemory({ budgetBytes: GiB, bytesPerElement: 3, models, job })).toThrow(/bytesPerElement/);
    expect(() => planMemory({ budgetBytes: GiB, bytesPerElement: 2, models, job: { ...job, window: 0 } })).toThrow(/job shape/);
  });
});
