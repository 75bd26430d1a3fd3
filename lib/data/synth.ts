/**
 * `tinyemo synth`: instruction records made by a teacher model from a folder
 * of labelled images (one sub-folder per class), run for real:
 *
 * - bounded concurrency and a requests-per-minute limit shared by the workers;
 * - transient failures (429, 5xx, timeouts, dropped connections) retried with
 *   exponential backoff and jitter (or the server's Retry-After); unusable
 *   answers (wrong form, wrong label) asked again, then discarded with the
 *   reason counted;
 * - append-only JSON lines: each record is one write of one line, so a crash
 *   loses at most the line being written, which the next run cuts off; ids
 *   already in the file are skipped (resume), so every id ends up there once;
 * - duplicate answers (the same human and gpt text) are not written twice;
 * - statistics (records per label, answer lengths, rejection reasons) as JSON
 *   and a small SVG chart next to the output.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { escapeXml } from '../util/xml';
import { writeFileAtomic } from '../io/file';
import { readImage } from '../io/image';
import { Rng } from '../util/rng';
import { listImages } from '../io/image';
import { InstructRecord } from './instruct';
import { SynthItem, SynthTask, SYNTH_TASKS, judgeAnswer, makeRecord, teacherRequest } from './synth_tasks';
import { TeacherConfig, TeacherError, askTeacher, mimeOf, teacherEndpoint } from './teacher';

export interface SynthOptions {
  data: string;
  task: SynthTask;
  teacher: TeacherConfig;
  out: string;
  concurrency?: number;
  /** Requests per minute across all workers (0: no limit). */
  rpm?: number;
  /** Retries of a request after a transient failure (default 4). */
  retries?: number;
  /** Answers asked for per image before it is discarded (default 3). */
  attempts?: number;
  /** Base of the exponential backoff (default 500 ms). */
  backoffMs?: number;
  seed?: number;
  /** `reason`: the full label list instead of a random subset. */
  fullLabels?: boolean;
  /** Only the first N images (after sorting). */
  limit?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface SynthStats {
  task: SynthTask;
  teacher: { url: string; model: string };
  images: number;
  /** Records in the output file now (this run's and earlier runs'). */
  records: number;
  written: number;
  /** Skipped because an earlier run made them. */
  resumed: number;
  duplicates: number;
  /** Images given up on, by reason (answers that never became usable, requests that kept failing). */
  rejected: Record<string, number>;
  /** The images given up on, each with its reason (the same reasons `rejected` counts). */
  skipped: Array<{ file: string; reason: string }>;
  /** Answers asked for again, by reason (before success or rejection). */
  retriedAnswers: Record<string, number>;
  transientRetries: number;
  perLabel: Record<string, number>;
  answerChars: { min: number; median: number; mean: number; max: number };
  seconds: number;
  /** A torn last line from a crash, cut off before appending. */
  repairedBytes: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new TinyEmoError('CANCELLED', 'synth was cancelled'));
    });
  });

/** A seed for one image: the same prompt on every run and resume. */
function itemSeed(seed: number, id: string, attempt: number): number {
  const h = crypto.createHash('sha256').update(`${seed}\0${id}\0${attempt}`).digest();
  return h.readUInt32LE(0);
}

function contentKey(r: InstructRecord): string {
  return crypto.createHash('sha256').update(JSON.stringify(r.conversations)).digest('hex');
}

