import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { adaModulation, attentionBLHD, headRmsNorm, modulate, splitHeads } from './attention.js';
import { applyRope } from './rope.js';
import type { ParamScope } from './weights.js';

/** What every block needs besides its weights and the two streams. */
export interface BlockContext {
  temb: Tensor;
  /** Per-image-token rope tables, (B|1, N, 1, hd) each, f32. */
  ropeCos: Tensor;
  ropeSin: Tensor;
  /** Key mask over the joint sequence [image | context], bool (B, 1, 1, N+M); null = every token is valid. */
  mask: Tensor | null;
  heads: number;
}

const lin = (p: ParamScope, name: string, x: Tensor) => T.linear(x, p.get(`${name}.weight`), p.get(`${name}.bias`));
/** FeedForward with GELU(tanh): net.2(gelu(net.0.proj(x))). */
const geluMlp = (p: ParamScope, x: Tensor) => lin(p, 'net.2', T.gelu(lin(p, 'net.0.proj', x), 'tanh'));

/** The adaLN-modulated, normalised image stream of a dual block (norm1 output): TeaCache/MagCache's input. */
export function dualBlockModulatedInput(p: ParamScope, x: Tensor, temb: Tensor): Tensor {
  return T.tidy(() => {
    const [shift, scale] = adaModulation(temb, p.get('norm1.linear.weight'), p.get('norm1.linear.bias'), 6);
    return modulate(x, shift, scale);
  });
}

/**
 * HunyuanVideoTransformerBlock (dual stream): separate weights for image tokens x (B, N, D) and context
 * tokens c (B, M, D), one joint attention over [x | c]; rope on the image queries/keys only.
 */
export function dualStreamBlock(p: ParamScope, x: Tensor, c: Tensor, ctx: BlockContext): [Tensor, Tensor] {
  return T.tidy(() => {
    const N = x.shape[1];
    const [shift, scale, gate, shiftMlp, scaleMlp, gateMlp] = adaModulation(ctx.temb, p.get('norm1.linear.weight'), p.get('norm1.linear.bias'), 6);
    const [cShift, cScale, cGate, cShiftMlp, cScaleMlp, cGateMlp] = adaModulation(ctx.temb, p.get('norm1_context.linear.weight'), p.get('norm1_context.linear.bias'), 6);
    const xn = modulate(x, shift, scale);
    const cn = modulate(c, cShift, cScale);

    const a = p.at('attn');
    const qi = applyRope(headRmsNorm(splitHeads(lin(a, 'to_q', xn), ctx.heads), a.get('norm_q.weight')), ctx.ropeCos, ctx.ropeSin);
    const ki = applyRope(headRmsNorm(splitHeads(lin(a, 'to_k', xn), ctx.heads), a.get('norm_k.weight')), ctx.ropeCos, ctx.ropeSin);
    const vi = splitHeads(lin(a, 'to_v', xn), ctx.heads);
    const qc = headRmsNorm(splitHeads(lin(a, 'add_q_proj', cn), ctx.heads), a.get('norm_added_q.weight'));
    const kc = headRmsNorm(splitHeads(lin(a, 'add_k_proj', cn), ctx.heads), a.get('norm_added_k.weight'));
    const vc = splitHeads(lin(a, 'add_v_proj', cn), ctx.heads);
    const joint = attentionBLHD(T.cat([qi, qc], 1), T.cat([ki, kc], 1), T.cat([vi, vc], 1), ctx.mask);
    const attnX = lin(a, 'to_out.0', T.slice(joint, 1, 0, N));
    const attnC = lin(a, 'to_add_out', T.slice(joint, 1, N));

    const x1 = T.add(x, T.mul(attnX, gate));
    const c1 = T.add(c, T.mul(attnC, cGate));
    const x2 = T.add(x1, T.mul(gateMlp, geluMlp(p.at('ff'), modulate(x1, shiftMlp, scaleMlp))));
    const c2 = T.add(c1, T.mul(cGateMlp, geluMlp(p.at('ff_context'), modulate(c1, cShiftMlp, cScaleMlp))));
    return [x2, c2];
  });
}

/**
 * HunyuanVideoSingleTransformerBlock: one set of weights over the concatenated [x | c], attention (no output
 * projection) and a GELU MLP in parallel, fused by proj_out and gated; rope on the first N (image) positions.
 */
export function singleStreamBlock(p: ParamScope, x: Tensor, c: Tensor, ctx: BlockContext): [Tensor, Tensor] {
  return T.tidy(() => {
    const N = x.shape[1];
    const h = T.cat([x, c], 1);
    const [shift, scale, gate] = adaModulation(ctx.temb, p.get('norm.linear.weight'), p.get('norm.linear.bias'), 3);
    const hn = modulate(h, shift, scale);
    const mlp = T.gelu(lin(p, 'proj_mlp', hn), 'tanh');

    const a = p.at('attn');
    const ropeFirst = (t: Tensor) => T.cat([applyRope(T.slice(t, 1, 0, N), ctx.ropeCos, ctx.ropeSin), T.slice(t, 1, N)], 1);
    const q = ropeFirst(headRmsNorm(splitHeads(lin(a, 'to_q', hn), ctx.heads), a.get('norm_q.weight')));
    const k = ropeFirst(headRmsNorm(splitHeads(lin(a, 'to_k', hn), ctx.heads), a.get('norm_k.weight')));
    const v = splitHeads(lin(a, 'to_v', hn), ctx.heads);
    const attn = attentionBLHD(q, k, v, ctx.mask);

    const out = T.add(T.mul(gate, lin(p, 'proj_out', T.cat([attn, mlp], 2))), h);
    return [T.slice(out, 1, 0, N), T.slice(out, 1, N)];
  });
}
