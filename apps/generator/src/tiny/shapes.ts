/**
 * Parameter names and shapes of each architecture, computed from its config, under the reference key names.
 * The tiny model family draws its weights from these; a test checks them against the golden checkpoints' headers.
 */
export type ShapeMap = Map<string, number[]>;

const linear = (m: ShapeMap, name: string, out: number, inp: number, bias = true) => {
  m.set(`${name}.weight`, [out, inp]);
  if (bias) m.set(`${name}.bias`, [out]);
};
const norm = (m: ShapeMap, name: string, dim: number, bias = true) => {
  m.set(`${name}.weight`, [dim]);
  if (bias) m.set(`${name}.bias`, [dim]);
};

export interface DitShapeConfig {
  in_channels: number;
  out_channels: number;
  num_attention_heads: number;
  attention_head_dim: number;
  num_layers: number;
  num_single_layers: number;
  num_refiner_layers: number;
  mlp_ratio: number;
  patch_size: number;
  patch_size_t: number;
  text_embed_dim: number;
  pooled_projection_dim: number;
  image_proj_dim: number;
}

/** HunyuanVideoTransformer3DModelPacked (with image projection and clean-latent embedders). */
export function ditShapes(c: DitShapeConfig): ShapeMap {
  const m: ShapeMap = new Map();
  const D = c.num_attention_heads * c.attention_head_dim;
  const F = Math.trunc(D * c.mlp_ratio);
  const hd = c.attention_head_dim;
  const [p, pt, ci] = [c.patch_size, c.patch_size_t, c.in_channels];
  const conv = (name: string, k: [number, number, number]) => {
    m.set(`${name}.weight`, [D, ci, ...k]);
    m.set(`${name}.bias`, [D]);
  };
  conv('x_embedder.proj', [pt, p, p]);
  conv('clean_x_embedder.proj', [pt, p, p]);
  conv('clean_x_embedder.proj_2x', [2 * pt, 2 * p, 2 * p]);
  conv('clean_x_embedder.proj_4x', [4 * pt, 4 * p, 4 * p]);
  linear(m, 'image_projection.up', 3 * D, c.image_proj_dim);
  linear(m, 'image_projection.down', D, 3 * D);
  for (const e of ['timestep_embedder', 'guidance_embedder']) {
    linear(m, `time_text_embed.${e}.linear_1`, D, 256);
    linear(m, `time_text_embed.${e}.linear_2`, D, D);
  }
  linear(m, 'time_text_embed.text_embedder.linear_1', D, c.pooled_projection_dim);
  linear(m, 'time_text_embed.text_embedder.linear_2', D, D);
  const ce = 'context_embedder';
  linear(m, `${ce}.time_text_embed.timestep_embedder.linear_1`, D, 256);
  linear(m, `${ce}.time_text_embed.timestep_embedder.linear_2`, D, D);
  linear(m, `${ce}.time_text_embed.text_embedder.linear_1`, D, c.text_embed_dim);
  linear(m, `${ce}.time_text_embed.text_embedder.linear_2`, D, D);
  linear(m, `${ce}.proj_in`, D, c.text_embed_dim);
  for (let i = 0; i < c.num_refiner_layers; i++) {
    const b = `${ce}.token_refiner.refiner_blocks.${i}`;
    norm(m, `${b}.norm1`, D);
    for (const q of ['to_q', 'to_k', 'to_v', 'to_out.0']) linear(m, `${b}.attn.${q}`, D, D);
    norm(m, `${b}.norm2`, D);
    linear(m, `${b}.ff.net.0.proj`, F, D);
    linear(m, `${b}.ff.net.2`, D, F);
    linear(m, `${b}.norm_out.linear`, 2 * D, D);
  }
  for (let i = 0; i < c.num_layers; i++) {
    const b = `transformer_blocks.${i}`;
    linear(m, `${b}.norm1.linear`, 6 * D, D);
    linear(m, `${b}.norm1_context.linear`, 6 * D, D);
    for (const q of ['to_q', 'to_k', 'to_v', 'add_q_proj', 'add_k_proj', 'add_v_proj', 'to_out.0', 'to_add_out']) linear(m, `${b}.attn.${q}`, D, D);
    for (const n of ['norm_q', 'norm_k', 'norm_added_q', 'norm_added_k']) norm(m, `${b}.attn.${n}`, hd, false);
    for (const ff of ['ff', 'ff_context']) {
      linear(m, `${b}.${ff}.net.0.proj`, F, D);
      linear(m, `${b}.${ff}.net.2`, D, F);
    }
  }
  for (let i = 0; i < c.num_single_layers; i++) {
    const b = `single_transformer_blocks.${i}`;
    for (const q of ['to_q', 'to_k', 'to_v']) linear(m, `${b}.attn.${q}`, D, D);
    for (const n of ['norm_q', 'norm_k']) norm(m, `${b}.attn.${n}`, hd, false);
    linear(m, `${b}.norm.linear`, 3 * D, D);
    linear(m, `${b}.proj_mlp`, F, D);
    linear(m, `${b}.proj_out`, D, D + F);
  }
  linear(m, 'norm_out.linear', 2 * D, D);
  linear(m, 'proj_out', pt * p * p * c.out_channels, D);
  return m;
}

