/** The `tinyemo` command. Results go to stdout (one JSON document with --json); logs to stderr. */
import { Command, CommanderError } from 'commander';

import { TinyEmoError } from '../errors';
import { packageVersion } from '../version';
import { doctor, formatDoctor } from './doctor';
import { formatInspect, inspectPath } from './inspect';
import { pullCommand } from './pull';

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  let code = 0;
  program
    .name('tinyemo')
    .description('TinyEmo emotion classification and reasoning, natively in Node.js')
    .version(packageVersion(), '-v, --version')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('doctor')
    .description('report the native build, CPU features, threads and device, and run a kernel self-check')
    .option('--json', 'print one JSON document')
    .action((opts: { json?: boolean }) => {
      const report = doctor();
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDoctor(report)}\n`);
      if (!report.selfCheck.ok) code = 1;
    });

  program
    .command('inspect')
    .description('list the tensors (name, dtype, shape) of a weight file (safetensors, .pt/.bin, .npy) or model folder')
    .argument('<file>', 'a weight file or a model folder')
    .option('--json', 'print one JSON document')
    .action((file: string, opts: { json?: boolean }) => {
      const r = inspectPath(file);
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatInspect(r)}\n`);
    });

  program
    .command('pull')
    .description('download a Hugging Face repository into the hub cache (HF_HOME / HF_HUB_CACHE; HF_TOKEN)')
    .argument('<repo>', 'repository id, e.g. openai/clip-vit-large-patch14')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--include <glob...>', 'only files matching these globs')
    .option('--offline', 'use the cache only and say what is missing')
    .option('--json', 'print one JSON document')
    .action(async (repo: string, opts: { revision: string; include?: string[]; offline?: boolean; json?: boolean }) => {
      const r = await pullCommand(repo, opts);
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${r.dir}\n`);
    });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof TinyEmoError) {
      process.stderr.write(`tinyemo: ${e.message} [${e.code}]\n`);
      return 2;
    }
    throw e;
  }
  return code;
}
