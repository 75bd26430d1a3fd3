/**
 * `tinyemo bias`: semi-automated bias detection for a trained projector.
 * Statistics find and rank suspicious associations; a person reviews them.
 *
 *   1. In the label space (when it is an LLM's): WEAT of positive vs negative
 *      emotion labels against each probe pair, and each label against each
 *      pair (the heat map).
 *   2. On a data set (optional): predictions compared across groups from a
 *      metadata file and, in an LLM label space, across the probe side each
 *      sample's projection lies nearer to.
 *   3. Every p-value adjusted together (Benjamini–Hochberg); flagged = large
 *      and significant; reviewer decisions folded in; report.json and
 *      report.html written atomically.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { FEATURE_EXTENSIONS, FeatureSet, loadFeatureFolder } from '../data/features';
import { listImages } from '../io/image';
import { ImageClassifier } from '../models/projector/image_classifier';
import { encodeImages } from '../models/vision/tower';
import { writeFileAtomic } from '../io/file';
import { readBundle } from '../models/projector/bundle';
import { LabelSpace } from '../models/projector/label_space';
import { Projector } from '../models/projector/projector';
import { predict } from '../eval/projector';
import { Tensor } from '../tensor';
import { packageVersion } from '../version';
import { GroupSummary, Grouping, Sample, datasetProbes } from './dataset_probes';
import { AssociationCell, Embed, embeddingTests } from './embedding_tests';
import { DEFAULT_THRESHOLDS, Finding, FindingKind, Test, decide, permutationFloorWarning, rank } from './findings';
import { Metadata, readMetadata } from './metadata';
import { Probes, readProbes } from './probes';
import { applyReviews, readReviews } from './review';
import { reportHtml } from './report_html';
import { Vec, mean, cosine } from './stats';

export interface BiasOptions {
  /** A model folder from `tinyemo train` (tinyemo.json). */
  model: string;
  /** A data folder (one sub-folder per class) of features, or of images (encoded by the model's vision tower); optional. */
  data?: string;
  /** The vision tower for a folder of images (default: the model's, as classify picks it). */
  vision?: string;
  /** CSV or JSONL: sample id -> attributes. */
  attributes?: string;
  /** A probes file (default: tinyemo's). */
  probes?: string;
  /** The LLM (and tokenizer) whose embeddings place probe words; default: the model's own label space source. */
  llm?: string;
  tokenizer?: string;
  out: string;
  alpha?: number;
  minGroup?: number;
  bootstrap?: number;
  permutations?: number;
  seed?: number;
  /** Decisions file (default OUT/review.jsonl). */
  review?: string;
  /** Attributes tested for context bias (default: "object", "scene" and their probe groupings, where present). */
  contextAttributes?: readonly string[];
  thresholds?: Partial<Record<FindingKind, number>>;
}

export interface BiasReport {
  tinyemo: string;
  model: string;
  data: string | null;
  attributes: string | null;
  labels: string[];
  labelSpace: string;
  /** What placed the probe words, or null when nothing could. */
  embeddingSpace: string | null;
  probeSets: Array<{ id: string; a: string; b: string }>;
  settings: { alpha: number; minGroup: number; bootstrap: number; permutations: number; seed: number; thresholds: Record<FindingKind, number> };
  n: number;
  groups: GroupSummary[];
  heatmap: AssociationCell[];
  findings: Finding[];
  counts: { tests: number; flagged: number; pending: number; confirmed: number; dismissed: number };
  notes: string[];
  warnings: string[];
  /** Inputs that could not be read (feature files or images), with the reason. */
  skipped: Array<{ file: string; reason: string }>;
}

function positive(x: number | undefined, name: string, fallback: number, integer: boolean): number {
  const v = x ?? fallback;
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isSafeInteger(v)))
    throw new TinyEmoError('INVALID_ARGUMENT', `${name} must be a positive ${integer ? 'integer' : 'number'}`);
  return v;
}

/** Probe words in an LLM's space, each word's vector once. */
function llmEmbedder(llm: string, tokenizer: string | undefined): Embed {
  const cache = new Map<string, Float32Array>();
  return (words) => {
    const todo = [...new Set(words.filter((w) => !cache.has(w)))];
    if (todo.length) {
      const s = LabelSpace.fromLlm(todo, llm, { tokenizerDir: tokenizer });
      todo.forEach((w, i) => cache.set(w, s.table.slice(i * s.dim, (i + 1) * s.dim)));
    }
    return words.map((w) => cache.get(w)!);
  };
}