/** Reads what an earlier run wrote; cuts a torn last line (a crash mid-write) so appending stays valid. */
function loadExisting(out: string): { ids: Set<string>; keys: Set<string>; records: InstructRecord[]; repaired: number } {
  const ids = new Set<string>();
  const keys = new Set<string>();
  const records: InstructRecord[] = [];
  if (!fs.existsSync(out)) return { ids, keys, records, repaired: 0 };
  const buf = fs.readFileSync(out);
  const end = buf.lastIndexOf(0x0a) + 1;
  let repaired = 0;
  if (end < buf.length) {
    repaired = buf.length - end;
    fs.truncateSync(out, end);
  }
  const lines = buf.subarray(0, end).toString('utf8').split('\n');
  lines.forEach((line, k) => {
    if (!line.trim()) return;
    let r: InstructRecord;
    try {
      r = JSON.parse(line) as InstructRecord;
    } catch {
      throw new TinyEmoError('INVALID_FILE', `${out}: line ${k + 1} is not JSON (not a file this command wrote?)`);
    }
    if (typeof r.id !== 'string') throw new TinyEmoError('INVALID_FILE', `${out}: line ${k + 1} has no id`);
    ids.add(r.id);
    keys.add(contentKey(r));
    records.push(r);
  });
  return { ids, keys, records, repaired };
}

/** Starts of requests spaced by 60 s / rpm across all workers. */
class RateLimit {
  private next = 0;
  constructor(private readonly rpm: number) {}
  async wait(signal?: AbortSignal): Promise<void> {
    if (!this.rpm) return;
    const gap = 60_000 / this.rpm;
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + gap;
    if (at > now) await sleep(at - now, signal);
  }
}

/** What synthesize uses where an option is not given (rpm 0: no limit). */
export const SYNTH_DEFAULTS = { concurrency: 4, rpm: 0, retries: 4, attempts: 3, seed: 0 } as const;

interface Settings {
  concurrency: number;
  rpm: number;
  retries: number;
  attempts: number;
  backoff: number;
  seed: number;
}

function settingsOf(o: SynthOptions): Settings {
  if (!SYNTH_TASKS.includes(o.task)) throw new TinyEmoError('INVALID_ARGUMENT', `--task is one of ${SYNTH_TASKS.join(', ')}, not "${String(o.task)}"`);
  const d = SYNTH_DEFAULTS;
  return {
    concurrency: intSetting(o.concurrency, 'concurrency', d.concurrency, 1),
    rpm: intSetting(o.rpm, 'rpm', d.rpm, 0),
    retries: intSetting(o.retries, 'retries', d.retries, 0),
    attempts: intSetting(o.attempts, 'attempts', d.attempts, 1),
    backoff: o.backoffMs ?? 500,
    seed: o.seed ?? d.seed,
  };
}

function intSetting(v: number | undefined, name: string, fallback: number, min: number): number {
  const x = v ?? fallback;
  if (!Number.isSafeInteger(x) || x < min) throw new TinyEmoError('INVALID_ARGUMENT', `${name} must be an integer ≥ ${min}`);
  return x;
}

/** The images of the data folder as items (their class folder is the label), and the taxonomy they span. */
function itemsOf(o: SynthOptions): { chosen: SynthItem[]; taxonomy: string[] } {
  if (!fs.existsSync(o.data) || !fs.statSync(o.data).isDirectory()) throw new TinyEmoError('NOT_FOUND', `${o.data} is not a folder`);
  teacherEndpoint(o.teacher.url);
  if (!o.teacher.model) throw new TinyEmoError('INVALID_ARGUMENT', 'the teacher needs a model name');
  const files = listImages(o.data).filter((f) => f.includes(path.sep));
  const items: SynthItem[] = files.map((f) => ({
    id: f
      .slice(0, f.length - path.extname(f).length)
      .split(path.sep)
      .join('/'),
    image: f.split(path.sep).join('/'),
    label: f.split(path.sep)[0],
  }));
  const taxonomy = [...new Set(items.map((i) => i.label))].sort();
  if (o.task === 'reason' && taxonomy.length < 2) throw new TinyEmoError('INVALID_ARGUMENT', `${o.data} needs at least two class folders for the reason task`);
  return { chosen: o.limit !== undefined ? items.slice(0, intSetting(o.limit, 'limit', 0, 1)) : items, taxonomy };
}

const count = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

