/**
 * The jobs on the queue. A submission is one BullMQ flow: a `final` parent
 * whose children are chunks of inputs. Chunks run on any worker; the parent
 * runs once, after every chunk has finished (or failed for good), and writes
 * what depends on all of them (skipped.json, the merged JSON lines). Job ids
 * are derived from what is submitted, so submitting the same work twice adds
 * nothing while the first submission's jobs are kept.
 *
 * Paths in jobs are absolute: workers read inputs and write outputs on a file
 * system that every worker sees at the same paths.
 */
import { createHash } from 'crypto';
import type { JobsOptions } from 'bullmq';

import type { Skip } from '../models/vision/feature_files';

export type { Skip };

export type JobKind = 'features' | 'classify' | 'reason';

export interface FeaturesChunk {
  kind: 'features';
  /** The images' folder; `rels` are relative to it. */
  root: string;
  rels: string[];
  out: string;
  /** The tower's folder (resolved), and how features record it. */
  vision: string;
  visionName: string;
  dtype: 'f32' | 'f16';
  batchSize: number;
  maxPixels: number;
  /** 'bf16' when the tower's products run in bf16 (absent: f32); a worker without AVX512_BF16 fails the chunk. */
  precision?: 'bf16';
}

/** What a classify or reason chunk needs; results go to `parts/part-<index>.jsonl`. */
export interface JsonlChunk {
  kind: 'classify' | 'reason';
  files: string[];
  index: number;
  parts: string;
  model: string;
  vision?: string;
  mllm?: string;
  tokenizer?: string;
  topK: number;
  maxNewTokens: number;
  batchSize: number;
  /** As FeaturesChunk's: the vision towers' products. */
  precision?: 'bf16';
}

export type ChunkData = FeaturesChunk | JsonlChunk;

export type FinalData =
  { kind: 'features-final'; out: string; vision: string; visionName: string; dtype: 'f32' | 'f16' } | { kind: 'jsonl-final'; out: string; parts: string; chunks: number };

/** A chunk's return value. */
export interface ChunkResult {
  done: number;
  /** Already done by an earlier attempt or submission (recognised by the input's hash). */
  kept: number;
  skipped: Skip[];
}

/** The final job's return value: the submission's summary. */
export interface FlowSummary {
  done: number;
  kept: number;
  skipped: Skip[];
  /** Chunks that failed for good, with their inputs and the reason. */
  failed: Array<{ chunk: string; files: string[]; reason: string }>;
  out: string;
}

/** A worker's settings unless told otherwise. */
export const WORKER_DEFAULTS = { concurrency: 1, maxModels: 2, lockS: 30 } as const;

/** Retries of a chunk that threw (a transient failure), with exponential backoff from 2 s. */
export const CHUNK_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2000 },
  // A chunk that fails for good does not hold the submission: the final job runs and reports it.
  ignoreDependencyOnFailure: true,
  removeOnComplete: false,
  removeOnFail: false,
};

/** A short id of a submission's content (BullMQ ids must not contain ':'). */
export function submissionId(kind: JobKind, parts: readonly unknown[]): string {
  return `${kind}-${createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 20)}`;
}