function sampleIds(data: string, s: FeatureSet): string[] {
  return s.files.map((f) => {
    const rel = path.relative(data, f).split(path.sep).join('/');
    return rel.slice(0, rel.length - path.extname(rel).length);
  });
}

/** What runBias uses where an option is not given. */
export const BIAS_DEFAULTS = { alpha: 0.05, minGroup: 10, bootstrap: 1000, permutations: 1000, seed: 0 } as const;

type Settings = { alpha: number; minGroup: number; bootstrap: number; permutations: number; seed: number; thresholds: typeof DEFAULT_THRESHOLDS };

function settingsOf(o: BiasOptions): Settings {
  const d = BIAS_DEFAULTS;
  const alpha = o.alpha ?? d.alpha;
  if (!(alpha > 0 && alpha < 1)) throw new TinyEmoError('INVALID_ARGUMENT', 'alpha must be in (0, 1)');
  const minGroup = positive(o.minGroup, 'minGroup', d.minGroup, true);
  const bootstrap = positive(o.bootstrap, 'bootstrap', d.bootstrap, true);
  const permutations = positive(o.permutations, 'permutations', d.permutations, true);
  const seed = o.seed ?? d.seed;
  if (!Number.isSafeInteger(seed)) throw new TinyEmoError('INVALID_ARGUMENT', 'seed must be an integer');
  return { alpha, minGroup, bootstrap, permutations, seed, thresholds: { ...DEFAULT_THRESHOLDS, ...(o.thresholds ?? {}) } };
}

/** Notes for the reader and warnings about the inputs, gathered as the run goes. */
interface Remarks {
  notes: string[];
  warnings: string[];
  skipped: Array<{ file: string; reason: string }>;
}

/** Where probe words can be placed: the label space's own LLM, or --llm (then labels are re-embedded there). */
interface EmbeddingSide {
  embed?: Embed;
  labelVectors?: LabelSpace;
  embeddingSpace: string | null;
  /** Whether probe words and the projector's outputs live in one space (then samples can be grouped by probe terms). */
  sameSpace: boolean;
}

function embeddingSide(o: BiasOptions, labels: LabelSpace, r: Remarks): EmbeddingSide {
  const src = labels.source;
  if (o.llm) {
    const labelVectors = LabelSpace.fromLlm(labels.names, o.llm, { tokenizerDir: o.tokenizer, template: src.kind === 'llm' ? src.template : undefined });
    const sameSpace = src.kind === 'llm' && labelVectors.sameSpaceAs(labels);
    if (!sameSpace)
      r.notes.push(`The projector was trained in ${labels.describe()}; --llm's space is another, so probes test the LLM alone and data samples are not grouped by probe terms.`);
    return { embed: llmEmbedder(o.llm, o.tokenizer), labelVectors, embeddingSpace: `token embeddings of ${path.basename(o.llm)}`, sameSpace };
  }
  if (src.kind === 'llm') {
    if (fs.existsSync(src.llm)) return { labelVectors: labels, embed: llmEmbedder(src.llm, src.tokenizer), embeddingSpace: labels.describe(), sameSpace: true };
    r.warnings.push(`the label space's LLM folder ${src.llm} is gone: give --llm (and --tokenizer) to run the embedding tests`);
    return { embeddingSpace: null, sameSpace: false };
  }
  r.notes.push(
    `The label space is ${labels.describe()}: words have no place in it, so the association tests and probe groupings are skipped. ` +
      'Give --llm DIR (with --tokenizer where needed) to test that LLM, or train the projector with --llm.',
  );
  return { embeddingSpace: null, sameSpace: false };
}

/** The association tests in the embedding space, and the heatmap of label-probe associations. */
function embeddingSideTests(side: EmbeddingSide, probes: Probes, st: Settings, r: Remarks): { tests: Test[]; heatmap: AssociationCell[] } {
  const { embed, labelVectors: lv } = side;
  if (!embed || !lv) return { tests: [], heatmap: [] };
  const e = embeddingTests({ names: lv.names, vectors: lv.names.map((_, i) => lv.table.subarray(i * lv.dim, (i + 1) * lv.dim)) }, probes, embed, {
    samples: st.permutations,
    seed: st.seed,
  });
  const weak = e.tests.filter((t) => t.kind === 'weat' && (t.details.smallestP as number) > st.alpha);
  if (weak.length) {
    r.notes.push(
      `WEAT compares ${String((weak[0].details.X as string[]).length)} positive with ${String((weak[0].details.Y as string[]).length)} negative labels: ` +
        `their re-partitions cannot give p below ${(weak[0].details.smallestP as number).toFixed(2)}, so WEAT cannot flag anything here; the per-label associations (which permute the probe words) can.`,
    );
  }
  return { tests: e.tests, heatmap: e.heatmap };
}