export async function synthesize(o: SynthOptions): Promise<SynthStats> {
  const t0 = Date.now();
  const settings = settingsOf(o);
  const { chosen, taxonomy } = itemsOf(o);
  fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
  const existing = loadExisting(o.out);
  const todo = chosen.filter((it) => !existing.ids.has(`${o.task}:${it.id}`));
  const stats: SynthStats = {
    task: o.task,
    teacher: { url: o.teacher.url, model: o.teacher.model },
    images: chosen.length,
    records: 0,
    written: 0,
    resumed: chosen.length - todo.length,
    duplicates: 0,
    rejected: {},
    skipped: [],
    retriedAnswers: {},
    transientRetries: 0,
    perLabel: {},
    answerChars: { min: 0, median: 0, mean: 0, max: 0 },
    seconds: 0,
    repairedBytes: existing.repaired,
  };
  const fd = fs.openSync(o.out, 'a');
  try {
    await new Synthesis(o, settings, taxonomy, existing, stats, fd).run(todo, chosen.length);
  } finally {
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  }
  summarise(o, existing.records, stats);
  stats.seconds = (Date.now() - t0) / 1000;
  writeFileAtomic(`${o.out}.stats.json`, [Buffer.from(`${JSON.stringify(stats, null, 2)}\n`)]);
  writeFileAtomic(`${o.out}.stats.svg`, [Buffer.from(statsSvg(stats))]);
  return stats;
}

/** One run over the images still to do: workers ask the teacher, judge the answers, and append the records. */
class Synthesis {
  private readonly limiter: RateLimit;

  constructor(
    private readonly o: SynthOptions,
    private readonly settings: Settings,
    private readonly taxonomy: string[],
    private readonly existing: ReturnType<typeof loadExisting>,
    private readonly stats: SynthStats,
    private readonly fd: number,
  ) {
    this.limiter = new RateLimit(settings.rpm);
  }

  async run(todo: SynthItem[], total: number): Promise<void> {
    const o = this.o;
    let done = this.stats.resumed;
    o.onProgress?.(done, total);
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        if (o.signal?.aborted) throw new TinyEmoError('CANCELLED', 'synth was cancelled');
        const item = todo[next++];
        await this.one(item);
        o.onProgress?.(++done, total);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.settings.concurrency, Math.max(1, todo.length)) }, worker));
  }

  /** The teacher's answer, retried with backoff after transient failures. */
  private async ask(prompt: string, bytes: Uint8Array, mime: string): Promise<string> {
    const { o, settings } = this;
    for (let r = 0; ; ++r) {
      await this.limiter.wait(o.signal);
      try {
        return await askTeacher(o.teacher, prompt, { bytes, mime }, o.signal);
      } catch (e) {
        if (!(e instanceof TeacherError) || !e.retryable || r >= settings.retries || o.signal?.aborted) throw e;
        this.stats.transientRetries += 1;
        const wait = e.retryAfter !== undefined ? e.retryAfter * 1000 : Math.min(30_000, settings.backoff * 2 ** r) * (0.5 + Math.random());
        await sleep(wait, o.signal);
      }
    }
  }

  /** One image: up to `attempts` answers until one passes, then one record appended. */
  private async one(item: SynthItem): Promise<void> {
    const { o, stats, settings } = this;
    const file = path.join(o.data, ...item.image.split('/'));
    let bytes: Uint8Array;
    try {
      await readImage(file); // hostile files never reach the teacher
      bytes = fs.readFileSync(file);
    } catch (e) {
      this.reject(item, `unreadable image (${e instanceof TinyEmoError ? e.code : 'error'})`);
      return;
    }
    for (let attempt = 1; attempt <= settings.attempts; ++attempt) {
      const req = teacherRequest(o.task, item, this.taxonomy, new Rng(itemSeed(settings.seed, item.id, attempt)), o.fullLabels === true);
      let answer: string;
      try {
        answer = await this.ask(req.prompt, bytes, mimeOf(file));
      } catch (e) {
        if (!(e instanceof TeacherError)) throw e;
        this.reject(item, e.status ? `teacher error ${e.status}` : 'teacher unreachable or too slow');
        return;
      }
      const v = judgeAnswer(o.task, req, item, answer);
      if (v.ok) return this.append(makeRecord(o.task, item, v.human, v.answer, o.teacher.model));
      if (attempt === settings.attempts) this.reject(item, v.reason);
      else count(stats.retriedAnswers, v.reason);
    }
  }

  private reject(item: SynthItem, reason: string): void {
    count(this.stats.rejected, reason);
    this.stats.skipped.push({ file: item.image, reason });
  }

  private append(record: InstructRecord): void {
    const key = contentKey(record);
    if (this.existing.keys.has(key)) {
      this.stats.duplicates += 1;
      return;
    }
    this.existing.keys.add(key);
    this.existing.ids.add(record.id);
    // One write of one whole line: a crash can tear only this line, which the next run cuts off.
    fs.writeSync(this.fd, `${JSON.stringify(record)}\n`);
    this.existing.records.push(record);
    this.stats.written += 1;
  }
}

