/** `tinyemo pull REPO_ID`: a repository into the Hugging Face cache, with a progress line on a terminal. */
import { Command } from 'commander';

import { pull, PullResult } from '../hub/client';
import { FlagTable, FlagValues, addFlags, printResult, readFlags } from './flags';

const FLAGS = {
  revision: { arg: '<rev>', default: 'main', help: 'branch, tag or commit' },
  include: { arg: '<glob>', kind: 'list', help: 'only files matching these globs' },
  offline: { kind: 'boolean', help: 'use the cache only and say what is missing' },
  json: { kind: 'boolean', help: 'print one JSON document' },
} as const satisfies FlagTable;

export type PullFlags = FlagValues<typeof FLAGS>;

export function registerPull(program: Command): void {
  const cmd = program
    .command('pull')
    .description('download a Hugging Face repository into the hub cache (HF_HOME / HF_HUB_CACHE; HF_TOKEN)')
    .argument('<repo>', 'repository id, e.g. openai/clip-vit-large-patch14');
  addFlags(cmd, FLAGS).action(async (repo: string, raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    printResult(f.json, await pullCommand(repo, f), (r) => r.dir);
  });
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