/** The data-set tests: the classifier's predictions on --data, grouped by attributes and probe terms. */
async function dataSideTests(
  o: BiasOptions & { data: string },
  metadata: Metadata | undefined,
  bundle: { projector: Projector; labels: LabelSpace },
  side: EmbeddingSide,
  probes: Probes,
  st: Settings,
  r: Remarks,
): Promise<{ tests: Test[]; groups: GroupSummary[]; n: number }> {
  const { projector, labels } = bundle;
  const set = await loadData(o.data, o.model, o.vision, r.warnings);
  r.skipped.push(...set.skipped);
  if (set.dim !== projector.inDim) throw new TinyEmoError('SHAPE_MISMATCH', `${o.data} holds ${set.dim}-value features; the projector takes ${projector.inDim}`);
  const ids = sampleIds(o.data, set);
  const truthOf = set.classes.map((c) => labels.names.indexOf(c));
  const unknown = set.classes.filter((_, i) => truthOf[i] < 0);
  if (unknown.length) r.notes.push(`Folders not among the labels (${unknown.join(', ')}): their samples count for prediction rates, not recall.`);
  const pred = predict(projector, labels, set, 1);
  const samples: Sample[] = ids.map((id, i) => ({ id, predicted: pred.ranked[i][0], truth: truthOf[set.y[i]] }));
  const groupings: Grouping[] = [];
  if (metadata) groupings.push(...metadataGroupings(metadata, ids, o.attributes!, r.warnings));
  if (side.embed && side.sameSpace) groupings.push(...probeGroupings(projector, set, probes, side.embed));
  const contexts = o.contextAttributes ?? groupings.map((g) => g.attribute).filter((a) => /^(probe:)?(object|scene)s?$/i.test(a));
  const d = datasetProbes(labels.names, samples, groupings, {
    minGroup: st.minGroup,
    bootstrap: st.bootstrap,
    permutations: st.permutations,
    seed: st.seed,
    contextAttributes: contexts,
  });
  if (groupings.length === 0) r.notes.push('No grouping of the samples was available (no --attributes, and no LLM label space for probe groupings): no data-set tests.');
  return { tests: d.tests, groups: d.summaries, n: set.y.length };
}

export async function runBias(o: BiasOptions): Promise<BiasReport> {
  const st = settingsOf(o);
  const probes: Probes = readProbes(o.probes);
  const metadata = o.attributes ? readMetadata(o.attributes) : undefined;
  if (o.attributes && !o.data) throw new TinyEmoError('INVALID_ARGUMENT', 'attributes describe samples: give --data too');
  const reviews = readReviews(o.review ?? path.join(o.out, 'review.jsonl'));
  const r: Remarks = { notes: [], warnings: [], skipped: [] };
  const { projector, labels } = readBundle(o.model);
  try {
    const side = embeddingSide(o, labels, r);
    const emb = embeddingSideTests(side, probes, st, r);
    const data = o.data ? await dataSideTests({ ...o, data: o.data }, metadata, { projector, labels }, side, probes, st, r) : { tests: [], groups: [], n: 0 };
    const findings = rank(decide([...emb.tests, ...data.tests], st.alpha, st.thresholds));
    const floor = permutationFloorWarning(findings.length, st.permutations, st.alpha);
    if (floor) r.warnings.push(floor);
    const stale = applyReviews(findings, reviews);
    if (stale.length) r.warnings.push(`${stale.length} reviewed ids are not among this run's tests (inputs changed?): ${stale.slice(0, 5).join(', ')}`);
    const flagged = findings.filter((f) => f.flagged);
    const report: BiasReport = {
      tinyemo: packageVersion(),
      model: path.resolve(o.model),
      data: o.data ? path.resolve(o.data) : null,
      attributes: o.attributes ? path.resolve(o.attributes) : null,
      labels: [...labels.names],
      labelSpace: labels.describe(),
      embeddingSpace: side.embeddingSpace,
      probeSets: probes.sets.map((s) => ({ id: s.id, a: s.a.name, b: s.b.name })),
      settings: st,
      n: data.n,
      groups: data.groups,
      heatmap: emb.heatmap,
      findings,
      counts: {
        tests: findings.length,
        flagged: flagged.length,
        pending: flagged.filter((f) => !f.review).length,
        confirmed: findings.filter((f) => f.review?.decision === 'confirmed').length,
        dismissed: findings.filter((f) => f.review?.decision === 'dismissed').length,
      },
      notes: r.notes,
      warnings: r.warnings,
      skipped: r.skipped,
    };
    fs.mkdirSync(o.out, { recursive: true });
    writeFileAtomic(path.join(o.out, 'report.json'), [Buffer.from(`${JSON.stringify(report, null, 2)}\n`)]);
    writeFileAtomic(path.join(o.out, 'report.html'), [Buffer.from(reportHtml(report))]);
    return report;
  } finally {
    projector.dispose();
  }
}

