/**
 * `tinyemo worker`: takes jobs from the queue and runs them with the models
 * they name (cached, `maxModels` at most). A worker that dies mid-job loses
 * its lock; after `lockS` seconds another worker finds the job stalled and
 * runs it again (once: a job that stalls twice, such as an input that crashes
 * the process, fails for good and is reported, never retried forever).
 */
import { Job, Queue, Worker } from 'bullmq';

import type { Device } from '../tensor';
import { QUEUE_NAME, assertReachable, connectionOptions } from './connection';
import type { ChunkData, ChunkResult, FinalData, FlowSummary } from './jobs';

export { WORKER_DEFAULTS } from './jobs';
import { ModelCache } from './model_cache';
import { runChunk, runFinal } from './processors';

export interface WorkerOptions {
  queue: string;
  concurrency: number;
  device?: Device;
  /** Shown in Redis' client list and the logs. */
  name?: string;
  maxModels: number;
  /** How long a job's lock lasts without renewal: how soon a dead worker's job is taken over. */
  lockS: number;
  onLog?: (message: string) => void;
}

export interface RunningWorker {
  /** Finishes the jobs in hand, takes no more, and disposes the models. */
  close(): Promise<void>;
}

export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  // A wrong address is said at once; a Redis that goes away later is waited for.
  await assertReachable(o.queue);
  const connection = connectionOptions(o.queue, 'worker');
  const queue = new Queue(QUEUE_NAME, { connection });
  const models = new ModelCache(o.maxModels);
  const ctx = { models, device: o.device };
  const log = o.onLog ?? (() => undefined);
  const worker = new Worker<ChunkData | FinalData, ChunkResult | FlowSummary>(
    QUEUE_NAME,
    (job: Job<ChunkData | FinalData>) => (job.name === 'final' ? runFinal(job as Job<FinalData>, queue) : runChunk(job.data as ChunkData, ctx)),
    {
      connection,
      concurrency: o.concurrency,
      lockDuration: o.lockS * 1000,
      stalledInterval: o.lockS * 1000,
      maxStalledCount: 1,
      ...(o.name ? { name: o.name } : {}),
    },
  );
  worker.on('failed', (job, err) => log(`job ${job?.id ?? '?'} failed (attempt ${job?.attemptsMade ?? '?'}): ${err.message}`));
  worker.on('completed', (job) => log(`job ${job.id} done`));
  // Connection trouble is retried by the client; it is logged, never allowed to end the process.
  worker.on('error', (err) => log(`queue: ${err.message}`));
  queue.on('error', (err) => log(`queue: ${err.message}`));
  await worker.waitUntilReady();
  return {
    close: async () => {
      await worker.close();
      await queue.close();
      models.clear();
    },
  };
}