export interface VaeShapeConfig {
  in_channels: number;
  out_channels: number;
  latent_channels: number;
  block_out_channels: number[];
  layers_per_block: number;
  mid_block_add_attention: boolean;
}

/** AutoencoderKLHunyuanVideo (diffusers naming). */
export function vaeShapes(c: VaeShapeConfig): ShapeMap {
  const m: ShapeMap = new Map();
  const conv = (name: string, out: number, inp: number, k: number) => {
    m.set(`${name}.weight`, [out, inp, k, k, k]);
    m.set(`${name}.bias`, [out]);
  };
  const resnet = (name: string, inp: number, out: number) => {
    norm(m, `${name}.norm1`, inp);
    conv(`${name}.conv1.conv`, out, inp, 3);
    norm(m, `${name}.norm2`, out);
    conv(`${name}.conv2.conv`, out, out, 3);
    if (inp !== out) conv(`${name}.conv_shortcut.conv`, out, inp, 1);
  };
  const mid = (name: string, ch: number) => {
    resnet(`${name}.resnets.0`, ch, ch);
    if (c.mid_block_add_attention) {
      norm(m, `${name}.attentions.0.group_norm`, ch);
      for (const q of ['to_q', 'to_k', 'to_v', 'to_out.0']) linear(m, `${name}.attentions.0.${q}`, ch, ch);
    }
    resnet(`${name}.resnets.1`, ch, ch);
  };
  const ch = c.block_out_channels;
  const n = ch.length;
  conv('encoder.conv_in.conv', ch[0], c.in_channels, 3);
  let prev = ch[0];
  ch.forEach((out, i) => {
    for (let j = 0; j < c.layers_per_block; j++) resnet(`encoder.down_blocks.${i}.resnets.${j}`, j === 0 ? prev : out, out);
    if (i < n - 1) conv(`encoder.down_blocks.${i}.downsamplers.0.conv.conv`, out, out, 3);
    prev = out;
  });
  mid('encoder.mid_block', ch[n - 1]);
  norm(m, 'encoder.conv_norm_out', ch[n - 1]);
  conv('encoder.conv_out.conv', 2 * c.latent_channels, ch[n - 1], 3);
  conv('quant_conv', 2 * c.latent_channels, 2 * c.latent_channels, 1);
  conv('post_quant_conv', c.latent_channels, c.latent_channels, 1);
  const rev = [...ch].reverse();
  conv('decoder.conv_in.conv', rev[0], c.latent_channels, 3);
  mid('decoder.mid_block', rev[0]);
  prev = rev[0];
  rev.forEach((out, i) => {
    for (let j = 0; j < c.layers_per_block + 1; j++) resnet(`decoder.up_blocks.${i}.resnets.${j}`, j === 0 ? prev : out, out);
    if (i < n - 1) conv(`decoder.up_blocks.${i}.upsamplers.0.conv.conv`, out, out, 3);
    prev = out;
  });
  norm(m, 'decoder.conv_norm_out', rev[n - 1]);
  conv('decoder.conv_out.conv', c.out_channels, rev[n - 1], 3);
  return m;
}

