import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { llama3Dir } from './helpers.js';
import { applyPromptTemplate, ClipTokenizer, HUNYUAN_CROP_START, HUNYUAN_PROMPT_TEMPLATE, LlamaTokenizer, TokenizerError } from '@framepack/encoders';


describe('LLaMA-3 tokenizer (tokenizer.json + tokenizer_config.json)', () => {
  const tok = LlamaTokenizer.fromDir(llama3Dir(), { padToken: '<|end_of_text|>' });
  it('prepends <|begin_of_text|> and uses the LLaMA-3 BPE ids', () => {
    // Well-known LLaMA-3 ids: <|begin_of_text|> 128000, "Hello" 9906, " world" 1917.
    expect(tok.encode('Hello world').ids).toEqual([128000, 9906, 1917]);
    expect(tok.tokenize('<|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>').filter((i) => i >= 128000)).toEqual([128006, 128007, 128009]);
  });
  it("the HunyuanVideo template's system part is crop_start = 95 tokens (BOS included)", () => {
    const prefix = HUNYUAN_PROMPT_TEMPLATE.slice(0, HUNYUAN_PROMPT_TEMPLATE.indexOf('{}'));
    expect(tok.encode(prefix).ids.length).toBe(HUNYUAN_CROP_START);
    const full = tok.encode(applyPromptTemplate('A cat walks on the grass.'));
    expect(full.ids.slice(0, 95)).toEqual(tok.encode(prefix).ids); // the prompt starts at a token boundary
    expect(full.ids[full.ids.length - 1]).toBe(128009);
  });
  it('pads on the right to max_length with a mask and truncates keeping BOS', () => {
    const e = tok.encode('Hello world', { maxLength: 6, padding: 'max_length' });
    expect(e.ids).toEqual([128000, 9906, 1917, 128001, 128001, 128001]);
    expect(e.attentionMask).toEqual([1, 1, 1, 0, 0, 0]);
    expect(tok.encode('Hello world Hello world', { maxLength: 3, padding: 'max_length', truncation: true }).ids).toEqual([128000, 9906, 1917]);
    expect(tok.encode('Hello world Hello world', { maxLength: 3, truncation: false }).ids.length).toBe(5);
    // special_tokens_map.json (as HF folders ship it) supplies the pad token over tokenizer_config.json
    const d = mkdtempSync(join(tmpdir(), 'llama-tok-'));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) writeFileSync(join(d, f), readFileSync(join(llama3Dir(), f)));
    writeFileSync(join(d, 'special_tokens_map.json'), JSON.stringify({ bos_token: { content: '<|begin_of_text|>' }, pad_token: '<|eot_id|>' }));
    expect(LlamaTokenizer.fromDir(d).encode('Hello', { maxLength: 3, padding: 'max_length' }).ids).toEqual([128000, 9906, 128009]);
    const noPad = LlamaTokenizer.fromDir(llama3Dir());
    expect(() => noPad.encode('x', { maxLength: 4, padding: 'max_length' })).toThrow(TokenizerError);
    expect(() => LlamaTokenizer.fromDir(mkdtempSync(join(tmpdir(), 'llama-none-')))).toThrow(/no tokenizer.json/);
  });
});

/**
 * A tiny CLIP vocabulary written by hand: merges in priority order, words end in </w>. Expected ids below are
 * derived by applying the merges by hand.
 */
const vocab: Record<string, number> = {
  a: 0, c: 1, f: 2, h: 3, o: 4, p: 5, t: 6, 'a</w>': 7, 'f</w>': 8, 'o</w>': 9, 't</w>': 10, '!</w>': 11, ca: 12, 'cat</w>': 13,
  ph: 14, pho: 15, phot: 16, 'photo</w>': 17, 'of</w>': 18, '<|startoftext|>': 19, '<|endoftext|>': 20, 'c</w>': 21, 'at</w>': 22,
};
const merges = ['c a', 'p h', 'ph o', 'pho t', 'phot o</w>', 'o f</w>', 'ca t</w>', 'a t</w>'];

describe('CLIP tokenizer (vocab.json + merges.txt)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-tok-'));
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(join(dir, 'merges.txt'), `#version: 0.2\n${merges.join('\n')}\n`);
  const tok = ClipTokenizer.fromDir(dir);
  it('lowercases, collapses whitespace, splits words and punctuation, applies merges by rank', () => {
    // a | photo | of | a | cat | !  with BOS/EOS
    expect(tok.encode('A Photo \n of a CAT!').ids).toEqual([19, 7, 17, 18, 7, 13, 11, 20]);
    expect(tok.tokenize('tac at')).toEqual([6, 0, 21, 22]); // no merge applies to "tac"; "at" merges last
  });
  it('pads with <|endoftext|> to 77-style max_length and truncates keeping both specials', () => {
    const e = tok.encode('a cat', { maxLength: 6, padding: 'max_length' });
    expect(e.ids).toEqual([19, 7, 13, 20, 20, 20]);
    expect(e.attentionMask).toEqual([1, 1, 1, 1, 0, 0]);
    expect(tok.encode('a photo of a cat', { maxLength: 4, padding: 'max_length' }).ids).toEqual([19, 7, 17, 20]);
  });
  it('loads tokenizer.json when the vocab files are absent and fails clearly when nothing is there', async () => {
    const { clipTokenizerJson } = await import('@framepack/encoders');
    const d2 = mkdtempSync(join(tmpdir(), 'clip-tok-'));
    writeFileSync(join(d2, 'tokenizer.json'), JSON.stringify(clipTokenizerJson(vocab, merges)));
    expect(ClipTokenizer.fromDir(d2).encode('A Photo of a CAT!').ids).toEqual([19, 7, 17, 18, 7, 13, 11, 20]);
    expect(() => ClipTokenizer.fromDir(mkdtempSync(join(tmpdir(), 'clip-none-')))).toThrow(TokenizerError);
    expect(() => ClipTokenizer.fromVocab({ a: 0 }, [])).toThrow(/not in vocab.json/);
  });
});