/** Feature files as they are; a folder of images goes through the vision tower first. */
async function loadData(data: string, model: string, vision: string | undefined, warnings: string[]): Promise<FeatureSet> {
  const hasFeatures = fs
    .readdirSync(data, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .some((e) => fs.readdirSync(path.join(data, e.name)).some((f) => FEATURE_EXTENSIONS.includes(path.extname(f).toLowerCase())));
  const images = hasFeatures ? [] : listImages(data);
  if (!images.length) return loadFeatureFolder(data);
  const ic = ImageClassifier.load(model, { vision, onNote: (m) => warnings.push(m) });
  try {
    const r = await encodeImages(
      ic.tower,
      images.map((f) => path.join(data, f)),
      { embeds: true },
    );
    const classes = [...new Set(r.encoded.map((e) => path.relative(data, e.file).split(path.sep)[0]))].sort();
    const dim = ic.classifier.inDim;
    const x = new Float32Array(r.encoded.length * dim);
    r.encoded.forEach((e, i) => x.set(e.embeds!, i * dim));
    const y = Int32Array.from(r.encoded, (e) => classes.indexOf(path.relative(data, e.file).split(path.sep)[0]));
    return { classes, dim, x, y, files: r.encoded.map((e) => e.file), skipped: r.skipped.map((s) => ({ file: s.file, reason: s.reason })) };
  } finally {
    ic.dispose();
  }
}

function metadataGroupings(m: ReturnType<typeof readMetadata>, ids: string[], file: string, warnings: string[]): Grouping[] {
  // An id may be the relative path without extension or, when unique, the bare name.
  const base = ids.map((id) => id.slice(id.lastIndexOf('/') + 1));
  const baseCount = new Map<string, number>();
  base.forEach((b) => baseCount.set(b, (baseCount.get(b) ?? 0) + 1));
  const rows = ids.map((id, i) => m.rows.get(id) ?? (baseCount.get(base[i]) === 1 ? m.rows.get(base[i]) : undefined));
  const matched = rows.filter((r) => r !== undefined).length;
  if (matched === 0) {
    throw new TinyEmoError('INVALID_ARGUMENT', `no sample is named in ${file} (sample ids look like "${ids[0] ?? 'class/name'}" or "${base[0] ?? 'name'}")`);
  }
  if (matched < ids.length) warnings.push(`${ids.length - matched} of ${ids.length} samples have no row in ${path.basename(file)}`);
  return m.attributes.map((a) => ({ attribute: a, values: rows.map((r) => r?.[a] ?? '') }));
}

/** Each sample's side of each probe pair: the side whose words its projection is nearer to on average. */
function probeGroupings(projector: Projector, set: FeatureSet, probes: Probes, embed: Embed): Grouping[] {
  const x = Tensor.from(set.x, [set.y.length, set.dim]);
  const y = projector.forwardSync(x);
  const yd = y.toArray() as Float32Array;
  x.dispose();
  y.dispose();
  const D = projector.outDim;
  const rows: Vec[] = Array.from({ length: set.y.length }, (_, i) => yd.subarray(i * D, (i + 1) * D));
  return probes.sets.map((s) => {
    const A = embed(s.a.words);
    const B = embed(s.b.words);
    return {
      attribute: `probe:${s.id}`,
      values: rows.map((r) => (mean(A.map((a) => cosine(r, a))) >= mean(B.map((b) => cosine(r, b))) ? s.a.name : s.b.name)),
    };
  });
}
