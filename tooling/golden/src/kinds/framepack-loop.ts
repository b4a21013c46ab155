/**
 * Golden kind `framepack-loop`: the reference worker's whole section loop (original/inverted or F1) on the case's
 * tiny DiT and VAE with given conditioning: one torch generator seeded once for every section's noise, UniPC
 * sampling, history bookkeeping, per-section VAE decode and the soft-append of pixels. Compares the final latents
 * and pixels, and checks the section count and frame totals against case.json.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as T from '@framepack/tensor-core';
import { openSafetensors } from '@framepack/safetensors';
import { HunyuanVideoTransformer3DModelPacked } from '@framepack/dit-model';
import { configFromDiffusers, HunyuanVideoVae } from '@framepack/vae-tiling';
import { sampleHunyuan, TorchGenerator } from '@framepack/k-diffusion';
import { runSectionLoop, sectionContextOn, totalSections, type LoopMode } from '@framepack/generator';
import { compareOutputs, referenceModelDType, withExactCheck } from '../compare.js';
import type { GoldenCase, GoldenKind } from '../types.js';

export const kind: GoldenKind = {
  name: 'framepack-loop',
  async run(c: GoldenCase) {
    const j = c.json;
    const mode = j.mode as LoopMode;
    const W = j.latent_window_size as number;
    const sections = totalSections(j.total_second_length, W);
    const wf = openSafetensors(c.weightsPath('dit_weights_from'));
    let dit: HunyuanVideoTransformer3DModelPacked;
    try {
      dit = HunyuanVideoTransformer3DModelPacked.fromWeights(j.dit_config, wf, { dtype: c.dtype, device: c.device });
    } finally {
      wf.close();
    }
    const vaeCase = JSON.parse(readFileSync(join(c.dir, '..', j.vae_weights_from, 'case.json'), 'utf8'));
    const vae = HunyuanVideoVae.load(c.weightsPath('vae_weights_from'), { config: configFromDiffusers(vaeCase.config), device: c.device, dtype: c.dtype });
    const input = (n: string) => c.tensors.tensor(n, { device: c.device });
    const cond = {
      encoderHiddenStates: input('in.llama_vec'),
      encoderAttentionMask: input('in.llama_attention_mask'),
      pooledProjections: input('in.clip_l_pooler'),
      imageEmbeddings: input('in.image_embeddings'),
    };
    const start = c.tensors.tensor('in.start_latent'); // the loop's history lives on the CPU
    const generator = new TorchGenerator(j.sampling_seed);
    const frameCounts: number[] = [];
    try {
      const { latents, pixels } = await runSectionLoop(
        { mode, startLatent: start, windowSize: W, sections },
        {
          sample: async (s) => {
            // the loop keeps its history on the CPU (as the reference worker does); the DiT reads from its device
            const onDevice = sectionContextOn(s, c.device);
            try {
              return await sampleHunyuan({
                model: (x, timestep, _c, ctx) => dit.forward({ ...cond, ...onDevice, hiddenStates: x, timestep, guidance: ctx.guidance! }),
                positive: null,
                width: j.width, height: j.height, frames: s.frames, steps: j.steps, cfg: j.cfg, gs: j.gs, rs: j.rs,
                generator, dtype: referenceModelDType(j), device: c.device,
              });
            } finally {
              T.disposeAll(onDevice);
            }
          },
          decode: async (l) => vae.decode(l),
          onSection: (r) => void frameCounts.push(r.pixels.shape[2]),
        },
      );
      const pairs = {
        'out.latents': { ours: latents.toFloat32Array(), ref: c.tensors.readF32('out.latents') },
        'out.pixels': { ours: pixels.toFloat32Array(), ref: c.tensors.readF32('out.pixels') },
      };
      latents.dispose();
      pixels.dispose();
      let r = compareOutputs(pairs, c.tolerance);
      r = withExactCheck(r, sections === j.total_latent_sections, `sections ${sections} != ${j.total_latent_sections}`);
      const want = (j.sections as { pixel_frames: number }[]).map((s) => s.pixel_frames);
      r = withExactCheck(r, JSON.stringify(frameCounts) === JSON.stringify(want), `pixel frames per section [${frameCounts}] != [${want}]`);
      return r;
    } finally {
      T.disposeAll([start, ...Object.values(cond)]);
      dit.dispose();
      vae.dispose();
    }
  },
};
