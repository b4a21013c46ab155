import * as T from '@framepack/tensor-core';
import type { ClipTextEncoder } from './clip-text.js';
import { EncoderInputError } from './errors.js';
import type { LlamaTextEncoder } from './llama.js';
import type { ClipTokenizer, LlamaTokenizer } from './tokenizers.js';

/**
 * HunyuanVideo's DEFAULT_PROMPT_TEMPLATE (diffusers pipeline_hunyuan_video): the user prompt replaces `{}`.
 * The numbered items are joined without spaces, exactly as the source concatenates its pieces.
 */
export const HUNYUAN_PROMPT_TEMPLATE =
  '<|start_header_id|>system<|end_header_id|>\n\nDescribe the video by detailing the following aspects: ' +
  '1. The main content and theme of the video.' +
  '2. The color, shape, size, texture, quantity, text, and spatial relationships of the objects.' +
  '3. Actions, events, behaviors temporal relationships, physical movement changes of the objects.' +
  '4. background environment, light, style and atmosphere.' +
  '5. camera angles, movements, and transitions used in the video:<|eot_id|>' +
  '<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>';
/** Tokens of the template before the user prompt (BOS + system block + user header), cropped from the output. */
export const HUNYUAN_CROP_START = 95;

/** Fill the template with a prompt (the first `{}` only, like str.format with one field). */
export function applyPromptTemplate(prompt: string, template = HUNYUAN_PROMPT_TEMPLATE): string {
  const i = template.indexOf('{}');
  if (i < 0) throw new EncoderInputError('the prompt template has no {} placeholder');
  return template.slice(0, i) + prompt + template.slice(i + 2);
}

/**
 * FramePack's crop_or_pad_yield_mask: x (B, F, C) -> (B, length, C) zero-padded (or cropped) plus a bool mask
 * (B, length) that is true on the first min(F, length) positions.
 */
export function cropOrPadYieldMask(x: T.Tensor, length: number): { value: T.Tensor; mask: T.Tensor } {
  if (x.ndim !== 3) throw new EncoderInputError(`cropOrPadYieldMask expects (batch, tokens, channels), got [${x.shape}]`);
  if (!Number.isInteger(length) || length < 1) throw new EncoderInputError(`length must be a positive integer, got ${length}`);
  const [B, F] = x.shape;
  return T.tidy(() => {
    const keep = Math.min(F, length);
    const value = F < length ? T.pad(x, [[0, length - F], [0, 0]], 'constant', 0) : T.clone(T.slice(x, 1, 0, length));
    const m = new Uint8Array(B * length);
    for (let b = 0; b < B; b++) m.fill(1, b * length, b * length + keep);
    return { value, mask: T.tensor(m, [B, length], { dtype: 'bool', device: x.device }) };
  });
}

export interface PromptConds {
  /** LLaMA features (1, length, hidden), zero beyond the prompt's tokens. */
  llamaVec: T.Tensor;
  /** (1, length) bool, true on the prompt's tokens. */
  llamaMask: T.Tensor;
  /** CLIP-L pooled output (1, hidden). */
  clipPooler: T.Tensor;
}

export interface EncodePromptOptions {
  llama: LlamaTextEncoder;
  clip: ClipTextEncoder;
  llamaTokenizer: LlamaTokenizer;
  clipTokenizer: ClipTokenizer;
  /** Most prompt tokens kept (FramePack: 256). */
  maxLength?: number;
  /** Padded length of llamaVec / llamaMask (FramePack: 512). */
  padLength?: number;
  /** Which hidden state (FramePack: -3). */
  hiddenStateIndex?: number;
  template?: string;
  cropStart?: number;
  /** CLIP tokenizer length (77). */
  clipMaxLength?: number;
}

/**
 * The LLaMA features of one prompt as FramePack's encode_prompt_conds: template, tokenize with right padding to
 * maxLength + cropStart, hidden_states[-3], keep [cropStart, validLength). Returns (1, L_text, hidden).
 */
