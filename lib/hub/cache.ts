/**
 * The Hugging Face hub cache, laid out as huggingface_hub lays it out, so
 * tinyemo and Python tools share downloads:
 *   <cache>/models--<org>--<name>/blobs/<etag>            file contents
 *   <cache>/models--<org>--<name>/snapshots/<commit>/<path> -> ../../blobs/<etag>
 *   <cache>/models--<org>--<name>/refs/<revision>         the commit it points at
 * <cache> is HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { invalid } from '../errors';

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const REVISION = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;

export function isRepoId(s: string): boolean {
  return REPO_ID.test(s) && !s.includes('..');
}

export function checkRepoId(repoId: string): void {
  if (!isRepoId(repoId)) throw invalid(`"${repoId}" is not a repository id like "org/name"`);
}

export function checkRevision(revision: string): void {
  if (!REVISION.test(revision) || revision.includes('..')) throw invalid(`"${revision}" is not a valid revision`);
}

/** A repository file name is a relative path that stays inside its snapshot. */
export function isSafeRepoPath(p: string): boolean {
  if (p.length === 0 || p.length > 1024 || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((part) => part.length > 0 && part !== '.' && part !== '..');
}

export function repoDir(cache: string, repoId: string): string {
  checkRepoId(repoId);
  return path.join(cache, `models--${repoId.replace('/', '--')}`);
}

/** The commit a revision points at in the cache (a commit hash is itself). */
export function cachedCommit(cache: string, repoId: string, revision: string): string | undefined {
  checkRevision(revision);
  if (/^[0-9a-f]{40}$/.test(revision)) return revision;
  const ref = path.join(repoDir(cache, repoId), 'refs', revision);
  if (!fs.existsSync(ref)) return undefined;
  const sha = fs.readFileSync(ref, 'utf8').trim();
  return /^[0-9a-f]{40}$/.test(sha) ? sha : undefined;
}

export function snapshotDir(cache: string, repoId: string, commit: string): string {
  return path.join(repoDir(cache, repoId), 'snapshots', commit);
}
