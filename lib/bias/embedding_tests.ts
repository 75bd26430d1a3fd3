/**
 * Association tests inside a label space (no training, no data): the
 * emotion labels and the probe words are points of the same LLM embedding
 * space, so WEAT asks whether positive emotions sit closer to one attribute
 * set (e.g. male terms) than negative ones do, and the per-label test asks
 * it of each emotion alone — "indirect bias detection" of the LLM.
 */
import { Test } from './findings';
import { ProbeSet, Probes } from './probes';
import { PermutationOptions, Vec, weat, wordAssociation } from './stats';

/** A label's or probe word's vector in the label space. */
export type Embed = (words: readonly string[]) => Vec[];

export interface LabelVectors {
  names: readonly string[];
  vectors: readonly Vec[];
}

export interface AssociationCell {
  label: string;
  set: string;
  effect: number;
  p: number;
}

export function embeddingTests(labels: LabelVectors, probes: Probes, embed: Embed, opts: PermutationOptions = {}): { tests: Test[]; heatmap: AssociationCell[] } {
  const tests: Test[] = [];
  const heatmap: AssociationCell[] = [];
  const lower = (xs: readonly string[]) => new Set(xs.map((x) => x.toLowerCase()));
  const pos = lower(probes.valence.positive);
  const neg = lower(probes.valence.negative);
  const X = labels.names.map((n, i) => [n, labels.vectors[i]] as const).filter(([n]) => pos.has(n.toLowerCase()));
  const Y = labels.names.map((n, i) => [n, labels.vectors[i]] as const).filter(([n]) => neg.has(n.toLowerCase()));
  for (const set of probes.sets) {
    const A = embed(set.a.words);
    const B = embed(set.b.words);
    if (X.length && Y.length) tests.push(weatTest(set, X, Y, A, B, opts));
    labels.names.forEach((name, i) => {
      const r = wordAssociation(labels.vectors[i], A, B, opts);
      heatmap.push({ label: name, set: set.id, effect: r.effect, p: r.p });
      tests.push({
        id: `label:${name}:${set.id}`,
        kind: 'label-association',
        title: `"${name}" lies closer to ${r.effect >= 0 ? set.a.name : set.b.name} than to ${r.effect >= 0 ? set.b.name : set.a.name} in the label space`,
        effect: r.effect,
        p: r.p,
        details: { label: name, set: set.id, a: set.a.name, b: set.b.name, association: r.association, exact: r.exact },
        examples: [],
      });
    });
  }
  return { tests, heatmap };
}

function weatTest(set: ProbeSet, X: ReadonlyArray<readonly [string, Vec]>, Y: ReadonlyArray<readonly [string, Vec]>, A: Vec[], B: Vec[], opts: PermutationOptions): Test {
  const r = weat(
    X.map(([, v]) => v),
    Y.map(([, v]) => v),
    A,
    B,
    opts,
  );
  const [near, far] = r.effect >= 0 ? [set.a.name, set.b.name] : [set.b.name, set.a.name];
  return {
    id: `weat:${set.id}`,
    kind: 'weat',
    title: `positive emotions (${X.map(([n]) => n).join(', ')}) sit closer to ${near}, negative ones (${Y.map(([n]) => n).join(', ')}) to ${far}`,
    effect: r.effect,
    p: r.pTwoSided,
    details: {
      set: set.id,
      a: set.a.name,
      b: set.b.name,
      X: X.map(([n]) => n),
      Y: Y.map(([n]) => n),
      statistic: r.statistic,
      pOneSided: r.p,
      exact: r.exact,
      // With few labels there are few re-partitions: the smallest two-sided p the test can give.
      smallestP: Math.min(1, 2 / r.partitions),
      scores: r.scores,
    },
    examples: [],
  };
}
