import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { TokenizerError } from './errors.js';

export interface EncodeOptions {
  /** Pad/truncate to this many tokens (special tokens included). */
  maxLength?: number;
  /** 'max_length' pads to maxLength; 'none' leaves the length as is. Default 'none'. */
  padding?: 'max_length' | 'none';
  /** Cut to maxLength (the specials are kept, text tokens are cut). Default true when maxLength is set. */
  truncation?: boolean;
}
export interface TokenizedText {
  ids: number[];
  /** 1 on real tokens, 0 on padding. */
  attentionMask: number[];
}

function readJson(p: string, what: string): Record<string, any> {
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new TokenizerError(`${what} is not valid JSON (${(e as Error).message})`, p);
  }
}
/**
 * tokenizer_config.json with special_tokens_map.json laid over it (transformers' from_pretrained lets the map
 * override the config's special tokens).
 */
function readTokenizerConfig(dir: string): Record<string, any> {
  const cp = join(dir, 'tokenizer_config.json'), sp = join(dir, 'special_tokens_map.json');
  const config = existsSync(cp) ? readJson(cp, 'tokenizer_config.json') : {};
  const map = existsSync(sp) ? readJson(sp, 'special_tokens_map.json') : {};
  for (const [k, v] of Object.entries(map)) if (k.endsWith('_token') && v !== null) config[k] = v;
  return config;
}

/** tokenizer_config.json stores special tokens as strings or AddedToken dicts. */
function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

/**
 * Shared: a tokenizers.js model that turns text into ids without specials, plus the specials, padding and
 * truncation of the transformers tokenizer class the reference uses.
 */
abstract class SpecialsTokenizer {
  protected constructor(
    protected readonly tok: Tokenizer,
    readonly bosTokenId: number | null,
    readonly eosTokenId: number | null,
    readonly padTokenId: number | null,
    readonly paddingSide: 'right' | 'left',
  ) {}

  /** Ids of the text alone (no BOS/EOS). */
  tokenize(text: string): number[] {
    if (typeof text !== 'string') throw new TokenizerError('text must be a string');
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }
  protected abstract prefix(): number[];
  protected abstract suffix(): number[];

  /** Tokenize with the reference's specials, truncation (longest_first for one text) and padding. */
  encode(text: string, opts: EncodeOptions = {}): TokenizedText {
    const pre = this.prefix(), post = this.suffix();
    let body = this.tokenize(text);
    const max = opts.maxLength;
    if (max !== undefined && (!Number.isInteger(max) || max < pre.length + post.length)) throw new TokenizerError(`maxLength ${max} leaves no room for the ${pre.length + post.length} special tokens`);
    if (max !== undefined && (opts.truncation ?? true)) body = body.slice(0, Math.max(0, max - pre.length - post.length));
    const ids = [...pre, ...body, ...post];
    const attentionMask = ids.map(() => 1);
    if (opts.padding === 'max_length') {
      if (max === undefined) throw new TokenizerError("padding 'max_length' needs maxLength");
      if (this.padTokenId === null) throw new TokenizerError('this tokenizer has no pad token (tokenizer_config.json pad_token); pass padToken when loading it');
      const n = Math.max(0, max - ids.length);
      const pad = new Array<number>(n).fill(this.padTokenId), zeros = new Array<number>(n).fill(0);
      return this.paddingSide === 'right' ? { ids: [...ids, ...pad], attentionMask: [...attentionMask, ...zeros] } : { ids: [...pad, ...ids], attentionMask: [...zeros, ...attentionMask] };
    }
    return { ids, attentionMask };
  }
  decode(ids: number[], skipSpecialTokens = true): string {
    return this.tok.decode(ids, { skip_special_tokens: skipSpecialTokens });
  }
  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }
}

export interface LlamaTokenizerOptions {
  /** Override the pad token (string) when tokenizer_config.json has none. */
  padToken?: string;
}

/**
 * The LLaMA-3 tokenizer as transformers' LlamaTokenizerFast loads it from a folder: tokenizer.json (byte-level
 * BPE + added special tokens), BOS prepended when add_bos_token (default true), EOS appended when
 * add_eos_token (default false), padding side and pad token from tokenizer_config.json.
 */
export class LlamaTokenizer extends SpecialsTokenizer {
  constructor(
    tok: Tokenizer,
    bos: number | null,
    eos: number | null,
    pad: number | null,
    side: 'right' | 'left',
    readonly addBos: boolean,
    readonly addEos: boolean,
  ) {
    super(tok, bos, eos, pad, side);
  }

