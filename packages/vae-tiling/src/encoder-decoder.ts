/** HunyuanVideoEncoder3D / HunyuanVideoDecoder3D forward passes (no tiling here: see tiling.ts). */
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import type { HunyuanVideoVaeConfig, VaeLayout } from './config.js';
import { causalConv3d, groupNorm, midBlock, pipe, pointwiseConv, resnetBlock, upsampleCausal } from './layers.js';
import type { VaeWeights } from './weights.js';

/** Pixels (B, Cin, F, H, W) -> moments (B, 2*latent, 1+(F-1)//4, ceil(H/8), ceil(W/8)) after quant_conv. */
export function encodeMoments(x: Tensor, w: VaeWeights, c: HunyuanVideoVaeConfig, layout: VaeLayout): Tensor {
  const g = c.normNumGroups;
  const steps: ((t: Tensor) => Tensor)[] = [(t) => causalConv3d(t, w, 'encoder.conv_in.conv')];
  layout.down.forEach((b, i) => {
    for (let j = 0; j < b.numLayers; j++) steps.push((t) => resnetBlock(t, w, `encoder.down_blocks.${i}.resnets.${j}`, g));
    if (b.downsampleStride) {
      const stride = b.downsampleStride;
      steps.push((t) => causalConv3d(t, w, `encoder.down_blocks.${i}.downsamplers.0.conv.conv`, stride));
    }
  });
  steps.push(
    (t) => midBlock(t, w, 'encoder.mid_block', g, c.midBlockAddAttention),
    (t) => groupNorm(t, w, 'encoder.conv_norm_out', g),
    T.silu,
    (t) => causalConv3d(t, w, 'encoder.conv_out.conv'),
    (t) => pointwiseConv(t, w, 'quant_conv'),
  );
  return pipe(x, ...steps);
}

/** Latents (B, latent, t, h, w) (already divided by the scaling factor) -> pixels (B, Cout, 1+4(t-1), 8h, 8w). */
export function decodeLatents(z: Tensor, w: VaeWeights, c: HunyuanVideoVaeConfig, layout: VaeLayout): Tensor {
  const g = c.normNumGroups;
  const steps: ((t: Tensor) => Tensor)[] = [
    (t) => pointwiseConv(t, w, 'post_quant_conv'),
    (t) => causalConv3d(t, w, 'decoder.conv_in.conv'),
    (t) => midBlock(t, w, 'decoder.mid_block', g, c.midBlockAddAttention),
  ];
  layout.up.forEach((b, i) => {
    for (let j = 0; j < b.numLayers; j++) steps.push((t) => resnetBlock(t, w, `decoder.up_blocks.${i}.resnets.${j}`, g));
    if (b.upsampleFactor) {
      const f = b.upsampleFactor;
      steps.push((t) => upsampleCausal(t, w, `decoder.up_blocks.${i}.upsamplers.0`, f));
    }
  });
  steps.push(
    (t) => groupNorm(t, w, 'decoder.conv_norm_out', g),
    T.silu,
    (t) => causalConv3d(t, w, 'decoder.conv_out.conv'),
  );
  return pipe(z, ...steps);
}
