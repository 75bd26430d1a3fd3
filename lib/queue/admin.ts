/** `tinyemo queue status|retry|clean`: what is on the queue, failed jobs again, finished jobs away. */
import { Queue } from 'bullmq';

import { QUEUE_NAME, connectionOptions, queueCall } from './connection';

export interface QueueStatus {
  counts: Record<string, number>;
  /** The most recent failures, with their reasons. */
  failed: Array<{ id: string; reason: string; attempts: number }>;
  /** Submissions (final jobs) and their states. */
  submissions: Array<{ id: string; state: string }>;
}

function withQueue<T>(url: string, fn: (q: Queue) => Promise<T>): Promise<T> {
  return queueCall(url, async () => {
    const q = new Queue(QUEUE_NAME, { connection: connectionOptions(url) });
    q.on('error', () => undefined);
    try {
      return await fn(q);
    } finally {
      await q.close();
    }
  });
}

export function queueStatus(url: string): Promise<QueueStatus> {
  return withQueue(url, async (q) => {
    const counts = await q.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'waiting-children', 'prioritized');
    const failed = (await q.getFailed(0, 19)).map((j) => ({ id: String(j.id), reason: j.failedReason, attempts: j.attemptsMade }));
    const jobs = await q.getJobs(['waiting-children', 'waiting', 'active', 'completed', 'failed'], 0, 999);
    const finals = jobs.filter((j) => j.name === 'final');
    const submissions = await Promise.all(finals.map(async (j) => ({ id: String(j.id), state: await j.getState() })));
    return { counts, failed, submissions };
  });
}

/** Puts every failed job back in line; returns how many. */
export function retryFailed(url: string): Promise<number> {
  return withQueue(url, async (q) => {
    const n = (await q.getJobCounts('failed')).failed ?? 0;
    await q.retryJobs({ state: 'failed' });
    return n;
  });
}

/** Removes finished (completed and failed) jobs; returns how many. */
export function cleanFinished(url: string): Promise<number> {
  return withQueue(url, async (q) => {
    const done = await q.clean(0, 1_000_000, 'completed');
    const failed = await q.clean(0, 1_000_000, 'failed');
    return done.length + failed.length;
  });
}
