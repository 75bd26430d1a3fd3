/** The arithmetic of `npm run bench:recipe`'s outer folds: spreads, paired differences, a test set's class mix. */
import { EvalReport } from '../lib/eval/report';

/** Mean and sample standard deviation. */
export function stats(a: number[]): { mean: number; sd: number } {
  const mean = a.reduce((x, y) => x + y, 0) / a.length;
  const sd = Math.sqrt(a.reduce((x, y) => x + (y - mean) ** 2, 0) / Math.max(1, a.length - 1));
  return { mean, sd };
}

/** "anger=107,disgust=96" → { anger: 107, disgust: 96 }. */
export function parseCounts(spec: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const part of spec.split(',')) {
    const m = /^([^=]+)=([0-9.e+]+)$/.exec(part);
    if (!m || !(Number(m[2]) > 0)) throw new Error(`--target-counts: "${part}" is not NAME=COUNT with a positive count`);
    counts[m[1]] = Number(m[2]);
  }
  return counts;
}

/**
 * Top-1 on a test set with `counts` samples of each class: the per-class recalls weighted by those counts. A
 * count for a class the data lacks, or a class without a count, is refused: either is a typo that would
 * silently change the figure.
 */
export function reweighted(r: Pick<EvalReport, 'perClass'>, counts: Record<string, number>): number {
  const classes = Object.keys(r.perClass);
  const unknown = Object.keys(counts).filter((c) => !classes.includes(c));
  if (unknown.length) throw new Error(`--target-counts names ${unknown.join(', ')}, which the data has no class of (classes: ${classes.join(', ')})`);
  let hit = 0;
  let n = 0;
  for (const c of classes) {
    if (counts[c] === undefined) throw new Error(`--target-counts gives no count for class "${c}"`);
    hit += counts[c] * r.perClass[c].accuracy;
    n += counts[c];
  }
  return hit / n;
}

/** Mean and standard error of a - base, element by element (the same folds and seeds on both sides). */
export function pairedDiff(a: number[], base: number[]): { mean: number; se: number } {
  if (a.length !== base.length) throw new Error(`paired difference of ${a.length} and ${base.length} figures`);
  const st = stats(a.map((x, i) => x - base[i]));
  return { mean: st.mean, se: st.sd / Math.sqrt(a.length) };
}
