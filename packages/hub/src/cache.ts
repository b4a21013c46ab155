import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The Hugging Face hub cache root, resolved like huggingface_hub does. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, 'hub');
  return join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface', 'hub');
}

/** True when HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE ask for no network access. */
export function isOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'].some((k) => ['1', 'true', 'yes', 'on'].includes(String(env[k] ?? '').toLowerCase()));
}

export const repoFolderName = (repo: string) => `models--${repo.replace(/\//g, '--')}`;

/**
 * The snapshot folder of a cached model: `revision` may be a branch/tag (resolved through refs/) or a commit.
 * Returns null when the repo or revision is not in the cache.
 */
export function resolveSnapshot(repo: string, revision = 'main', cacheDir = hubCacheDir()): string | null {
  const root = join(cacheDir, repoFolderName(repo));
  if (!existsSync(root)) return null;
  let commit = revision;
  if (!/^[0-9a-f]{40}$/.test(revision)) {
    const ref = join(root, 'refs', revision);
    if (!existsSync(ref)) {
      if (existsSync(join(root, 'refs'))) return null;
      // a cache filled by hand or by another tool may lack refs/: use the only snapshot if there is exactly one
      const snaps = existsSync(join(root, 'snapshots')) ? readdirSync(join(root, 'snapshots')) : [];
      return snaps.length === 1 ? join(root, 'snapshots', snaps[0]) : null;
    }
    commit = readFileSync(ref, 'utf8').trim();
  }
  const snap = join(root, 'snapshots', commit);
  return existsSync(snap) ? snap : null;
}

/** The commit hash a snapshot folder stands for (its folder name). */
export const snapshotRevision = (snapshotPath: string) => snapshotPath.split(/[\\/]/).pop()!;
