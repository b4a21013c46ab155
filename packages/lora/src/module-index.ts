import { LoraError } from './errors.js';

/**
 * The targetable modules of a model, built from its real parameter list (key -> shape).
 *
 * A LoRA names a *module* (a linear or conv layer); the model stores `<module>.weight`. Three naming
 * schemes reach the same weights:
 *  - packed/diffusers names (`transformer_blocks.0.attn.to_q`), the names our weight map uses;
 *  - original HunyuanVideo names (`double_blocks.0.img_attn_qkv`), some of which are *fused*: one
 *    original module feeds several packed weights, split along the output rows;
 *  - kohya "flat" names: either of the above with every `.` replaced by `_`. Underscores are ambiguous
 *    (`add_k_proj`), so flat names are resolved by looking them up in this index, never by string surgery.
 */

/** One packed weight fed by (a row range of) a LoRA module's output. */
export interface TargetPart {
  /** Weight key in the model's parameter map (`...to_q.weight`). */
  key: string;
  /** Row range [start, end) of the LoRA module's up/B matrix that belongs to this weight. */
  rows: readonly [number, number];
  /** The original module stores the two halves of its output in the opposite order (final_layer adaLN: shift/scale). */
  swapHalves?: boolean;
}

export interface ModuleTarget {
  /** Canonical dotted module name (packed or original naming). */
  name: string;
  naming: 'packed' | 'original';
  /** Total output rows of the module (sum of the parts). */
  outFeatures: number;
  /** Input shape of the weight after the output dim (e.g. [in] for a linear, [in, kt, kh, kw] for a conv). */
  inShape: readonly number[];
  parts: readonly TargetPart[];
}

export type ParamShapes = ReadonlyMap<string, readonly number[]> | Readonly<Record<string, readonly number[]>>;

function entriesOf(shapes: ParamShapes): [string, readonly number[]][] {
  return shapes instanceof Map ? [...shapes.entries()] : Object.entries(shapes as Record<string, readonly number[]>);
}

/**
 * Original HunyuanVideo module -> packed module(s). `{n}` is a block index. A list of several packed
 * modules means a fused original layer whose output rows are the packed layers' rows, concatenated in order.
 */
const HUNYUAN_TO_PACKED: readonly (readonly [string, readonly string[], { swapHalves?: boolean }?])[] = [
  ['double_blocks.{n}.img_attn_qkv', ['transformer_blocks.{n}.attn.to_q', 'transformer_blocks.{n}.attn.to_k', 'transformer_blocks.{n}.attn.to_v']],
  ['double_blocks.{n}.img_attn_proj', ['transformer_blocks.{n}.attn.to_out.0']],
  ['double_blocks.{n}.img_mod.linear', ['transformer_blocks.{n}.norm1.linear']],
  ['double_blocks.{n}.img_mlp.fc1', ['transformer_blocks.{n}.ff.net.0.proj']],
  ['double_blocks.{n}.img_mlp.fc2', ['transformer_blocks.{n}.ff.net.2']],
  ['double_blocks.{n}.txt_attn_qkv', ['transformer_blocks.{n}.attn.add_q_proj', 'transformer_blocks.{n}.attn.add_k_proj', 'transformer_blocks.{n}.attn.add_v_proj']],
  ['double_blocks.{n}.txt_attn_proj', ['transformer_blocks.{n}.attn.to_add_out']],
  ['double_blocks.{n}.txt_mod.linear', ['transformer_blocks.{n}.norm1_context.linear']],
  ['double_blocks.{n}.txt_mlp.fc1', ['transformer_blocks.{n}.ff_context.net.0.proj']],
  ['double_blocks.{n}.txt_mlp.fc2', ['transformer_blocks.{n}.ff_context.net.2']],
  // single-stream linear1 = [q | k | v | mlp-in], 3 x hidden + mlp rows
  ['single_blocks.{n}.linear1', ['single_transformer_blocks.{n}.attn.to_q', 'single_transformer_blocks.{n}.attn.to_k', 'single_transformer_blocks.{n}.attn.to_v', 'single_transformer_blocks.{n}.proj_mlp']],
  ['single_blocks.{n}.linear2', ['single_transformer_blocks.{n}.proj_out']],
  ['single_blocks.{n}.modulation.linear', ['single_transformer_blocks.{n}.norm.linear']],
  ['img_in.proj', ['x_embedder.proj']],
  ['time_in.mlp.0', ['time_text_embed.timestep_embedder.linear_1']],
  ['time_in.mlp.2', ['time_text_embed.timestep_embedder.linear_2']],
  ['guidance_in.mlp.0', ['time_text_embed.guidance_embedder.linear_1']],
  ['guidance_in.mlp.2', ['time_text_embed.guidance_embedder.linear_2']],
  ['vector_in.in_layer', ['time_text_embed.text_embedder.linear_1']],
  ['vector_in.out_layer', ['time_text_embed.text_embedder.linear_2']],
  ['txt_in.input_embedder', ['context_embedder.proj_in']],
  ['txt_in.t_embedder.mlp.0', ['context_embedder.time_text_embed.timestep_embedder.linear_1']],
  ['txt_in.t_embedder.mlp.2', ['context_embedder.time_text_embed.timestep_embedder.linear_2']],
  ['txt_in.c_embedder.linear_1', ['context_embedder.time_text_embed.text_embedder.linear_1']],
  ['txt_in.c_embedder.linear_2', ['context_embedder.time_text_embed.text_embedder.linear_2']],
  [
    'txt_in.individual_token_refiner.blocks.{n}.self_attn_qkv',
    ['context_embedder.token_refiner.refiner_blocks.{n}.attn.to_q', 'context_embedder.token_refiner.refiner_blocks.{n}.attn.to_k', 'context_embedder.token_refiner.refiner_blocks.{n}.attn.to_v'],
  ],
  ['txt_in.individual_token_refiner.blocks.{n}.self_attn_proj', ['context_embedder.token_refiner.refiner_blocks.{n}.attn.to_out.0']],
  ['txt_in.individual_token_refiner.blocks.{n}.mlp.fc1', ['context_embedder.token_refiner.refiner_blocks.{n}.ff.net.0.proj']],
  ['txt_in.individual_token_refiner.blocks.{n}.mlp.fc2', ['context_embedder.token_refiner.refiner_blocks.{n}.ff.net.2']],
  ['txt_in.individual_token_refiner.blocks.{n}.adaLN_modulation.1', ['context_embedder.token_refiner.refiner_blocks.{n}.norm_out.linear']],
  ['final_layer.linear', ['proj_out']],
  // the original stores (shift, scale); the packed norm_out.linear stores (scale, shift)
  ['final_layer.adaLN_modulation.1', ['norm_out.linear'], { swapHalves: true }],
];

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const patternRe = (p: string) => new RegExp(`^${escapeRe(p).replace('\\{n\\}', '(\\d+)')}$`);

