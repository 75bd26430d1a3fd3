/**
 * `tinyemo pull REPO_ID`: a repository into the Hugging Face cache, with a progress line on a terminal; with
 * `--only vision|embeddings`, just those tensors (hub/partial.ts) into tinyemo's cache.
 */
import { Command } from 'commander';

import { invalid } from '../errors';
import { pull, PullResult } from '../hub/client';
import { PartialPullResult, SUBSETS, TensorSubset, pullTensors } from '../hub/partial';
import { FlagTable, FlagValues, addFlags, printResult, readFlags } from './flags';

const FLAGS = {
  revision: { arg: '<rev>', default: 'main', help: 'branch, tag or commit' },
  include: { arg: '<glob>', kind: 'list', help: 'only files matching these globs' },
  only: {
    arg: '<subset>',
    help: "only these tensors of the safetensors weights: vision (CLIP's tower, not its text tower) or embeddings (an LLM's token-embedding table), into tinyemo's cache (TINYEMO_CACHE)",
  },
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
    if (f.only !== undefined) {
      if (f.include) throw invalid('give --only or --include, not both');
      if (!(f.only in SUBSETS)) throw invalid(`--only is ${Object.keys(SUBSETS).join(' or ')}, not "${f.only}"`);
      printResult(f.json, await pullSubsetCommand(repo, f.only as TensorSubset, f), (r) => r.dir);
      return;
    }
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

const mib = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

export async function pullSubsetCommand(repo: string, subset: TensorSubset, flags: PullFlags): Promise<PartialPullResult> {
  const say = flags.json ? () => undefined : (m: string) => process.stderr.write(m);
  const tty = process.stderr.isTTY === true && !flags.json;
  let last = 0;
  const r = await pullTensors(repo, {
    subset,
    revision: flags.revision,
    offline: flags.offline,
    onPlan: (p) => say(`${repo}: ${SUBSETS[subset].describe}, ${p.tensors} tensors, ${mib(p.bytes)} of the ${mib(p.ofBytes)} weights\n`),
    onProgress: tty
      ? ({ received, total }) => {
          const now = Date.now();
          if (now - last < 100 && received < total) return;
          last = now;
          say(`\r${Math.floor((100 * received) / Math.max(1, total))}% (${mib(received)} / ${mib(total)})\x1b[K${received >= total ? '\n' : ''}`);
        }
      : undefined,
  });
  say(`${repo}@${r.revision} (${r.commit.slice(0, 12)}): ${r.tensors} tensors, ${mib(r.bytes)}${r.downloaded ? '' : ' (already in the cache)'}\n`);
  return r;
}
