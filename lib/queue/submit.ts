/**
 * `tinyemo submit`: a submission becomes one flow on the queue (chunks of
 * inputs, then a final job). The same submission again, while the first is
 * still queued or running, adds nothing; once it has finished, it runs again
 * (its outputs recognise what is already done and keep it).
 */
import { FlowProducer, Job, Queue } from 'bullmq';
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { listImages } from '../io/image';
import { readFeaturesInfo } from '../data/features_info';
import { assertSameFeatures, checkFeatureTargets } from '../models/vision/feature_files';
import { QUEUE_NAME, assertReachable, connectionOptions, queueCall } from './connection';
import { CHUNK_OPTIONS, ChunkData, FeaturesChunk, FinalData, FlowSummary, JobKind, JsonlChunk, submissionId } from './jobs';

export interface Submitted {
  id: string;
  chunks: number;
  inputs: number;
  /** False when the same submission was already on the queue (nothing was added). */
  added: boolean;
}

export interface FeaturesSubmission {
  images: string;
  /** The tower's folder (resolved), and how the features record it. */
  vision: string;
  visionName: string;
  out: string;
  chunk: number;
  dtype: 'f32' | 'f16';
  batchSize: number;
  maxPixels: number;
  precision?: 'bf16';
}

const chunked = <T>(xs: readonly T[], n: number): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

export async function submitFeatures(queueUrl: string, s: FeaturesSubmission): Promise<Submitted> {
  await assertReachable(queueUrl); // before listing what may be 100,000s of images
  const root = path.resolve(s.images);
  const out = path.resolve(s.out);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new TinyEmoError('NOT_FOUND', `${s.images} is not a folder`);
  assertSameFeatures(s.out, readFeaturesInfo(out), { vision: s.visionName, dtype: s.dtype, precision: s.precision });
  const rels = listImages(root);
  checkFeatureTargets(rels);
  fs.mkdirSync(out, { recursive: true });
  const base = {
    kind: 'features' as const,
    root,
    out,
    vision: path.resolve(s.vision),
    visionName: s.visionName,
    dtype: s.dtype,
    batchSize: s.batchSize,
    maxPixels: s.maxPixels,
    // Only a bf16 submission says so: an f32 one keeps the job ids it always had.
    ...(s.precision ? { precision: s.precision } : {}),
  };
  const chunks: FeaturesChunk[] = chunked(rels, s.chunk).map((part) => ({ ...base, rels: part }));
  const id = submissionId('features', [base, rels]);
  const final: FinalData = { kind: 'features-final', out, vision: base.vision, visionName: s.visionName, dtype: s.dtype };
  return addFlow(queueUrl, id, final, chunks, rels.length);
}

/** A classify or reason submission: the chunks' settings, the inputs, the output file and the chunk size. */
export type JsonlSubmission = Omit<JsonlChunk, 'files' | 'index' | 'parts'> & { files: readonly string[]; out: string; chunk: number };

export async function submitJsonl(queueUrl: string, s: JsonlSubmission): Promise<Submitted> {
  await assertReachable(queueUrl);
  const files = s.files.map((f) => path.resolve(f));
  if (files.length === 0) throw new TinyEmoError('INVALID_ARGUMENT', 'no images given');
  const out = path.resolve(s.out);
  const parts = `${out}.parts`;
  const resolved = {
    model: path.resolve(s.model),
    vision: s.vision && fs.existsSync(s.vision) ? path.resolve(s.vision) : s.vision,
    mllm: s.mllm && fs.existsSync(s.mllm) ? path.resolve(s.mllm) : s.mllm,
    tokenizer: s.tokenizer && path.resolve(s.tokenizer),
  };
  const base = { kind: s.kind, parts, ...resolved, topK: s.topK, maxNewTokens: s.maxNewTokens, batchSize: s.batchSize, ...(s.precision ? { precision: s.precision } : {}) };
  const chunks: JsonlChunk[] = chunked(files, s.chunk).map((part, index) => ({ ...base, files: part, index }));
  const id = submissionId(s.kind as JobKind, [base, out, files]);
  return addFlow(queueUrl, id, { kind: 'jsonl-final', out, parts, chunks: chunks.length }, chunks, files.length);
}

