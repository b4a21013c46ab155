import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hubCacheDir, resolveSnapshot, snapshotRevision } from './cache.js';

/** One folder of a hub repo that a pipeline needs (diffusers/transformers layout: config + weights, or tokenizer files). */
export interface ModelComponent {
  /** Name used in messages and the generator (e.g. 'text_encoder'). */
  name: string;
  repo: string;
  /** Folder inside the repo ('' for the root). */
  subfolder: string;
  kind: 'weights' | 'tokenizer' | 'processor';
}

export const HUNYUAN_REPO = 'hunyuanvideo-community/HunyuanVideo';
export const REDUX_REPO = 'lllyasviel/flux_redux_bfl';
export const FRAMEPACK_I2V_REPO = 'lllyasviel/FramePackI2V_HY';
export const FRAMEPACK_F1_REPO = 'lllyasviel/FramePack_F1_I2V_HY_20250503';

/** Everything FramePack loads: the shared encoders + VAE, and one transformer per mode. */
export function framepackComponents(mode: 'original' | 'f1'): ModelComponent[] {
  return [
    { name: 'text_encoder', repo: HUNYUAN_REPO, subfolder: 'text_encoder', kind: 'weights' },
    { name: 'text_encoder_2', repo: HUNYUAN_REPO, subfolder: 'text_encoder_2', kind: 'weights' },
    { name: 'tokenizer', repo: HUNYUAN_REPO, subfolder: 'tokenizer', kind: 'tokenizer' },
    { name: 'tokenizer_2', repo: HUNYUAN_REPO, subfolder: 'tokenizer_2', kind: 'tokenizer' },
    { name: 'vae', repo: HUNYUAN_REPO, subfolder: 'vae', kind: 'weights' },
    { name: 'image_encoder', repo: REDUX_REPO, subfolder: 'image_encoder', kind: 'weights' },
    { name: 'feature_extractor', repo: REDUX_REPO, subfolder: 'feature_extractor', kind: 'processor' },
    { name: 'transformer', repo: mode === 'f1' ? FRAMEPACK_F1_REPO : FRAMEPACK_I2V_REPO, subfolder: '', kind: 'weights' },
  ];
}

/** File names (relative to the component folder) a component needs, given what is on disk (shards from the index). */
export function requiredFiles(dir: string | null, c: ModelComponent): string[] {
  if (c.kind === 'tokenizer') return ['tokenizer_config.json'];
  if (c.kind === 'processor') return ['preprocessor_config.json'];
  const files = ['config.json'];
  if (!dir) return files;
  const index = ['model.safetensors.index.json', 'diffusion_pytorch_model.safetensors.index.json'].find((f) => existsSync(join(dir, f)));
  if (index) {
    files.push(index);
    try {
      const map = JSON.parse(readFileSync(join(dir, index), 'utf8')).weight_map as Record<string, string>;
      files.push(...new Set(Object.values(map)));
    } catch {
      // an unreadable index leaves the shards unknown; the loader will report it
    }
  } else {
    const single = ['model.safetensors', 'diffusion_pytorch_model.safetensors'].find((f) => existsSync(join(dir, f)));
    files.push(single ?? 'model.safetensors');
  }
  return files;
}

export interface ComponentStatus {
  component: ModelComponent;
  /** The component's folder in the snapshot, when the repo is cached. */
  path: string | null;
  revision: string | null;
  missing: string[];
}

/** Which components are in the local cache, and which of their files are missing. Never touches the network. */
export function checkComponents(components: ModelComponent[], cacheDir = hubCacheDir(), revision = 'main'): ComponentStatus[] {
  return components.map((c) => {
    const snap = resolveSnapshot(c.repo, revision, cacheDir);
    const dir = snap ? join(snap, c.subfolder) : null;
    const needed = requiredFiles(dir, c);
    const missing = dir ? needed.filter((f) => !existsSync(join(dir, f))) : needed;
    return { component: c, path: dir && existsSync(dir) ? dir : null, revision: snap ? snapshotRevision(snap) : null, missing };
  });
}