  static fromDir(dir: string, opts: LlamaTokenizerOptions = {}): LlamaTokenizer {
    const tj = join(dir, 'tokenizer.json');
    if (!existsSync(tj)) throw new TokenizerError('no tokenizer.json in this folder (the LLaMA tokenizer needs the fast-tokenizer file)', dir);
    return LlamaTokenizer.fromJson(readJson(tj, 'tokenizer.json'), readTokenizerConfig(dir), opts, dir);
  }
  static fromJson(tokenizerJson: Record<string, any>, config: Record<string, any> = {}, opts: LlamaTokenizerOptions = {}, where = 'tokenizer'): LlamaTokenizer {
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(tokenizerJson, config);
    } catch (e) {
      throw new TokenizerError(`tokenizer.json cannot be used (${(e as Error).message})`, where);
    }
    const id = (field: string, fallback: string | null): number | null => {
      const s = tokenString(config[field]) ?? fallback;
      if (s === null) return null;
      const v = tok.token_to_id(s);
      if (v === undefined) throw new TokenizerError(`${field} '${s}' is not in the vocabulary`, where);
      return v;
    };
    const bos = id('bos_token', '<|begin_of_text|>');
    const eos = id('eos_token', null);
    const pad = opts.padToken !== undefined ? (tok.token_to_id(opts.padToken) ?? (() => { throw new TokenizerError(`pad token '${opts.padToken}' is not in the vocabulary`, where); })()) : id('pad_token', null);
    const addBos = config.add_bos_token ?? true;
    const addEos = config.add_eos_token ?? false;
    if (addBos && bos === null) throw new TokenizerError('add_bos_token is set but there is no bos_token', where);
    if (addEos && eos === null) throw new TokenizerError('add_eos_token is set but there is no eos_token', where);
    return new LlamaTokenizer(tok, bos, eos, pad, config.padding_side === 'left' ? 'left' : 'right', addBos, addEos);
  }
  protected prefix(): number[] {
    return this.addBos ? [this.bosTokenId!] : [];
  }
  protected suffix(): number[] {
    return this.addEos ? [this.eosTokenId!] : [];
  }
}

/** The part of openai CLIP's vocabulary that is used: the slow CLIPTokenizer keeps 49152 - 256 - 2 merges. */
const CLIP_MAX_MERGES = 49152 - 256 - 2;

/**
 * The tokenizer.json equivalent of a CLIP vocab.json + merges.txt (what transformers' CLIPConverter builds):
 * NFC, whitespace runs -> one space, lowercase; split into letters runs / single digits / punctuation runs and
 * contractions; byte-level alphabet; BPE with the `</w>` end-of-word suffix.
 */
export function clipTokenizerJson(vocab: Record<string, number>, merges: string[], bos = '<|startoftext|>', eos = '<|endoftext|>', unk = eos): Record<string, any> {
  const special = (content: string) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(bos), special(eos)],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: unk, continuing_subword_prefix: '', end_of_word_suffix: '</w>', fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

/**
 * The CLIP tokenizer as transformers' CLIPTokenizer: <|startoftext|> text <|endoftext|>, padded with pad_token
 * (openai: <|endoftext|>) on the right, truncated keeping both specials. Loads vocab.json + merges.txt (as the
 * slow tokenizer) or, when only that exists, tokenizer.json.
 */
export class ClipTokenizer extends SpecialsTokenizer {
  static fromDir(dir: string): ClipTokenizer {
    const vp = join(dir, 'vocab.json'), mp = join(dir, 'merges.txt'), tj = join(dir, 'tokenizer.json');
    const config = readTokenizerConfig(dir);
    if (existsSync(vp) && existsSync(mp)) {
      const vocab = readJson(vp, 'vocab.json') as Record<string, number>;
      const merges = readFileSync(mp, 'utf8').trim().split('\n').slice(1, CLIP_MAX_MERGES + 1);
      return ClipTokenizer.fromVocab(vocab, merges, config, dir);
    }
    if (existsSync(tj)) {
      const j = readJson(tj, 'tokenizer.json');
      return ClipTokenizer.fromTokenizer(j, config, dir);
    }
    throw new TokenizerError('no vocab.json + merges.txt (or tokenizer.json) in this folder', dir);
  }
  /** From vocab.json contents and merge lines ("a b", without the #version header). */
  static fromVocab(vocab: Record<string, number>, merges: string[], config: Record<string, any> = {}, where = 'tokenizer'): ClipTokenizer {
    const bos = tokenString(config.bos_token) ?? '<|startoftext|>', eos = tokenString(config.eos_token) ?? '<|endoftext|>';
    for (const t of [bos, eos]) if (vocab[t] === undefined) throw new TokenizerError(`special token '${t}' is not in vocab.json`, where);
    return ClipTokenizer.fromTokenizer(clipTokenizerJson(vocab, merges.filter((l) => l.length > 0), bos, eos, tokenString(config.unk_token) ?? eos), config, where);
  }
  static fromTokenizer(tokenizerJson: Record<string, any>, config: Record<string, any> = {}, where = 'tokenizer'): ClipTokenizer {
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(tokenizerJson, config);
    } catch (e) {
      throw new TokenizerError(`the CLIP tokenizer cannot be built (${(e as Error).message})`, where);
    }
    const id = (s: string) => {
      const v = tok.token_to_id(s);
      if (v === undefined) throw new TokenizerError(`'${s}' is not in the vocabulary`, where);
      return v;
    };
    const bos = id(tokenString(config.bos_token) ?? '<|startoftext|>'), eos = id(tokenString(config.eos_token) ?? '<|endoftext|>');
    const pad = id(tokenString(config.pad_token) ?? '<|endoftext|>');
    return new ClipTokenizer(tok, bos, eos, pad, config.padding_side === 'left' ? 'left' : 'right');
  }
  protected prefix(): number[] {
    return [this.bosTokenId!];
  }
  protected suffix(): number[] {
    return [this.eosTokenId!];
  }
}
