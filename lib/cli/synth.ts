/** `tinyemo synth --data DIR --task T --teacher URL [--teacher-model NAME] --out FILE.jsonl`: instruct data from a teacher model. */
import { invalid } from '../errors';
import { SynthStats, synthesize } from '../data/synth';
import { optionalNumber } from './args';
import { SynthTask } from '../data/synth_tasks';
import { clearBar, progressBar } from './progress';

export interface SynthFlags {
  data: string;
  task: string;
  teacher?: string;
  teacherModel?: string;
  out: string;
  concurrency?: string;
  rpm?: string;
  retries?: string;
  attempts?: string;
  timeout?: string;
  fullLabels?: boolean;
  seed?: string;
  limit?: string;
  json?: boolean;
}


export async function synthCommand(f: SynthFlags): Promise<SynthStats> {
  const url = f.teacher ?? process.env.TINYEMO_TEACHER_URL;
  if (!url) throw invalid('give --teacher URL (an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1) or set TINYEMO_TEACHER_URL');
  const model = f.teacherModel ?? process.env.TINYEMO_TEACHER_MODEL;
  if (!model) throw invalid('give --teacher-model NAME (the model the endpoint serves) or set TINYEMO_TEACHER_MODEL');
  const timeout = optionalNumber(f.timeout, 'timeout', true);
  const tty = !f.json && process.stderr.isTTY === true;
  const bar = progressBar('images');
  const stats = await synthesize({
    data: f.data,
    task: f.task as SynthTask,
    teacher: { url, model, apiKey: process.env.TINYEMO_TEACHER_API_KEY ?? process.env.OPENAI_API_KEY, timeoutMs: timeout !== undefined ? timeout * 1000 : undefined },
    out: f.out,
    concurrency: optionalNumber(f.concurrency, 'concurrency', true),
    rpm: optionalNumber(f.rpm, 'rpm', true),
    retries: optionalNumber(f.retries, 'retries', true),
    attempts: optionalNumber(f.attempts, 'attempts', true),
    fullLabels: f.fullLabels === true,
    seed: optionalNumber(f.seed, 'seed', true),
    limit: optionalNumber(f.limit, 'limit', true),
    onProgress: tty ? bar : undefined,
  });
  if (tty) clearBar();
  return stats;
}

export function formatSynth(s: SynthStats, out: string): string {
  const rejected = Object.entries(s.rejected).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  return [
    `${s.written} records written, ${s.resumed} already there, ${s.duplicates} duplicates skipped; ${s.records} ${s.task} records in ${out}`,
    `rejected images: ${rejected}; ${s.transientRetries} transient retries; answers ${s.answerChars.median} characters (median)`,
    `statistics: ${out}.stats.json and ${out}.stats.svg`,
  ].join('\n');
}