/** The task's records in the file: their count per label and the spread of answer lengths. */
function summarise(o: SynthOptions, records: InstructRecord[], stats: SynthStats): void {
  const mine = records.filter((r) => r.task === o.task || String(r.id).startsWith(`${o.task}:`));
  stats.records = mine.length;
  for (const r of mine) count(stats.perLabel, String(r.label ?? ''));
  const lengths = mine.map((r) => r.conversations[r.conversations.length - 1].value.length).sort((a, b) => a - b);
  if (lengths.length) {
    stats.answerChars = {
      min: lengths[0],
      median: lengths[lengths.length >> 1],
      mean: lengths.reduce((a, b) => a + b, 0) / lengths.length,
      max: lengths[lengths.length - 1],
    };
  }
}

/** Two bar groups: records per label, and images rejected per reason. */
export function statsSvg(s: SynthStats): string {
  // Labels right-aligned in a 220-px column (about 34 characters); longer ones end in an ellipsis and keep their
  // whole text as a tooltip.
  const bars = (title: string, entries: Array<[string, number]>, x0: number, color: string): string[] => {
    const max = Math.max(1, ...entries.map(([, v]) => v));
    const out = [`<text x="${x0}" y="20" font-weight="bold">${escapeXml(title)}</text>`];
    entries.forEach(([k, v], i) => {
      const y = 34 + i * 22;
      const w = (150 * v) / max;
      const shown = k.length > 34 ? `${k.slice(0, 33)}…` : k;
      out.push(`<text x="${x0 + 220}" y="${y + 13}" text-anchor="end"><title>${escapeXml(k)}</title>${escapeXml(shown)}</text>`);
      out.push(`<rect x="${x0 + 226}" y="${y}" width="${w.toFixed(1)}" height="16" fill="${color}"/>`);
      out.push(`<text x="${x0 + 230 + w}" y="${y + 13}">${v}</text>`);
    });
    return out;
  };
  const labels = Object.entries(s.perLabel).sort();
  const rejected = Object.entries(s.rejected).sort((a, b) => b[1] - a[1]);
  const rows = Math.max(labels.length, rejected.length, 1);
  const h = 60 + rows * 22;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="860" height="${h}" viewBox="0 0 860 ${h}" font-family="sans-serif" font-size="12">`,
    '<rect width="860" height="100%" fill="white"/>',
    ...bars(`${s.task}: records per label (${s.records})`, labels, 10, '#4e79a7'),
    ...bars(`rejected images (${Object.values(s.rejected).reduce((a, b) => a + b, 0)})`, rejected.length ? rejected : [['none', 0]], 430, '#e15759'),
    `<text x="10" y="${h - 8}" fill="#555">answers: median ${s.answerChars.median} chars (${s.answerChars.min}–${s.answerChars.max}); ${s.transientRetries} transient retries; ${s.duplicates} duplicates</text>`,
    '</svg>',
  ].join('\n');
}
