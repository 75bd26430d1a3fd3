/**
 * Instruction data in LLaVA's format, as TinyLLaVA and TinyEmo train on it:
 *   {"id", "image", "conversations": [{"from": "human", "value": "<image>\n..."}, {"from": "gpt", "value": "..."}]}
 * read from and written to JSON (a list) or JSON lines, and validated: turns
 * alternate human/gpt starting with human and ending with gpt, exactly one
 * "<image>" in the record (in the first human turn), an image named.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError, invalidFile } from '../errors';
import { writeFileAtomic } from '../io/file';
import { IMAGE_PLACEHOLDER } from '../text/tinyllava_prompt';

export { IMAGE_PLACEHOLDER };

export interface Turn {
  from: 'human' | 'gpt';
  value: string;
}

export interface InstructRecord {
  id: string;
  image: string;
  conversations: Turn[];
  /** Extra fields (label, task, teacher, ...) are kept as they are. */
  [key: string]: unknown;
}

/** Why a record is not valid, or undefined when it is. */
export function recordProblem(r: unknown, opts: { imageRoot?: string } = {}): string | undefined {
  const o = r as Partial<InstructRecord>;
  if (!o || typeof o !== 'object' || Array.isArray(o)) return 'not a JSON object';
  if (typeof o.id !== 'string' || !o.id) return 'no "id" string';
  if (typeof o.image !== 'string' || !o.image) return 'no "image" string';
  if (!Array.isArray(o.conversations) || o.conversations.length < 2) return 'needs "conversations" with at least a human and a gpt turn';
  let images = 0;
  for (let i = 0; i < o.conversations.length; ++i) {
    const t = o.conversations[i] as Partial<Turn>;
    const want = i % 2 === 0 ? 'human' : 'gpt';
    if (!t || t.from !== want) return `turn ${i + 1} must be from "${want}"`;
    if (typeof t.value !== 'string' || !t.value.trim()) return `turn ${i + 1} is empty`;
    const n = t.value.split(IMAGE_PLACEHOLDER).length - 1;
    if (n && (i !== 0 || want !== 'human')) return `"<image>" outside the first human turn (turn ${i + 1})`;
    images += n;
  }
  if (o.conversations.length % 2 !== 0) return 'the last turn must be from "gpt"';
  if (images !== 1) return `${images} "<image>" placeholders; a record needs exactly one`;
  if (opts.imageRoot) {
    const f = path.resolve(opts.imageRoot, o.image);
    if (!f.startsWith(path.resolve(opts.imageRoot) + path.sep)) return `image path "${o.image}" leaves the image folder`;
    if (!fs.existsSync(f)) return `image "${o.image}" not found`;
  }
  return undefined;
}

export interface ReadResult {
  records: InstructRecord[];
  invalid: Array<{ index: number; id?: string; reason: string }>;
}

/** A .json list or .jsonl file; invalid records are reported, not thrown (a whole file that is not JSON is an error). */
export function readInstructFile(file: string, opts: { imageRoot?: string } = {}): ReadResult {
  if (!fs.existsSync(file)) throw new TinyEmoError('NOT_FOUND', `${file}: no such file`);
  const text = fs.readFileSync(file, 'utf8');
  let items: unknown[];
  if (/\.jsonl$/i.test(file) || !text.trimStart().startsWith('[')) {
    items = [];
    text.split(/\r?\n/).forEach((line, k) => {
      if (!line.trim()) return;
      try {
        items.push(JSON.parse(line));
      } catch {
        items.push({ __bad: `line ${k + 1} is not JSON` });
      }
    });
  } else {
    try {
      const v = JSON.parse(text) as unknown;
      if (!Array.isArray(v)) throw invalidFile(file, 'a .json instruct file must be a list of records');
      items = v;
    } catch (e) {
      if (e instanceof TinyEmoError) throw e;
      throw invalidFile(file, 'not JSON');
    }
  }
  const records: InstructRecord[] = [];
  const invalid: ReadResult['invalid'] = [];
  items.forEach((it, index) => {
    const bad = (it as { __bad?: string }).__bad;
    const why = bad ?? recordProblem(it, opts);
    if (why) invalid.push({ index, id: typeof (it as { id?: unknown }).id === 'string' ? (it as { id: string }).id : undefined, reason: why });
    else records.push(it as InstructRecord);
  });
  return { records, invalid };
}

/** Writes records as a .json list or JSON lines (by the name), atomically; every record must be valid. */
export function writeInstructFile(file: string, records: readonly InstructRecord[]): void {
  records.forEach((r, i) => {
    const why = recordProblem(r);
    if (why) throw new TinyEmoError('INVALID_ARGUMENT', `record ${i} (${String(r.id)}): ${why}`);
  });
  const body = /\.jsonl$/i.test(file) ? records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : '') : `${JSON.stringify(records, null, 1)}\n`;
  writeFileAtomic(file, [Buffer.from(body)]);
}
