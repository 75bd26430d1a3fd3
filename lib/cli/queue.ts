/** `tinyemo queue status|retry|clean --queue URL`: look after the job queue of `tinyemo submit`. */
import { Command } from 'commander';

import { FlagTable, addFlags, printResult, readFlags } from './flags';

/** BullMQ loads only when a queue command runs. */
const admin = () => import('../queue/admin');

const FLAGS = {
  queue: { arg: '<url>', required: true, help: 'the Redis that holds the queue: redis://HOST:PORT[/DB]' },
  json: { kind: 'boolean', help: 'print one JSON document' },
} as const satisfies FlagTable;

export function registerQueue(program: Command): void {
  const q = program.command('queue').description('the job queue of tinyemo submit: status, retry failed jobs, clean finished ones');
  addFlags(q.command('status').description('jobs by state, recent failures with reasons, submissions'), FLAGS).action(async (raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    const s = await (await admin()).queueStatus(f.queue);
    printResult(f.json, s, (x) =>
      [
        Object.entries(x.counts)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
        ...x.submissions.map((j) => `submission ${j.id}: ${j.state}`),
        ...x.failed.map((j) => `failed ${j.id} after ${j.attempts} attempts: ${j.reason}`),
      ].join('\n'),
    );
  });
  addFlags(q.command('retry').description('put failed jobs back in line'), FLAGS).action(async (raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    const n = await (await admin()).retryFailed(f.queue);
    printResult(f.json, { retried: n }, (x) => `${x.retried} failed jobs back in line`);
  });
  addFlags(q.command('clean').description('remove completed and failed jobs'), FLAGS).action(async (raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    const n = await (await admin()).cleanFinished(f.queue);
    printResult(f.json, { removed: n }, (x) => `${x.removed} finished jobs removed`);
  });
}
