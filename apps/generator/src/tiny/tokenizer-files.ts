/**
 * Tokenizer files for the tiny model family, in the same formats the real checkpoints ship: a byte-level BPE
 * tokenizer.json for LLaMA-3 (with its header/eot special tokens) and CLIP's vocab.json + merges.txt.
 * With no merges every byte is a token, so any prompt tokenizes and every id stays inside the tiny vocabularies.
 */

/** GPT-2's reversible byte -> printable character table (used by both byte-level BPEs). */
export function bytesToUnicode(): string[] {
  const direct = new Set<number>();
  for (const [a, b] of [[33, 126], [161, 172], [174, 255]]) for (let i = a; i <= b; i++) direct.add(i);
  const table: string[] = [];
  let next = 256;
  for (let byte = 0; byte < 256; byte++) table.push(String.fromCodePoint(direct.has(byte) ? byte : next++));
  return table;
}

export const LLAMA_SPECIAL_TOKENS = ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'];

export function llamaTokenizerFiles(): Record<string, unknown> {
  const chars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  chars.forEach((c, i) => (vocab[c] = i));
  const added = LLAMA_SPECIAL_TOKENS.map((content, i) => ({
    id: 256 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  const bos = { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [bos, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [bos, { Sequence: { id: 'A', type_id: 0 } }, bos, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [256], tokens: ['<|begin_of_text|>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [],
    },
  };
  const config = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '<|begin_of_text|>',
    eos_token: '<|end_of_text|>',
    pad_token: '<|end_of_text|>',
    add_bos_token: true,
    model_max_length: 8192,
  };
  return { 'tokenizer.json': tokenizer, 'tokenizer_config.json': config };
}

/** CLIP BPE files: every byte alone and with the end-of-word marker, then the two specials (eos has the top id). */
export function clipTokenizerFiles(): Record<string, unknown> {
  const chars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  for (const c of chars) vocab[c] = Object.keys(vocab).length;
  for (const c of chars) vocab[`${c}</w>`] = Object.keys(vocab).length;
  vocab['<|startoftext|>'] = Object.keys(vocab).length;
  vocab['<|endoftext|>'] = Object.keys(vocab).length;
  const config = {
    tokenizer_class: 'CLIPTokenizer',
    bos_token: '<|startoftext|>',
    eos_token: '<|endoftext|>',
    pad_token: '<|endoftext|>',
    unk_token: '<|endoftext|>',
    model_max_length: 77,
    do_lower_case: true,
  };
  return { 'vocab.json': vocab, 'merges.txt': '#version: 0.2\n', 'tokenizer_config.json': config };
}

export const CLIP_TINY_VOCAB = 2 * 256 + 2;
export const LLAMA_TINY_VOCAB = 256 + LLAMA_SPECIAL_TOKENS.length;
