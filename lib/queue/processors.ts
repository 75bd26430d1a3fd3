/**
 * What a worker does with each job: a chunk of features, classifications or
 * reasonings, or a submission's final step. An input that cannot be read or
 * decoded (a hostile image) is skipped with its reason inside the chunk, so it
 * is never retried; only a failure of the chunk itself (a file system error,
 * a lost model folder) throws, and BullMQ retries it with backoff.
 */
import type { Job, Queue } from 'bullmq';
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { removeStaleTemporaries } from '../io/file';
import { readImageBytes } from '../io/image';
import { EmotionReasoner } from '../models/llm/reasoner';
import { ImageClassifier } from '../models/projector/image_classifier';
import { encodeFeatureSlice, planFeatureSlice, recordFeaturesInfo, sha256Hex, writeSkippedList } from '../models/vision/feature_files';
import { loadVisionTower } from '../models/vision/tower';
import type { Device } from '../tensor';
import type { ChunkData, ChunkResult, FeaturesChunk, FinalData, FlowSummary, JsonlChunk, Skip } from './jobs';
import { PartLine, mergeParts, partCovers, partFile, readPart, writePart } from './jsonl_parts';
import { ModelCache } from './model_cache';

export interface WorkerContext {
  models: ModelCache;
  device?: Device;
}

/** Inputs live on a file system every worker sees; a worker that does not see a job's folders says so. */
function assertVisible(dirs: Iterable<string>): void {
  for (const d of new Set(dirs)) {
    if (!fs.existsSync(d)) throw new Error(`this worker cannot see ${d}: queue workers need the job's inputs and outputs at the same paths (a shared file system)`);
  }
}

export function runChunk(d: ChunkData, ctx: WorkerContext): Promise<ChunkResult> {
  return d.kind === 'features' ? featuresChunk(d, ctx) : jsonlChunk(d, ctx);
}

async function featuresChunk(d: FeaturesChunk, ctx: WorkerContext): Promise<ChunkResult> {
  assertVisible([d.root, path.dirname(path.resolve(d.out))]);
  const o = { root: d.root, out: d.out, dtype: d.dtype, vision: d.visionName, reuse: 'same-source' as const, batchSize: d.batchSize, image: { maxPixels: d.maxPixels } };
  const plan = await planFeatureSlice(d.rels, o);
  if (plan.todo.length === 0) return { done: 0, kept: plan.kept, skipped: plan.skipped };
  const key = JSON.stringify(['vision', d.vision, ctx.device, d.precision]);
  return ctx.models.use(
    key,
    () => loadVisionTower(d.vision, { device: ctx.device, precision: d.precision }),
    (t) => t.model.dispose(),
    async (tower) => {
      recordFeaturesInfo(tower, d.out, d.visionName, d.dtype, d.precision);
      const r = await encodeFeatureSlice(tower, plan, o);
      return { done: r.written, kept: r.kept, skipped: r.skipped };
    },
  );
}

/** The chunk's images read and hashed; unreadable ones are skipped. */
async function readInputs(files: readonly string[]): Promise<{ ok: Array<{ file: string; bytes: Buffer; sha256: string }>; skipped: Skip[] }> {
  const ok: Array<{ file: string; bytes: Buffer; sha256: string }> = [];
  const skipped: Skip[] = [];
  for (const file of files) {
    try {
      const bytes = await readImageBytes(file);
      ok.push({ file, bytes, sha256: sha256Hex(bytes) });
    } catch (e) {
      if (!(e instanceof TinyEmoError)) throw e;
      skipped.push({ file, reason: e.message, code: e.code });
    }
  }
  return { ok, skipped };
}

async function jsonlChunk(d: JsonlChunk, ctx: WorkerContext): Promise<ChunkResult> {
  assertVisible([...d.files.map((f) => path.dirname(f)), path.dirname(d.parts)]);
  const part = partFile(d.parts, d.index);
  const inputs = await readInputs(d.files);
  if (partCovers(readPart(part), inputs.ok)) return { done: 0, kept: inputs.ok.length, skipped: inputs.skipped };
  const lines = d.kind === 'classify' ? await classifyLines(d, inputs.ok, ctx) : await reasonLines(d, inputs.ok, ctx);
  const all: PartLine[] = [...lines, ...inputs.skipped.map((s) => ({ file: s.file, skipped: { reason: s.reason, code: s.code } }))];
  const at = new Map(d.files.map((f, i) => [f, i]));
  all.sort((a, b) => at.get(a.file)! - at.get(b.file)!);
  writePart(part, all);
  const skipped = all.flatMap((l) => ('skipped' in l ? [{ file: l.file, ...(l.skipped as { reason: string; code: string }) }] : []));
  return { done: all.length - skipped.length, kept: 0, skipped };
}