/** Replace every `.` by `_` (the kohya convention). */
export const flatName = (dotted: string) => dotted.replace(/\./g, '_');

export class ModuleIndex {
  readonly #byName = new Map<string, ModuleTarget>();
  readonly #byFlat = new Map<string, ModuleTarget[]>();
  readonly #shapes = new Map<string, readonly number[]>();

  constructor(shapes: ParamShapes) {
    for (const [k, s] of entriesOf(shapes)) this.#shapes.set(k, s);
    // Packed modules: every `<m>.weight` of rank >= 2 (linear and conv layers).
    for (const [key, shape] of this.#shapes) {
      if (!key.endsWith('.weight') || shape.length < 2) continue;
      const name = key.slice(0, -'.weight'.length);
      this.#add({ name, naming: 'packed', outFeatures: shape[0], inShape: shape.slice(1), parts: [{ key, rows: [0, shape[0]] }] });
    }
    // Original HunyuanVideo modules, only where every packed part exists in this model.
    for (const [orig, packed, opts] of HUNYUAN_TO_PACKED) {
      const first = patternRe(packed[0] + '.weight');
      for (const key of this.#shapes.keys()) {
        const m = first.exec(key);
        if (!m) continue;
        const n = m[1];
        const sub = (p: string) => (n === undefined ? p : p.replace('{n}', n));
        const keys = packed.map((p) => sub(p) + '.weight');
        if (!keys.every((k) => this.#shapes.has(k))) continue;
        const inShape = this.#shapes.get(keys[0])!.slice(1);
        if (!keys.every((k) => sameShape(this.#shapes.get(k)!.slice(1), inShape))) continue;
        let row = 0;
        const parts: TargetPart[] = keys.map((k) => {
          const rows = this.#shapes.get(k)![0];
          const part: TargetPart = { key: k, rows: [row, row + rows], ...(opts?.swapHalves ? { swapHalves: true } : {}) };
          row += rows;
          return part;
        });
        this.#add({ name: sub(orig), naming: 'original', outFeatures: row, inShape, parts });
      }
    }
  }

  #add(t: ModuleTarget): void {
    if (this.#byName.has(t.name)) return; // a packed name always wins over an identical original one
    this.#byName.set(t.name, t);
    const f = flatName(t.name);
    const list = this.#byFlat.get(f) ?? [];
    list.push(t);
    this.#byFlat.set(f, list);
  }

  /** The parameter shape of a weight key, if the model has it. */
  shapeOf(key: string): readonly number[] | undefined {
    return this.#shapes.get(key);
  }
  get size(): number {
    return this.#byName.size;
  }
  modules(): IterableIterator<ModuleTarget> {
    return this.#byName.values();
  }

  /** Look up a dotted module name (packed or original naming). */
  byName(name: string): ModuleTarget | undefined {
    return this.#byName.get(name);
  }

  /** Look up a kohya flat name; throws E_AMBIGUOUS if two different modules flatten to the same string. */
  byFlat(flat: string, lora?: string): ModuleTarget | undefined {
    const list = this.#byFlat.get(flat);
    if (!list) return undefined;
    if (list.length > 1) {
      throw new LoraError(`kohya name "${flat}" matches several modules (${list.map((t) => t.name).join(', ')}); the file cannot be mapped unambiguously`, 'E_AMBIGUOUS', lora);
    }
    return list[0];
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
