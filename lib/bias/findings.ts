/** What bias detection reports: findings (one per statistical test), their review, and the flagging rule. */
import { benjaminiHochberg } from './stats';

export type FindingKind = 'weat' | 'label-association' | 'prediction-rate' | 'recall' | 'accuracy' | 'context';

export interface Review {
  decision: 'confirmed' | 'dismissed';
  note?: string;
  reviewer?: string;
  at?: string;
}

export interface Finding {
  /** Stable across runs of the same inputs, e.g. "weat:gender", "rate:gender=female:joy". */
  id: string;
  kind: FindingKind;
  /** One sentence a reviewer can read. */
  title: string;
  /** Signed size: an effect size (weat, label-association) or a difference of fractions. */
  effect: number;
  ci?: [number, number];
  p: number;
  /** Benjamini–Hochberg adjusted p over every test of the run. */
  q: number;
  /** |effect| at least the kind's threshold and q at most alpha. */
  flagged: boolean;
  threshold: number;
  details: Record<string, unknown>;
  /** Sample ids that show it (data-set findings). */
  examples: string[];
  review?: Review;
}

/** |effect| needed to flag, per kind: a large effect size (Cohen's 0.8), a 10-point gap, a 0.1 rise in Cramér's V. */
export const DEFAULT_THRESHOLDS: Readonly<Record<FindingKind, number>> = {
  weat: 0.8,
  'label-association': 0.8,
  'prediction-rate': 0.1,
  recall: 0.1,
  accuracy: 0.1,
  context: 0.1,
};

export type Test = Omit<Finding, 'q' | 'flagged' | 'threshold' | 'review'>;

/** Adjusts every test's p-value as one family and flags what is both large and significant. */
export function decide(tests: readonly Test[], alpha: number, thresholds: Readonly<Record<FindingKind, number>> = DEFAULT_THRESHOLDS): Finding[] {
  const q = benjaminiHochberg(tests.map((t) => t.p));
  return tests.map((t, i) => {
    const threshold = thresholds[t.kind];
    const flagged = Number.isFinite(q[i]) && q[i] <= alpha && Math.abs(t.effect) >= threshold;
    return { ...t, q: q[i], flagged, threshold };
  });
}

/**
 * A permutation p-value is at least 1/(permutations + 1), so over m tests Benjamini–Hochberg cannot bring a lone
 * finding's q below m/(permutations + 1). When that floor is above alpha, nothing can be flagged on its own
 * strength: a warning naming the permutation count that would lift it; undefined otherwise.
 */
export function permutationFloorWarning(tests: number, permutations: number, alpha: number): string | undefined {
  const floor = tests / (permutations + 1);
  if (floor <= alpha) return undefined;
  const need = Math.ceil(tests / alpha);
  return `with ${permutations} permutations and ${tests} tests, a single finding can reach no q below ${floor.toPrecision(2)} (alpha ${alpha}), so it can never be flagged on its own: use --permutations ${need} or more`;
}

/** Flagged first, then by |effect|; ties by id so the order is stable. */
export function rank(findings: Finding[]): Finding[] {
  return [...findings].sort((a, b) => Number(b.flagged) - Number(a.flagged) || Math.abs(b.effect) - Math.abs(a.effect) || (a.id < b.id ? -1 : 1));
}