function addFlow(queueUrl: string, id: string, final: FinalData, chunks: ChunkData[], inputs: number): Promise<Submitted> {
  return queueCall(queueUrl, () => addFlowNow(queueUrl, id, final, chunks, inputs));
}

async function addFlowNow(queueUrl: string, id: string, final: FinalData, chunks: ChunkData[], inputs: number): Promise<Submitted> {
  const connection = connectionOptions(queueUrl);
  const queue = new Queue(QUEUE_NAME, { connection });
  const flows = new FlowProducer({ connection });
  try {
    const existing = await queue.getJob(id);
    if (existing) {
      const state = await existing.getState();
      if (state !== 'completed' && state !== 'failed') return { id, chunks: chunks.length, inputs, added: false };
      await existing.remove({ removeChildren: true });
    }
    await flows.add({
      name: 'final',
      queueName: QUEUE_NAME,
      data: final,
      opts: { jobId: id, attempts: 3, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: false, removeOnFail: false },
      children: chunks.map((data, i) => ({ name: 'chunk', queueName: QUEUE_NAME, data, opts: { ...CHUNK_OPTIONS, jobId: `${id}-${i}` } })),
    });
    return { id, chunks: chunks.length, inputs, added: true };
  } finally {
    await flows.close();
    await queue.close();
  }
}

/** Waits for a submission's final job; `onProgress` hears chunks finished of all. */
export function waitForFlow(queueUrl: string, id: string, chunks: number, onProgress?: (done: number, total: number) => void): Promise<FlowSummary> {
  return queueCall(queueUrl, () => waitNow(queueUrl, id, chunks, onProgress));
}

async function waitNow(queueUrl: string, id: string, chunks: number, onProgress?: (done: number, total: number) => void): Promise<FlowSummary> {
  const queue = new Queue(QUEUE_NAME, { connection: connectionOptions(queueUrl) });
  queue.on('error', () => undefined); // a lost connection is retried; the wait goes on
  try {
    for (;;) {
      const o = await flowOutcome(queue, id);
      if ('ended' in o) return o.ended;
      const c = await o.running.getDependenciesCount({ processed: true, ignored: true, failed: true });
      onProgress?.((c.processed ?? 0) + (c.ignored ?? 0) + (c.failed ?? 0), chunks);
      await new Promise((r) => setTimeout(r, 300));
    }
  } finally {
    await queue.close();
  }
}

/** What `flowOutcome` reads of a job. */
export type FlowJob = Pick<Job, 'getState' | 'returnvalue' | 'failedReason'>;

/** What `flowOutcome` asks of the queue. */
export interface JobLookup<J extends FlowJob = FlowJob> {
  getJob(id: string): Promise<J | undefined>;
}

/**
 * The submission's summary once its final job has completed, or the job while it runs. A job read before it ended
 * carries no return value or failure reason even when its state, asked next, says it ended: those are read from a
 * second fetch made after the state was seen.
 */
export async function flowOutcome<J extends FlowJob>(queue: JobLookup<J>, id: string): Promise<{ ended: FlowSummary } | { running: J }> {
  const gone = () => new TinyEmoError('NOT_FOUND', `submission ${id} is not on the queue (cleaned?)`);
  const job = await queue.getJob(id);
  if (!job) throw gone();
  const state = await job.getState();
  if (state !== 'completed' && state !== 'failed') return { running: job };
  const done = await queue.getJob(id);
  if (!done) throw gone();
  if (state === 'failed') throw new TinyEmoError('INTERNAL', `submission ${id} failed: ${done.failedReason}`);
  const summary = done.returnvalue as FlowSummary | null;
  if (!summary || !Array.isArray(summary.failed) || !Array.isArray(summary.skipped))
    throw new TinyEmoError('INTERNAL', `submission ${id} completed without a summary (a job of another tinyemo version?)`);
  return { ended: summary };
}
