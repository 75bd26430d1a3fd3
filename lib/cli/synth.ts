/** `tinyemo synth --data DIR --task T --teacher URL [--teacher-model NAME] --out FILE.jsonl`: instruct data from a teacher model. */
import { Command } from 'commander';
import { invalid } from '../errors';
import { SYNTH_DEFAULTS, SynthStats, synthesize } from '../data/synth';
import { TEACHER_TIMEOUT_S } from '../data/teacher';
import { SYNTH_TASKS, SynthTask } from '../data/synth_tasks';
import { clearBar, progressBar } from './progress';
import { FlagTable, FlagValues, addFlags, printResult, readFlags } from './flags';
import { STRICT_FLAG, inputsOutcome } from './inputs';

const d = SYNTH_DEFAULTS;

const FLAGS = {
  data: { arg: '<dir>', required: true, help: 'images, one sub-folder per class (the label)' },
  task: { arg: '<task>', required: true, help: SYNTH_TASKS.join(' | ') },
  teacher: { arg: '<url>', help: 'the endpoint, e.g. http://127.0.0.1:8000/v1 (or TINYEMO_TEACHER_URL); key from TINYEMO_TEACHER_API_KEY or OPENAI_API_KEY' },
  teacherModel: { arg: '<name>', help: 'the model it serves (or TINYEMO_TEACHER_MODEL)' },
  out: { arg: '<file>', required: true, help: 'JSON lines, appended to (an interrupted run resumes)' },
  concurrency: { arg: '<n>', kind: 'int', default: d.concurrency, help: 'requests in flight' },
  rpm: { arg: '<n>', kind: 'int', help: 'requests per minute, all workers together (default: no limit)' },
  retries: { arg: '<n>', kind: 'int', default: d.retries, help: 'retries of a request after 429, 5xx or a timeout' },
  attempts: { arg: '<n>', kind: 'int', default: d.attempts, help: 'answers asked for per image before discarding it' },
  timeout: { arg: '<s>', kind: 'int', default: TEACHER_TIMEOUT_S, help: 'seconds per request' },
  fullLabels: { kind: 'boolean', help: 'reason: list every label instead of a random subset with the gold one' },
  seed: { arg: '<n>', kind: 'int', default: d.seed, help: 'seed of the label subsets' },
  limit: { arg: '<n>', kind: 'int', help: 'only the first N images' },
  json: { kind: 'boolean', help: 'print the statistics as one JSON document' },
  ...STRICT_FLAG,
} as const satisfies FlagTable;

export type SynthFlags = FlagValues<typeof FLAGS>;

export function registerSynth(program: Command, exit: (code: number) => void): void {
  const cmd = program.command('synth').description('make instruction data with a teacher model (OpenAI-compatible endpoint) from a folder of labelled images');
  addFlags(cmd, FLAGS).action(async (raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    const r = await synthCommand(f);
    printResult(f.json, r, (x) => formatSynth(x, f.out));
    // The records in the file are the results (a resumed run that adds none still has them).
    exit(inputsOutcome(r.records, r.skipped, f.strict));
  });
}

export async function synthCommand(f: SynthFlags): Promise<SynthStats> {
  const url = f.teacher ?? process.env.TINYEMO_TEACHER_URL;
  if (!url) throw invalid('give --teacher URL (an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1) or set TINYEMO_TEACHER_URL');
  const model = f.teacherModel ?? process.env.TINYEMO_TEACHER_MODEL;
  if (!model) throw invalid('give --teacher-model NAME (the model the endpoint serves) or set TINYEMO_TEACHER_MODEL');
  const timeout = f.timeout;
  const tty = !f.json && process.stderr.isTTY === true;
  const bar = progressBar('images');
  const stats = await synthesize({
    data: f.data,
    task: f.task as SynthTask,
    teacher: { url, model, apiKey: process.env.TINYEMO_TEACHER_API_KEY ?? process.env.OPENAI_API_KEY, timeoutMs: timeout * 1000 },
    out: f.out,
    concurrency: f.concurrency,
    rpm: f.rpm,
    retries: f.retries,
    attempts: f.attempts,
    fullLabels: f.fullLabels,
    seed: f.seed,
    limit: f.limit,
    onProgress: tty ? bar : undefined,
  });
  if (tty) clearBar();
  return stats;
}

export function formatSynth(s: SynthStats, out: string): string {
  const rejected =
    Object.entries(s.rejected)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none';
  return [
    `${s.written} records written, ${s.resumed} already there, ${s.duplicates} duplicates skipped; ${s.records} ${s.task} records in ${out}`,
    `rejected images: ${rejected}; ${s.transientRetries} transient retries; answers ${s.answerChars.median} characters (median)`,
    `statistics: ${out}.stats.json and ${out}.stats.svg`,
  ].join('\n');
}
