/**
 * `tinyemo worker --queue redis://HOST:PORT[/DB]`: runs jobs from
 * `tinyemo submit` until SIGTERM or SIGINT, then finishes the job in hand and
 * exits 0. Workers read inputs and write outputs at the paths the jobs name:
 * every worker must see the same file system.
 */
import { Command } from 'commander';
import * as os from 'os';

import { invalid } from '../errors';
import { WORKER_DEFAULTS } from '../queue/jobs';
import { FlagTable, FlagValues, addFlags, readFlags } from './flags';
import { nextStopSignal } from './signals';

const FLAGS = {
  queue: { arg: '<url>', required: true, help: 'the Redis that holds the queue: redis://HOST:PORT[/DB]' },
  concurrency: { arg: '<n>', kind: 'int', default: WORKER_DEFAULTS.concurrency, help: 'jobs at once in this process (they share its threads)' },
  device: { arg: '<device>', kind: 'device', help: 'where the models run: cpu (default), cuda or cuda:N' },
  name: { arg: '<name>', help: 'this worker in logs and in Redis (default: host and pid)' },
  maxModels: { arg: '<n>', kind: 'int', default: WORKER_DEFAULTS.maxModels, help: 'models kept loaded between jobs' },
  lockS: { arg: '<s>', kind: 'number', default: WORKER_DEFAULTS.lockS, help: "seconds before a silent worker's job is taken over" },
} as const satisfies FlagTable;

export type WorkerFlags = FlagValues<typeof FLAGS>;

export function registerWorker(program: Command): void {
  const cmd = program.command('worker').description('run jobs from `tinyemo submit` (features, classify, reason) off a Redis queue');
  addFlags(cmd, FLAGS).action(async (raw: Record<string, unknown>) => {
    await workerCommand(readFlags(FLAGS, raw));
  });
}

export async function workerCommand(f: WorkerFlags): Promise<void> {
  for (const [flag, v] of [
    ['--concurrency', f.concurrency],
    ['--max-models', f.maxModels],
    ['--lock-s', f.lockS],
  ] as const) {
    if (!(v > 0)) throw invalid(`${flag} takes a positive number, not ${v}`);
  }
  const name = f.name ?? `${os.hostname()}-${process.pid}`;
  const say = (m: string) => process.stderr.write(`tinyemo worker ${name}: ${m}\n`);
  const { startWorker } = await import('../queue/worker'); // BullMQ loads only for the queue commands
  const w = await startWorker({ queue: f.queue, concurrency: f.concurrency, device: f.device, name, maxModels: f.maxModels, lockS: f.lockS, onLog: say });
  say(`waiting for jobs on ${f.queue}`);
  const signal = await nextStopSignal();
  say(`${signal}: finishing the job in hand`);
  await w.close();
  say('stopped');
}
