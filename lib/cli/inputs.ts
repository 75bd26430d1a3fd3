/**
 * The one rule of every command that takes many inputs (classify, features, eval, bias, synth, reason):
 * - a bad input is skipped and reported: listed under `skipped` in --json, one line on stderr;
 * - the command exits 0 when it produced at least one result, 2 when it produced none;
 * - with --strict, any skip fails the command (exit 2).
 */
import { FlagTable } from './flags';

export interface Skipped {
  file: string;
  reason: string;
}

export const STRICT_FLAG = {
  strict: { kind: 'boolean', help: 'fail (exit 2) when any input is skipped' },
} as const satisfies FlagTable;

/** The reason without the file's path again at its front ("x.jpg: x.jpg: not an image" reads badly). */
export function skipReason(file: string, reason: string): string {
  for (const prefix of [`${file}: `, `${file} `]) if (reason.startsWith(prefix)) return reason.slice(prefix.length);
  return reason;
}

export function skipOf(file: string, reason: string): Skipped {
  return { file, reason: skipReason(file, reason) };
}

/**
 * Reports the skips on stderr (one line each) and returns the exit code of the rule: 2 when nothing was produced or,
 * under --strict, when anything was skipped; else 0.
 */
export function inputsOutcome(produced: number, skips: readonly Skipped[], strict: boolean | undefined, say = (s: string) => process.stderr.write(`${s}\n`)): number {
  for (const s of skips) say(`skipped ${s.file}: ${skipReason(s.file, s.reason)}`);
  if (produced === 0) {
    say(`tinyemo: no result${skips.length ? `: all ${skips.length} inputs were skipped` : ''}`);
    return 2;
  }
  if (strict && skips.length) {
    say(`tinyemo: --strict: ${skips.length} input${skips.length === 1 ? ' was' : 's were'} skipped`);
    return 2;
  }
  return 0;
}