export function encodeLlamaPrompt(
  prompt: string,
  llama: LlamaTextEncoder,
  tokenizer: LlamaTokenizer,
  opts: { maxLength?: number; hiddenStateIndex?: number; template?: string; cropStart?: number } = {},
): T.Tensor {
  const cropStart = opts.cropStart ?? HUNYUAN_CROP_START;
  const enc = tokenizer.encode(applyPromptTemplate(prompt, opts.template), { maxLength: (opts.maxLength ?? 256) + cropStart, padding: 'max_length', truncation: true });
  const valid = enc.attentionMask.reduce((a, b) => a + b, 0);
  if (valid <= cropStart) throw new EncoderInputError(`the templated prompt has ${valid} tokens, not more than crop_start (${cropStart}); is this the HunyuanVideo LLaMA tokenizer?`);
  for (let i = 0; i < valid; i++)
    if (!enc.attentionMask[i]) throw new EncoderInputError('the tokenizer pads on the left; FramePack needs right padding (tokenizer_config.json padding_side)');
  // With right padding and causal attention the real tokens never see the padding, so running the valid
  // tokens alone gives the same hidden states as the reference's padded call (and skips the padded compute).
  const ids = T.tensor(BigInt64Array.from(enc.ids.slice(0, valid), (v) => BigInt(v)), [1, valid], { dtype: 'i64' });
  try {
    const hidden = llama.forward(ids, null, { hiddenStateIndex: opts.hiddenStateIndex ?? -3 });
    const out = T.tidy(() => T.clone(T.slice(hidden, 1, cropStart, valid)));
    hidden.dispose();
    return out;
  } finally {
    ids.dispose();
  }
}

/**
 * hidden[:, cropStart:validLength] where validLength = attentionMask.sum() (batch 1), asserting the kept span is
 * all real tokens (right padding), as encode_prompt_conds does. `disposeInput` frees `hidden`.
 */
export function cropLlamaHidden(hidden: T.Tensor, attentionMask: T.Tensor, cropStart: number, disposeInput = false): T.Tensor {
  if (hidden.shape[0] !== 1) throw new EncoderInputError(`cropLlamaHidden handles batch 1 (as FramePack), got batch ${hidden.shape[0]}`);
  const m = attentionMask.toArray();
  const valid = m.reduce((a, b) => a + (b ? 1 : 0), 0);
  for (let i = cropStart; i < valid; i++)
    if (!m[i]) throw new EncoderInputError('the attention mask has padding inside the prompt span; the tokenizer must pad on the right');
  const out = T.tidy(() => T.clone(T.slice(hidden, 1, cropStart, valid)));
  if (disposeInput) hidden.dispose();
  return out;
}

/** CLIP-L pooled output of one prompt: tokenize padded to 77, no attention mask (causal only). (1, hidden). */
export function encodeClipPrompt(prompt: string, clip: ClipTextEncoder, tokenizer: ClipTokenizer, maxLength = 77): T.Tensor {
  const enc = tokenizer.encode(prompt, { maxLength, padding: 'max_length', truncation: true });
  const ids = T.tensor(BigInt64Array.from(enc.ids, (v) => BigInt(v)), [1, enc.ids.length], { dtype: 'i64' });
  try {
    return clip.pooled(ids);
  } finally {
    ids.dispose();
  }
}

/** FramePack's encode_prompt_conds + crop_or_pad_yield_mask(llama_vec, 512). */
export function encodePromptConds(prompt: string, opts: EncodePromptOptions): PromptConds {
  if (typeof prompt !== 'string') throw new EncoderInputError('prompt must be a string');
  const vec = encodeLlamaPrompt(prompt, opts.llama, opts.llamaTokenizer, opts);
  const { value, mask } = cropOrPadYieldMask(vec, opts.padLength ?? 512);
  vec.dispose();
  const clipPooler = encodeClipPrompt(prompt, opts.clip, opts.clipTokenizer, opts.clipMaxLength ?? 77);
  return { llamaVec: value, llamaMask: mask, clipPooler };
}

/**
 * The negative conditioning FramePack uses when cfg == 1: zeros shaped like the positive ones, with the
 * same mask (the zero vector is "valid" on the positive prompt's token span).
 */
export function zeroNegativeConds(positive: PromptConds): PromptConds {
  return {
    llamaVec: T.zerosLike(positive.llamaVec),
    llamaMask: T.clone(positive.llamaMask),
    clipPooler: T.zerosLike(positive.clipPooler),
  };
}

export function disposePromptConds(c: PromptConds): void {
  c.llamaVec.dispose();
  c.llamaMask.dispose();
  c.clipPooler.dispose();
}
