/**
 * Classify and reason results as JSON lines. Each chunk writes one part file
 * (atomically: a part that exists is whole); the submission's final job
 * merges the parts, in chunk order, into the output file (atomically), with
 * each input once. Every line carries the input's SHA-256, so a retried or
 * duplicated chunk whose inputs are unchanged is recognised and not redone.
 */
import * as fs from 'fs';
import * as path from 'path';

import { writeFileAtomic } from '../io/file';
import type { Skip } from './jobs';

/** A result line: the input, its hash, and what the command's --json gives for it. */
export type ResultLine = { file: string; sha256: string } & Record<string, unknown>;
/** A part holds results and skips, in the chunk's input order. */
export type PartLine = ResultLine | { file: string; skipped: { reason: string; code: string } };

export const partFile = (parts: string, index: number) => path.join(parts, `part-${String(index).padStart(6, '0')}.jsonl`);

export function writePart(file: string, lines: readonly PartLine[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, [Buffer.from(lines.map((l) => `${JSON.stringify(l)}\n`).join(''))]);
}

export function readPart(file: string): PartLine[] | undefined {
  if (!fs.existsSync(file)) return undefined;
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as PartLine);
}

/** Whether a part already holds results for exactly these inputs (by hash). */
export function partCovers(lines: readonly PartLine[] | undefined, inputs: ReadonlyArray<{ file: string; sha256: string }>): boolean {
  if (!lines) return false;
  const have = new Map(lines.filter((l): l is ResultLine => 'sha256' in l).map((l) => [l.file, l.sha256]));
  return inputs.every((x) => have.get(x.file) === x.sha256);
}

/**
 * Merges parts 0..chunks−1 into `out` (each input once, first seen wins) and removes the parts. Run again after
 * a crash between the two, it finds the output already merged and reads the counts from it.
 */
export function mergeParts(out: string, parts: string, chunks: number): { done: number; skipped: Skip[] } {
  if (!fs.existsSync(parts) && fs.existsSync(out)) {
    return { done: fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).length, skipped: [] };
  }
  const seen = new Set<string>();
  const results: string[] = [];
  const skipped: Skip[] = [];
  for (let i = 0; i < chunks; ++i) {
    for (const l of readPart(partFile(parts, i)) ?? []) {
      if (seen.has(l.file)) continue;
      seen.add(l.file);
      if ('skipped' in l) {
        const s = l.skipped as { reason: string; code: string };
        skipped.push({ file: l.file, reason: s.reason, code: s.code });
      } else results.push(`${JSON.stringify(l)}\n`);
    }
  }
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeFileAtomic(out, [Buffer.from(results.join(''))]);
  fs.rmSync(parts, { recursive: true, force: true });
  return { done: results.length, skipped };
}
