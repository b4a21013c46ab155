import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkComponents, framepackComponents, hubCacheDir, isOffline, pullComponents, resolveSnapshot, wantedFile, HubOfflineError } from '@framepack/hub';

function fakeRepo(cache: string, repo: string, commit: string, files: Record<string, string>) {
  const root = join(cache, `models--${repo.replace('/', '--')}`);
  mkdirSync(join(root, 'refs'), { recursive: true });
  writeFileSync(join(root, 'refs', 'main'), commit + '\n');
  for (const [f, body] of Object.entries(files)) {
    const p = join(root, 'snapshots', commit, f);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, body);
  }
}

describe('hub cache layout', () => {
  it('resolves the cache root like huggingface_hub', () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/a' })).toBe('/a');
    expect(hubCacheDir({ HF_HOME: '/h' })).toBe('/h/hub');
    expect(hubCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/huggingface/hub');
    expect(isOffline({ HF_HUB_OFFLINE: '1' })).toBe(true);
    expect(isOffline({})).toBe(false);
  });
  it('finds snapshots through refs and reports missing files and shards', () => {
    const cache = mkdtempSync(join(tmpdir(), 'hf-'));
    const commit = 'a'.repeat(40);
    fakeRepo(cache, 'lllyasviel/FramePackI2V_HY', commit, {
      'config.json': '{}',
      'diffusion_pytorch_model.safetensors.index.json': JSON.stringify({ weight_map: { a: 'diffusion_pytorch_model-00001-of-00002.safetensors', b: 'diffusion_pytorch_model-00002-of-00002.safetensors' } }),
      'diffusion_pytorch_model-00001-of-00002.safetensors': '',
    });
    expect(resolveSnapshot('lllyasviel/FramePackI2V_HY', 'main', cache)).toContain(commit);
    expect(resolveSnapshot('lllyasviel/FramePackI2V_HY', 'dev', cache)).toBe(null);
    const st = checkComponents(framepackComponents('original'), cache);
    const tr = st.find((s) => s.component.name === 'transformer')!;
    expect(tr.revision).toBe(commit);
    expect(tr.missing).toEqual(['diffusion_pytorch_model-00002-of-00002.safetensors']);
    const te = st.find((s) => s.component.name === 'text_encoder')!;
    expect(te.path).toBe(null);
    expect(te.missing).toEqual(['config.json']);
  });
  it('downloads only configs, tokenizer files and safetensors', () => {
    const c = { name: 'vae', repo: 'r/x', subfolder: 'vae', kind: 'weights' as const };
    expect(wantedFile('vae/config.json', c)).toBe(true);
    expect(wantedFile('vae/diffusion_pytorch_model.safetensors', c)).toBe(true);
    expect(wantedFile('vae/diffusion_pytorch_model.bin', c)).toBe(false);
    expect(wantedFile('vae/sub/x.safetensors', c)).toBe(false);
  });
  it('refuses to pull in offline mode', async () => {
    process.env.HF_HUB_OFFLINE = '1';
    await expect(pullComponents(framepackComponents('f1'))).rejects.toBeInstanceOf(HubOfflineError);
    delete process.env.HF_HUB_OFFLINE;
  });
});
