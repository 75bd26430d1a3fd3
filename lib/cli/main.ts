/** The `tinyemo` command. Results go to stdout (one JSON document with --json); logs to stderr. Each command registers its own flags. */
import { Command, CommanderError } from 'commander';

import { TinyEmoError } from '../errors';
import { packageVersion } from '../version';
import { registerBias } from './bias';
import { registerClassify } from './classify';
import { registerDoctor } from './doctor';
import { registerEval } from './eval';
import { registerFeatures } from './features';
import { registerFinetune } from './finetune';
import { registerGenerate } from './generate';
import { registerInspect } from './inspect';
import { registerPull } from './pull';
import { registerReason } from './reason';
import { registerServe } from './serve';
import { registerQueue } from './queue';
import { registerSubmit } from './submit';
import { registerWorker } from './worker';
import { registerSynth } from './synth';
import { registerTrain } from './train';

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  let code = 0;
  // Commands over many inputs report their outcome here (cli/inputs.ts); the worst code wins.
  const exit = (c: number) => (code = Math.max(code, c));
  program
    .name('tinyemo')
    .description('TinyEmo emotion classification and reasoning, natively in Node.js')
    .version(packageVersion(), '-v, --version')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerDoctor(program, () => (code = 1));
  registerInspect(program);
  registerPull(program);
  registerTrain(program, exit);
  registerEval(program, exit);
  registerClassify(program, exit);
  registerFeatures(program, exit);
  registerBias(program, exit);
  registerSynth(program, exit);
  registerReason(program);
  registerGenerate(program);
  registerFinetune(program, exit);
  registerServe(program);
  registerWorker(program);
  registerSubmit(program, exit);
  registerQueue(program);
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
