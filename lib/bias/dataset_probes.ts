/**
 * Probing a classifier on a data set: samples fall into groups (from a
 * metadata file, or by which side of a probe pair their projected embedding
 * lies nearer to in the label space), and each group is compared with the
 * rest of the data:
 *
 * - prediction rate of each emotion (demographic-parity difference);
 * - recall of each true class (equal-opportunity difference), where labels exist;
 * - context bias (UnbiasedEmo's sense): Cramér's V between the group (an
 *   object or scene) and the predicted emotion, minus the same with the true
 *   emotion — positive when predictions follow the context more than the
 *   truth does.
 *
 * Every difference has a bootstrap interval and a permutation p-value; the
 * caller adjusts all p-values of a run together.
 */
import { Test } from './findings';
import { cramersV, groupDifference, quantile } from './stats';
import { Rng } from '../util/rng';

export interface Sample {
  id: string;
  /** Index of the predicted label. */
  predicted: number;
  /** Index of the true label, or −1 when unknown. */
  truth: number;
}

export interface Grouping {
  /** "gender" (a metadata column) or "probe:gender" (nearest probe side). */
  attribute: string;
  /** The group of each sample ('' = none: left out of this attribute's tests). */
  values: string[];
}

export interface GroupSummary {
  attribute: string;
  group: string;
  n: number;
  /** Fraction of the group predicted as each label. */
  rates: number[];
  /** Top-1 accuracy in the group (NaN without true labels). */
  accuracy: number;
}

export interface DatasetProbeOptions {
  /** A group needs this many samples to be tested (default 10). */
  minGroup?: number;
  bootstrap?: number;
  permutations?: number;
  seed?: number;
  /** Attributes whose groups are contexts (objects, scenes): also tested for context bias. */
  contextAttributes?: readonly string[];
  maxExamples?: number;
}

export function datasetProbes(
  labels: readonly string[],
  samples: readonly Sample[],
  groupings: readonly Grouping[],
  opts: DatasetProbeOptions = {},
): { tests: Test[]; summaries: GroupSummary[] } {
  const minGroup = opts.minGroup ?? 10;
  const maxEx = opts.maxExamples ?? 5;
  const stat = { bootstrap: opts.bootstrap ?? 1000, permutations: opts.permutations ?? 1000 };
  const tests: Test[] = [];
  const summaries: GroupSummary[] = [];
  const hasTruth = samples.some((s) => s.truth >= 0);
  let seed = opts.seed ?? 0;

  for (const g of groupings) {
    const counts = new Map<string, number>();
    g.values.forEach((v) => v !== '' && counts.set(v, (counts.get(v) ?? 0) + 1));
    const groups = [...counts]
      .filter(([, n]) => n >= minGroup)
      .map(([v]) => v)
      .sort();
    if (groups.length < 2) continue;
    const member = (v: string) => Uint8Array.from(g.values, (x) => (x === v ? 1 : 0));
    // Samples of a group too small to test stay out of "the rest" too.
    const known = Uint8Array.from(g.values, (x) => (groups.includes(x) ? 1 : 0));
    for (const v of groups) summaries.push(summarize(g.attribute, v, member(v), labels, samples));
    // With two groups, "A vs the rest" and "B vs the rest" are one test seen twice.
    const tested = groups.length === 2 ? groups.slice(0, 1) : groups;
    for (const v of tested) {
      const inG = member(v);
      const vs = groups.length === 2 ? groups[1] : 'the rest';
      labels.forEach((label, e) => {
        const hit = Uint8Array.from(samples, (s) => (s.predicted === e ? 1 : 0));
        const r = groupDifference(hit, known, inG, { ...stat, seed: seed++ });
        if (!Number.isFinite(r.difference)) return;
        tests.push({
          id: `rate:${g.attribute}=${v}:${label}`,
          kind: 'prediction-rate',
          title: `${g.attribute} = ${v} is predicted "${label}" ${pts(r.difference)} ${r.difference >= 0 ? 'more' : 'less'} often than ${vs}`,
          effect: r.difference,
          ci: r.ci,
          p: r.p,
          details: { attribute: g.attribute, group: v, versus: vs, label },
          examples: samples
            .filter((s, i) => inG[i] && s.predicted === e)
            .slice(0, maxEx)
            .map((s) => s.id),
        });
      });
      if (!hasTruth) continue;
      const acc = accuracyTest(g.attribute, v, vs, samples, known, inG, { ...stat, seed: seed++ }, maxEx);
      if (acc) tests.push(acc);
      labels.forEach((label, c) => {
        const applies = Uint8Array.from(samples, (s, i) => (s.truth === c && known[i] ? 1 : 0));
        const hit = Uint8Array.from(samples, (s) => (s.predicted === c ? 1 : 0));
        const r = groupDifference(hit, applies, inG, { ...stat, seed: seed++ });
        if (!Number.isFinite(r.difference)) return;
        tests.push({
          id: `recall:${g.attribute}=${v}:${label}`,
          kind: 'recall',
          title: `true "${label}" images of ${g.attribute} = ${v} are recognised ${pts(r.difference)} ${r.difference >= 0 ? 'more' : 'less'} often than those of ${vs}`,
          effect: r.difference,
          ci: r.ci,
          p: r.p,
          details: { attribute: g.attribute, group: v, versus: vs, label },
          examples: samples
            .filter((s, i) => inG[i] && s.truth === c && s.predicted !== c)
            .slice(0, maxEx)
            .map((s) => s.id),
        });
      });
    }
    if (hasTruth && (opts.contextAttributes ?? []).includes(g.attribute)) {
      tests.push(contextTest(g, samples, known, labels, stat.bootstrap, seed++, maxEx));
    }
  }
  return { tests, summaries };
}

