import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '@framepack/tensor-core';
import { defaultGoldenDir, runGoldenDir } from '../../../tooling/golden/src/index.js'; // by path: a dependency would make a cycle (the runner depends on us)
import { describe, expect, it } from 'vitest';
import {
  applyPromptTemplate,
  ClipTextEncoder,
  ClipTokenizer,
  cropOrPadYieldMask,
  EncoderInputError,
  encodePromptConds,
  HUNYUAN_CROP_START,
  LlamaTextEncoder,
  LlamaTokenizer,
  zeroNegativeConds,
} from '@framepack/encoders';
import { clipShapes, ids, llama3Dir, llamaConfig, llamaShapes, randomWeights, randTensor, relErr } from './helpers.js';

describe('cropOrPadYieldMask', () => {
  it('zero-pads to length with a mask true on the kept tokens', () => {
    const x = randTensor([1, 3, 4], 1);
    const { value, mask } = cropOrPadYieldMask(x, 5);
    expect(value.shape).toEqual([1, 5, 4]);
    const v = value.toFloat32Array(), xv = x.toFloat32Array();
    expect([...v.slice(0, 12)]).toEqual([...xv]);
    expect([...v.slice(12)]).toEqual(new Array(8).fill(0));
    expect(mask.dtype).toBe('bool');
    expect(mask.toArray()).toEqual([1, 1, 1, 0, 0]);
  });
  it('crops longer inputs with an all-true mask', () => {
    const x = randTensor([2, 6, 3], 2);
    const { value, mask } = cropOrPadYieldMask(x, 4);
    expect(relErr(value, T.slice(T.transpose(T.slice(T.transpose(x, 0, 1), 0, 0, 4), 0, 1), 0, 0, 2))).toBe(0);
    expect(mask.toArray()).toEqual(new Array(8).fill(1));
    expect(() => cropOrPadYieldMask(T.zeros([3, 4]), 2)).toThrow(EncoderInputError);
  });
});

describe('encodePromptConds (tiny random models, real LLaMA-3 tokenizer)', () => {
  const L = { vocab: 128256, D: 8, ff: 16, layers: 3, heads: 2, kv: 1, hd: 4 };
  const llama = LlamaTextEncoder.fromWeights(llamaConfig(L), randomWeights(llamaShapes(L), 11));
  const llamaTokenizer = LlamaTokenizer.fromDir(llama3Dir(), { padToken: '<|end_of_text|>' });
  const vocab: Record<string, number> = { a: 0, c: 1, t: 2, 'a</w>': 3, 't</w>': 4, 'cat</w>': 5, ca: 6, '<|startoftext|>': 7, '<|endoftext|>': 8 };
  const dir = mkdtempSync(join(tmpdir(), 'clip-'));
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\nc a\nca t</w>\n');
  const clipTokenizer = ClipTokenizer.fromDir(dir);
  const C = { vocab: 9, D: 8, ff: 16, layers: 1, pos: 77 };
  const clip = ClipTextEncoder.fromWeights({ vocab_size: 9, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 77, eos_token_id: 2 }, randomWeights(clipShapes(C), 12));

  it('keeps the prompt tokens of hidden_states[-3], zero-padded to 512, and the CLIP pooled vector at the EOS', () => {
    const prompt = 'a cat';
    const conds = encodePromptConds(prompt, { llama, clip, llamaTokenizer, clipTokenizer });
    const tokens = llamaTokenizer.encode(applyPromptTemplate(prompt)).ids; // unpadded
    const nText = tokens.length - HUNYUAN_CROP_START;
    expect(conds.llamaVec.shape).toEqual([1, 512, 8]);
    expect(conds.llamaMask.toArray().reduce((a, b) => a + b, 0)).toBe(nText);
    // The reference's path: padded to 256 + 95 with the attention mask, layer output index 1 (= hidden_states[-3]
    // of 3 layers), then [95, valid).
    const padded = [...tokens, ...new Array(351 - tokens.length).fill(128001)];
    const mask = padded.map((_, i) => (i < tokens.length ? 1 : 0));
    const ref = T.slice(llama.forward(ids([padded]), ids([mask]), { hiddenStateIndex: 1 }), 1, HUNYUAN_CROP_START, tokens.length);
    expect(relErr(T.slice(conds.llamaVec, 1, 0, nText), ref)).toBeLessThan(1e-6);
    expect(T.slice(conds.llamaVec, 1, nText, 512).toFloat32Array().every((v) => v === 0)).toBe(true);
    // CLIP: <start> a cat <end> <pad>... pooled at the first max id (the EOS at position 3)
    const full = clip.forward(ids([[7, 3, 5, 8, ...new Array(73).fill(8)]]));
    expect(relErr(conds.clipPooler, T.reshape(T.slice(full, 1, 3, 4), [1, 8]))).toBe(0);

    const neg = zeroNegativeConds(conds);
    expect(neg.llamaVec.shape).toEqual([1, 512, 8]);
    expect(neg.llamaVec.toFloat32Array().every((v) => v === 0) && neg.clipPooler.toFloat32Array().every((v) => v === 0)).toBe(true);
    expect(neg.llamaMask.toArray()).toEqual(conds.llamaMask.toArray());
  });
  it('refuses a left-padding tokenizer (the crop assumes right padding)', async () => {
    const { readFileSync } = await import('node:fs');
    const j = JSON.parse(readFileSync(join(llama3Dir(), 'tokenizer.json'), 'utf8'));
    const left = LlamaTokenizer.fromJson(j, { padding_side: 'left', pad_token: '<|end_of_text|>' });
    expect(() => encodePromptConds('a cat', { llama, clip, llamaTokenizer: left, clipTokenizer })).toThrow(/right padding/);
  });
  it('cuts prompts to maxLength tokens', () => {
    const long = new Array(40).fill('cat').join(' ');
    const c = encodePromptConds(long, { llama, clip, llamaTokenizer, clipTokenizer, maxLength: 16, padLength: 24 });
    expect(c.llamaVec.shape).toEqual([1, 24, 8]);
    expect(c.llamaMask.toArray().reduce((a, b) => a + b, 0)).toBe(16);
  });
});

describe.skipIf(!existsSync(defaultGoldenDir()))('golden: encoders', () => {
  it('every llama, clip-text and siglip-vision case passes', async () => {
    const results = await runGoldenDir(defaultGoldenDir(), { only: ['llama', 'clip-text', 'siglip-vision'] });
    expect(results.length).toBeGreaterThanOrEqual(3);
    for (const r of results) expect(r.status, `${r.case}: ${r.error ?? r.note ?? JSON.stringify(r.details)}`).toBe('pass');
  });
});
