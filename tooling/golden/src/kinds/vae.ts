/**
 * Golden kind `vae`: AutoencoderKLHunyuanVideo decode / per-frame decode / encode (posterior mean, logvar),
 * tiled decode and encode for every tiling listed in case.json, and FramePack's latent->RGB preview.
 * Every `out.*` tensor of the case is compared; an output this kind does not know fails the case.
 */
import type { Tensor } from '@framepack/tensor-core';
import { configFromDiffusers, HunyuanVideoVae, type TilingOptions } from '@framepack/vae-tiling';
import { compareOutputs } from '../compare.js';
import type { GoldenCase, GoldenKind } from '../types.js';

/** enable_tiling(**kwargs) keyword arguments (snake_case) -> TilingOptions. */
function tilingFromKwargs(kw: Record<string, number>): Partial<TilingOptions> {
  const camel = (s: string) => s.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());
  return Object.fromEntries(Object.entries(kw).map(([k, v]) => [camel(k), v]));
}

export const kind: GoldenKind = {
  name: 'vae',
  async run(c: GoldenCase) {
    const vae = HunyuanVideoVae.load(c.weightsPath(), { config: configFromDiffusers(c.json.config), device: c.device, dtype: c.dtype });
    const tilings: Record<string, number>[] = c.json.tilings ?? [];
    const input = (name: string): Tensor => c.tensors.tensor(name, { device: c.device });
    const owned: Tensor[] = [];
    const keep = (t: Tensor) => (owned.push(t), t);
    const encodings = new Map<string, ReturnType<typeof vae.encode>>();
    const encodeMean = (name: string, tiling?: Partial<TilingOptions>, scaled = false) => {
      const key = `${name} ${JSON.stringify(tiling ?? null)}`;
      let e = encodings.get(key);
      if (!e) {
        e = vae.encode(keep(input(name)), { tiling });
        owned.push(e.mean, e.logvar, e.latents);
        encodings.set(key, e);
      }
      return { mean: scaled ? e.latents : e.mean, logvar: e.logvar };
    };
    // out.<what>[.<tiling index>] -> how to compute it from the inputs
    const compute = (what: string, idx: number | undefined): Tensor => {
      const tiling = idx === undefined ? undefined : tilingFromKwargs(tilings[idx]);
      if (idx !== undefined && !tilings[idx]) throw new Error(`case.json has no tilings[${idx}]`);
      switch (what) {
        case 'decoded':
          return keep(vae.decode(keep(input('in.latents'))));
        case 'decoded_image_mode':
          return keep(vae.decode(keep(input('in.latents')), { imageMode: true }));
        case 'encoded_mean_scaled':
          return encodeMean('in.video', undefined, true).mean;
        case 'encoded_logvar':
          return encodeMean('in.video').logvar;
        case 'image_latent_mean_scaled':
          return encodeMean('in.image', undefined, true).mean;
        case 'fake_decoded':
          return keep(vae.previewRgb(keep(input('in.latents'))));
        case 'decoded_big_untiled':
          return keep(vae.decode(keep(input('in.latents_big'))));
        case 'decoded_big_tiled':
          return keep(vae.decode(keep(input('in.latents_big')), { tiling }));
        case 'encoded_big_tiled_mean':
          return encodeMean(`in.video_big.${idx}`, tiling).mean;
        case 'encoded_big_untiled_mean':
          return encodeMean(`in.video_big.${idx}`).mean;
        default:
          throw new Error(`vae kind: no rule for output '${what}'`);
      }
    };
    try {
      const pairs: Record<string, { ours: Tensor; ref: Tensor }> = {};
      for (const name of Object.keys(c.json.tensors).filter((n) => n.startsWith('out.'))) {
        const m = /^out\.([a-z_]+?)(?:\.(\d+))?$/.exec(name);
        if (!m) throw new Error(`vae kind: cannot parse output name '${name}'`);
        const ours = compute(m[1], m[2] === undefined ? undefined : Number(m[2]));
        pairs[name] = { ours, ref: keep(c.tensors.tensor(name)) };
      }
      return compareOutputs(pairs, c.tolerance);
    } finally {
      for (const t of owned) t.dispose();
      vae.dispose();
    }
  },
};
