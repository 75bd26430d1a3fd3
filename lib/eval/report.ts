/** Classification metrics: top-k accuracy, per-class accuracy, macro-F1, confusion. */

export interface ClassMetrics {
  support: number;
  /** Recall: the fraction of this class's samples predicted as it. */
  accuracy: number;
  precision: number;
  f1: number;
}

export interface EvalReport {
  n: number;
  top1: number;
  top5: number;
  macroF1: number;
  /** By class name, in the order of `classes`. */
  perClass: Record<string, ClassMetrics>;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  classes: string[];
}

/** ranked[i] = the classes for sample i, best first (at least 1, ideally 5). */
export function evaluate(classes: readonly string[], targets: ArrayLike<number>, ranked: ReadonlyArray<ArrayLike<number>>): EvalReport {
  const C = classes.length;
  const n = targets.length;
  const confusion = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  let top1 = 0;
  let top5 = 0;
  for (let i = 0; i < n; ++i) {
    const r = ranked[i];
    const t = targets[i];
    confusion[t][r[0]] += 1;
    if (r[0] === t) top1 += 1;
    for (let k = 0; k < Math.min(5, r.length); ++k) if (r[k] === t) top5 += 1;
  }
  const stats = classes.map((_, c) => {
    const support = confusion[c].reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c], 0);
    const tp = confusion[c][c];
    const recall = support ? tp / support : 0;
    const precision = predicted ? tp / predicted : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { support, accuracy: recall, precision, f1 };
  });
  const perClass = Object.fromEntries(classes.map((name, c) => [name, stats[c]]));
  const present = stats.filter((p) => p.support > 0);
  return {
    n,
    top1: n ? top1 / n : 0,
    top5: n ? top5 / n : 0,
    macroF1: present.length ? present.reduce((a, p) => a + p.f1, 0) / present.length : 0,
    perClass,
    confusion,
    classes: [...classes],
  };
}
