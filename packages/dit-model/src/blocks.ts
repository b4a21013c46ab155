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

/** Dispose intermediates as soon as they are no longer needed (the enclosing tidy would only free them at its end). */
const free = (...ts: Tensor[]) => {
  for (const t of ts) t.dispose();
};
/** q or k of one stream: projection, per-head RMS norm, and rope when tables are given. (B, L, H, hd) */
function queryKey(a: ParamScope, proj: string, norm: string, x: Tensor, heads: number, rope?: { cos: Tensor; sin: Tensor }): Tensor {
  return T.tidy(() => {
    const n = headRmsNorm(splitHeads(lin(a, proj, x), heads), a.get(`${norm}.weight`));
    return rope ? applyRope(n, rope.cos, rope.sin) : n;
  });
}
/** x + y * gate, freeing y. */
function gatedResidual(x: Tensor, y: Tensor, gate: Tensor): Tensor {
  const out = T.tidy(() => T.add(x, T.mul(y, gate)));
  y.dispose();
  return out;
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

    // joint attention
    const a = p.at('attn');
    const rope = { cos: ctx.ropeCos, sin: ctx.ropeSin };
    const xn = modulate(x, shift, scale);
    const qi = queryKey(a, 'to_q', 'norm_q', xn, ctx.heads, rope);
    const ki = queryKey(a, 'to_k', 'norm_k', xn, ctx.heads, rope);
    const vi = splitHeads(lin(a, 'to_v', xn), ctx.heads);
    free(xn);
    const cn = modulate(c, cShift, cScale);
    const qc = queryKey(a, 'add_q_proj', 'norm_added_q', cn, ctx.heads);
    const kc = queryKey(a, 'add_k_proj', 'norm_added_k', cn, ctx.heads);
    const vc = splitHeads(lin(a, 'add_v_proj', cn), ctx.heads);
    free(cn);
    const joint = T.tidy(() => attentionBLHD(T.cat([qi, qc], 1), T.cat([ki, kc], 1), T.cat([vi, vc], 1), ctx.mask));
    free(qi, ki, vi, qc, kc, vc);
    const attnX = T.tidy(() => lin(a, 'to_out.0', T.slice(joint, 1, 0, N)));
    const attnC = T.tidy(() => lin(a, 'to_add_out', T.slice(joint, 1, N)));
    free(joint);
    const x1 = gatedResidual(x, attnX, gate);
    const c1 = gatedResidual(c, attnC, cGate);

    // feed-forward
    const ffX = T.tidy(() => geluMlp(p.at('ff'), modulate(x1, shiftMlp, scaleMlp)));
    const x2 = gatedResidual(x1, ffX, gateMlp);
    free(x1);
    const ffC = T.tidy(() => geluMlp(p.at('ff_context'), modulate(c1, cShiftMlp, cScaleMlp)));
    const c2 = gatedResidual(c1, ffC, cGateMlp);
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
    const mlp = T.tidy(() => T.gelu(lin(p, 'proj_mlp', hn), 'tanh'));

    const a = p.at('attn');
    // rope on the image positions only
    const ropeFirst = (t: Tensor) => T.cat([applyRope(T.slice(t, 1, 0, N), ctx.ropeCos, ctx.ropeSin), T.slice(t, 1, N)], 1);
    const q = T.tidy(() => ropeFirst(queryKey(a, 'to_q', 'norm_q', hn, ctx.heads)));
    const k = T.tidy(() => ropeFirst(queryKey(a, 'to_k', 'norm_k', hn, ctx.heads)));
    const v = splitHeads(lin(a, 'to_v', hn), ctx.heads);
    free(hn);
    const attn = attentionBLHD(q, k, v, ctx.mask);
    free(q, k, v);
    const fused = T.cat([attn, mlp], 2);
    free(attn, mlp);
    const proj = lin(p, 'proj_out', fused);
    free(fused);
    const out = T.tidy(() => T.add(T.mul(gate, proj), h));
    free(proj, h);
    return [T.slice(out, 1, 0, N), T.slice(out, 1, N)];
  });
}