type Input = { file: string; bytes: Buffer; sha256: string };

async function classifyLines(d: JsonlChunk, inputs: Input[], ctx: WorkerContext): Promise<PartLine[]> {
  const key = JSON.stringify(['classify', d.model, d.vision, ctx.device, d.precision]);
  return ctx.models.use(
    key,
    () => ImageClassifier.load(d.model, { vision: d.vision, device: ctx.device, precision: d.precision }),
    (m) => m.dispose(),
    async (ic) => {
      const r = await ic.classifyImages(
        inputs.map((x) => ({ name: x.file, bytes: x.bytes })),
        { topK: d.topK, batchSize: d.batchSize },
      );
      const sha = new Map(inputs.map((x) => [x.file, x.sha256]));
      return [
        ...r.results.map((x) => ({ file: x.file, sha256: sha.get(x.file)!, predictions: x.predictions })),
        ...r.skipped.map((s) => ({ file: s.file, skipped: { reason: s.reason, code: s.code } })),
      ];
    },
  );
}

async function reasonLines(d: JsonlChunk, inputs: Input[], ctx: WorkerContext): Promise<PartLine[]> {
  const key = JSON.stringify(['reason', d.model, d.mllm, d.tokenizer, d.vision, ctx.device, d.precision]);
  return ctx.models.use(
    key,
    () => EmotionReasoner.load(d.model, { mllm: d.mllm, tokenizer: d.tokenizer, vision: d.vision, device: ctx.device, precision: d.precision }),
    (m) => m.dispose(),
    async (r) => {
      const lines: PartLine[] = [];
      for (const x of inputs) {
        try {
          let scores: unknown = [];
          for await (const e of r.reason({ name: x.file, bytes: x.bytes }, { maxNewTokens: d.maxNewTokens, topK: d.topK })) {
            if (e.type === 'label') scores = e.scores;
            if (e.type === 'done') lines.push({ ...e, scores, sha256: x.sha256 });
          }
        } catch (e) {
          if (!(e instanceof TinyEmoError) || (e.code !== 'INVALID_FILE' && e.code !== 'UNSUPPORTED' && e.code !== 'NOT_FOUND')) throw e;
          lines.push({ file: x.file, skipped: { reason: e.message, code: e.code } });
        }
      }
      return lines;
    },
  );
}

/** The submission's last step: the merged outputs and the summary, from every chunk's result and failure. */
export async function runFinal(job: Job<FinalData>, queue: Queue): Promise<FlowSummary> {
  const values = (await job.getChildrenValues()) as Record<string, ChunkResult>;
  const failures = await job.getIgnoredChildrenFailures();
  const idOf = (key: string) => key.slice(key.lastIndexOf(':') + 1);
  const indexOf = (key: string) => Number(idOf(key).slice(idOf(key).lastIndexOf('-') + 1));
  const results = Object.entries(values)
    .sort(([a], [b]) => indexOf(a) - indexOf(b))
    .map(([, v]) => v);
  const failed = await Promise.all(
    Object.entries(failures).map(async ([key, reason]) => {
      const child = await queue.getJob(idOf(key));
      const data = child?.data as ChunkData | undefined;
      return { chunk: idOf(key), files: data ? (data.kind === 'features' ? data.rels : data.files) : [], reason: String(reason) };
    }),
  );
  const d = job.data;
  const done = results.reduce((a, r) => a + r.done, 0);
  const kept = results.reduce((a, r) => a + r.kept, 0);
  if (d.kind === 'features-final') {
    const skipped = results.flatMap((r) => r.skipped);
    writeSkippedList(d.out, skipped);
    // Every chunk has finished: what a killed worker left half-written can go.
    removeStaleTemporaries(d.out);
    return { done, kept, skipped, failed, out: d.out };
  }
  const merged = mergeParts(d.out, d.parts, d.chunks);
  return { done: merged.done, kept: 0, skipped: merged.skipped, failed, out: d.out };
}