/** A group's size, prediction rates and accuracy (the report's bars). */
function summarize(attribute: string, group: string, inG: Uint8Array, labels: readonly string[], samples: readonly Sample[]): GroupSummary {
  const n = inG.reduce((a, b) => a + b, 0);
  const rates = labels.map((_, e) => samples.filter((s, i) => inG[i] && s.predicted === e).length / n);
  const withTruth = samples.filter((s, i) => inG[i] && s.truth >= 0);
  const accuracy = withTruth.length ? withTruth.filter((s) => s.predicted === s.truth).length / withTruth.length : NaN;
  return { attribute, group, n, rates, accuracy };
}

/** The group's overall accuracy against the rest's: a gap spread thin over the classes still shows here. */
function accuracyTest(
  attribute: string,
  v: string,
  vs: string,
  samples: readonly Sample[],
  known: Uint8Array,
  inG: Uint8Array,
  stat: { bootstrap: number; permutations: number; seed: number },
  maxEx: number,
): Test | undefined {
  const applies = Uint8Array.from(samples, (s, i) => (s.truth >= 0 && known[i] ? 1 : 0));
  const right = Uint8Array.from(samples, (s) => (s.predicted === s.truth ? 1 : 0));
  const r = groupDifference(right, applies, inG, stat);
  if (!Number.isFinite(r.difference)) return undefined;
  return {
    id: `accuracy:${attribute}=${v}`,
    kind: 'accuracy',
    title: `images of ${attribute} = ${v} are classified correctly ${pts(r.difference)} ${r.difference >= 0 ? 'more' : 'less'} often than those of ${vs}`,
    effect: r.difference,
    ci: r.ci,
    p: r.p,
    details: { attribute, group: v, versus: vs },
    examples: samples
      .filter((s, i) => inG[i] && s.truth >= 0 && s.predicted !== s.truth)
      .slice(0, maxEx)
      .map((s) => s.id),
  };
}

function pts(d: number): string {
  return `${Math.abs(100 * d).toFixed(1)} points`;
}

function contextTest(g: Grouping, samples: readonly Sample[], known: Uint8Array, labels: readonly string[], reps: number, seed: number, maxEx: number): Test {
  const idx = samples.map((_, i) => i).filter((i) => known[i] && samples[i].truth >= 0);
  const ctx = idx.map((i) => g.values[i]);
  const codes = new Map([...new Set(ctx)].map((v, k) => [v, k]));
  const c = ctx.map((v) => codes.get(v)!);
  const pred = idx.map((i) => samples[i].predicted);
  const truth = idx.map((i) => samples[i].truth);
  const delta = (sel: number[]) =>
    cramersV(
      sel.map((k) => c[k]),
      sel.map((k) => pred[k]),
    ) -
    cramersV(
      sel.map((k) => c[k]),
      sel.map((k) => truth[k]),
    );
  const all = idx.map((_, k) => k);
  const d = delta(all);
  const rng = new Rng(seed);
  const boots: number[] = [];
  for (let r = 0; r < reps; ++r) boots.push(delta(all.map(() => rng.int(all.length))));
  boots.sort((a, b) => a - b);
  // Bootstrap p-value: how often the resampled difference falls on the other side of zero (doubled).
  const below = boots.filter((x) => x <= 0).length / reps;
  const above = boots.filter((x) => x >= 0).length / reps;
  const p = Math.min(1, 2 * Math.min(below, above) + 1 / (reps + 1));
  // Examples: samples whose prediction differs from the truth, in the group most over-predicted.
  const wrong = idx
    .filter((i) => samples[i].predicted !== samples[i].truth)
    .slice(0, maxEx)
    .map((i) => `${samples[i].id} (${g.values[i]}: ${labels[samples[i].truth]} → ${labels[samples[i].predicted]})`);
  return {
    id: `context:${g.attribute}`,
    kind: 'context',
    title: `predictions follow ${g.attribute} ${d >= 0 ? 'more' : 'less'} than the true emotions do (Cramér's V ${d >= 0 ? '+' : ''}${d.toFixed(3)})`,
    effect: d,
    ci: [quantile(boots, 0.025), quantile(boots, 0.975)],
    p,
    details: { attribute: g.attribute, groups: [...codes.keys()] },
    examples: wrong,
  };
}
