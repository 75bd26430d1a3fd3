/** `tinyemo pull REPO_ID`: a repository into the Hugging Face cache, with a progress line on a terminal. */
import { pull, PullResult } from '../hub/client';

export interface PullFlags {
  revision?: string;
  include?: string[];
  offline?: boolean;
  json?: boolean;
}

export async function pullCommand(repo: string, flags: PullFlags): Promise<PullResult> {
  const tty = process.stderr.isTTY === true && !flags.json;
  let last = 0;
  const r = await pull(repo, {
    revision: flags.revision,
    include: flags.include,
    offline: flags.offline,
    onProgress: tty
      ? ({ file, received, total }) => {
          const now = Date.now();
          if (now - last < 100 && received < total) return;
          last = now;
          const pct = total ? Math.floor((100 * received) / total) : 100;
          process.stderr.write(`\r${file}: ${pct}% (${(received / 2 ** 20).toFixed(1)} / ${(total / 2 ** 20).toFixed(1)} MiB)\x1b[K`);
          if (received >= total) process.stderr.write('\n');
        }
      : undefined,
  });
  if (!flags.json) process.stderr.write(`${repo}@${r.revision} (${r.commit.slice(0, 12)}): ${r.files.length} files, ${r.downloaded.length} downloaded\n`);
  return r;
}
