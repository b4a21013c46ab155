import { downloadFileToCacheDir, listFiles } from '@huggingface/hub';
import { hubCacheDir, isOffline } from './cache.js';
import type { ModelComponent } from './models.js';

export class HubOfflineError extends Error {
  constructor(what: string) {
    super(`${what}: offline mode is on (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE); unset it to download`);
    this.name = 'HubOfflineError';
  }
}

/** Files of a component worth downloading: configs, tokenizer/processor files and safetensors weights (no .bin/.pt duplicates). */
export function wantedFile(path: string, c: ModelComponent): boolean {
  const name = path.slice(c.subfolder ? c.subfolder.length + 1 : 0);
  if (name.includes('/')) return false;
  if (c.kind === 'weights') return name === 'config.json' || name.endsWith('.safetensors') || name.endsWith('.safetensors.index.json');
  return name.endsWith('.json') || name.endsWith('.txt') || name.endsWith('.model');
}

export interface PullProgress {
  component: string;
  file: string;
  index: number;
  total: number;
}

/** Download only the files the components need into the hub cache (HF_TOKEN honoured). Returns the downloaded paths. */
export async function pullComponents(
  components: ModelComponent[],
  opts: { revision?: string; cacheDir?: string; accessToken?: string; onFile?: (p: PullProgress) => void } = {},
): Promise<string[]> {
  if (isOffline()) throw new HubOfflineError('framepack models pull');
  const cacheDir = opts.cacheDir ?? hubCacheDir();
  const accessToken = opts.accessToken ?? process.env.HF_TOKEN;
  const plan: { c: ModelComponent; path: string }[] = [];
  for (const c of components) {
    for await (const f of listFiles({ repo: c.repo, path: c.subfolder || undefined, revision: opts.revision, accessToken })) {
      if (f.type === 'file' && wantedFile(f.path, c)) plan.push({ c, path: f.path });
    }
  }
  const out: string[] = [];
  for (const [i, { c, path }] of plan.entries()) {
    opts.onFile?.({ component: c.name, file: `${c.repo}/${path}`, index: i, total: plan.length });
    out.push(await downloadFileToCacheDir({ repo: c.repo, path, revision: opts.revision, cacheDir, accessToken }));
  }
  return out;
}