export interface LlamaShapeConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim?: number;
}

/** LlamaModel (no `model.` prefix, as HunyuanVideo's text_encoder folder stores it). */
export function llamaShapes(c: LlamaShapeConfig): ShapeMap {
  const m: ShapeMap = new Map();
  const H = c.hidden_size;
  const hd = c.head_dim ?? H / c.num_attention_heads;
  m.set('embed_tokens.weight', [c.vocab_size, H]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const b = `layers.${i}`;
    norm(m, `${b}.input_layernorm`, H, false);
    norm(m, `${b}.post_attention_layernorm`, H, false);
    linear(m, `${b}.self_attn.q_proj`, c.num_attention_heads * hd, H, false);
    linear(m, `${b}.self_attn.k_proj`, c.num_key_value_heads * hd, H, false);
    linear(m, `${b}.self_attn.v_proj`, c.num_key_value_heads * hd, H, false);
    linear(m, `${b}.self_attn.o_proj`, H, c.num_attention_heads * hd, false);
    linear(m, `${b}.mlp.gate_proj`, c.intermediate_size, H, false);
    linear(m, `${b}.mlp.up_proj`, c.intermediate_size, H, false);
    linear(m, `${b}.mlp.down_proj`, H, c.intermediate_size, false);
  }
  norm(m, 'norm', H, false);
  return m;
}

const encoderLayers = (m: ShapeMap, prefix: string, layers: number, H: number, F: number) => {
  for (let i = 0; i < layers; i++) {
    const b = `${prefix}encoder.layers.${i}`;
    norm(m, `${b}.layer_norm1`, H);
    norm(m, `${b}.layer_norm2`, H);
    for (const q of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linear(m, `${b}.self_attn.${q}`, H, H);
    linear(m, `${b}.mlp.fc1`, F, H);
    linear(m, `${b}.mlp.fc2`, H, F);
  }
};

export interface ClipTextShapeConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  max_position_embeddings: number;
}

/** CLIPTextModel; `prefix` is 'text_model.' in real checkpoints. */
export function clipTextShapes(c: ClipTextShapeConfig, prefix = 'text_model.'): ShapeMap {
  const m: ShapeMap = new Map();
  m.set(`${prefix}embeddings.token_embedding.weight`, [c.vocab_size, c.hidden_size]);
  m.set(`${prefix}embeddings.position_embedding.weight`, [c.max_position_embeddings, c.hidden_size]);
  encoderLayers(m, prefix, c.num_hidden_layers, c.hidden_size, c.intermediate_size);
  norm(m, `${prefix}final_layer_norm`, c.hidden_size);
  return m;
}

export interface SiglipVisionShapeConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_channels: number;
  image_size: number;
  patch_size: number;
}

/** SiglipVisionModel with its pooling head; `prefix` is 'vision_model.' in real checkpoints. */
export function siglipVisionShapes(c: SiglipVisionShapeConfig, prefix = 'vision_model.'): ShapeMap {
  const m: ShapeMap = new Map();
  const H = c.hidden_size;
  const grid = Math.floor(c.image_size / c.patch_size);
  m.set(`${prefix}embeddings.patch_embedding.weight`, [H, c.num_channels, c.patch_size, c.patch_size]);
  m.set(`${prefix}embeddings.patch_embedding.bias`, [H]);
  m.set(`${prefix}embeddings.position_embedding.weight`, [grid * grid, H]);
  encoderLayers(m, prefix, c.num_hidden_layers, H, c.intermediate_size);
  norm(m, `${prefix}post_layernorm`, H);
  m.set(`${prefix}head.probe`, [1, 1, H]);
  m.set(`${prefix}head.attention.in_proj_weight`, [3 * H, H]);
  m.set(`${prefix}head.attention.in_proj_bias`, [3 * H]);
  linear(m, `${prefix}head.attention.out_proj`, H, H);
  norm(m, `${prefix}head.layernorm`, H);
  linear(m, `${prefix}head.mlp.fc1`, c.intermediate_size, H);
  linear(m, `${prefix}head.mlp.fc2`, H, c.intermediate_size);
  return m;
}
