/**
 * `tinyemo bias` as a user runs it, on data where the answer is known:
 * a small LLM embedding table with a planted gender–valence association,
 * a projector trained in that label space, and sample attributes with a
 * planted prediction-rate gap. Then the review loop, hostile inputs, and
 * the real Emotion6 features end to end (a pipeline proof: no metadata
 * there means nothing true to find).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import type { BiasReport } from '../lib/bias/run';
import { writeSafetensors } from '../lib/io/safetensors';
import { TextTokenizer } from '../lib/text/tokenizer';
import { Tensor } from '../lib/tensor';
import { EMOTION6, describeWithEmotion6 } from './helpers/emotion6';
import { writeClusters } from './helpers/feature_data';
import { Rng } from './helpers/random';
import { tokenizerFixture } from './helpers/tokenizers';

const bin = path.join(__dirname, '..', 'bin', 'tinyemo.js');
function run(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
}

const CLASSES = ['anger', 'fear', 'joy', 'sadness'];
let tmp: string;
let llm: string;
let data: string;
let model: string;
let attrs: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-bias-'));
  // An LLM table where male words and positive emotions share one direction, female words and negative ones another.
  llm = path.join(tmp, 'llm');
  fs.mkdirSync(llm);
  const tokDir = tokenizerFixture('llama');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tokDir, f), path.join(llm, f));
  const tok = TextTokenizer.fromFolder(llm);
  const D = 24;
  const V = 32000;
  const rng = new Rng(31);
  const table = rng.floats(V * D, 0.3);
  const u = rng.floats(D, 1);
  const v = rng.floats(D, 1);
  const push = (words: string[], dir: Float32Array) => {
    for (const w of words) {
      for (const id of tok.encode(w, { addSpecialTokens: false })) for (let h = 0; h < D; ++h) table[id * D + h] += 2 * dir[h];
    }
  };
  push(['man', 'men', 'boy', 'boys', 'he', 'him', 'his', 'father', 'son', 'brother', 'husband', 'male', 'joy'], u);
  push(['woman', 'women', 'girl', 'girls', 'she', 'her', 'hers', 'mother', 'daughter', 'sister', 'wife', 'female', 'anger', 'fear', 'sadness'], v);
  const t = Tensor.from(table, [V, D]);
  writeSafetensors(path.join(llm, 'model.safetensors'), { 'model.embed_tokens.weight': t });
  t.dispose();

  data = path.join(tmp, 'data');
  writeClusters(data, { classes: CLASSES, counts: [40, 40, 40, 40], dim: 11, sep: 1.6, seed: 2 });
  model = path.join(tmp, 'model');
  const r = run('train', '--data', data, '--out', model, '--llm', llm, '--val-split', '0', '--epochs', '6', '--batch-size', '16', '--lr', '3e-3', '--json');
  if (r.status !== 0) throw new Error(r.stderr);
  // "site": mostly joy images at site a, mostly others at site b — so "joy" is predicted far more often at a.
  // "batch": assigned at random — nothing to find.
  const rows = ['id,site,batch'];
  const pick = new Rng(5);
  for (const c of CLASSES) {
    for (let i = 0; i < 40; ++i) {
      const site = (c === 'joy') === pick.next() < 0.85 ? 'a' : 'b';
      rows.push(`${c}/${i},${site},${pick.next() < 0.5 ? 'x' : 'y'}`);
    }
  }
  attrs = path.join(tmp, 'attrs.csv');
  fs.writeFileSync(attrs, `${rows.join('\n')}\n`);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function report(out: string, ...extra: string[]): BiasReport {
  const r = run('bias', '--model', model, '--data', data, '--attributes', attrs, '--out', out, '--permutations', '400', '--bootstrap', '300', '--json', ...extra);
  if (r.status !== 0) throw new Error(r.stderr);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as BiasReport;
}

test('the planted associations are flagged with their signs; the random attribute is not', () => {
  const out = path.join(tmp, 'r1');
  const r = report(out);
  expect(r.embeddingSpace).toMatch(/token embeddings of llm/);
  expect(r.n).toBe(160);
  const byId = new Map(r.findings.map((f) => [f.id, f]));
  // WEAT: positive (joy) near male terms, negative (anger, fear, sadness) near female ones.
  // With one positive label against three, WEAT has 4 re-partitions: a large effect it cannot call significant, and says so.
  const g = byId.get('weat:gender')!;
  expect(g.effect).toBeGreaterThan(1);
  expect(g.details.smallestP).toBe(0.5);
  expect(g.flagged).toBe(false);
  expect(r.notes.join(' ')).toMatch(/WEAT compares 1 positive with 3 negative labels: their re-partitions cannot give p below 0.50/);
  // Each label alone against the 24 gender words is well powered: flagged, with the planted signs.
  const joy = byId.get('label:joy:gender')!;
  expect(joy.effect).toBeGreaterThan(0.8);
  expect(joy.flagged).toBe(true);
  expect(byId.get('label:anger:gender')!.effect).toBeLessThan(-0.8);
  expect(byId.get('label:anger:gender')!.flagged).toBe(true);
  // Site a predicts joy far more often.
  const site = byId.get('rate:site=a:joy')!;
  expect(site.effect).toBeGreaterThan(0.4);
  expect(site.flagged).toBe(true);
  expect(site.ci![0]).toBeGreaterThan(0.2);
  expect(site.examples.length).toBeGreaterThan(0);
  expect(site.examples[0]).toMatch(/^\w+\/\d+$/);
  // Nothing about the random batch attribute is flagged.
  expect(r.findings.filter((f) => f.id.includes('batch=') && f.flagged)).toEqual([]);
  // Groups summarised for the bars; probe groupings exist in an LLM label space.
  expect(r.groups.map((x) => `${x.attribute}=${x.group}`)).toEqual(expect.arrayContaining(['site=a', 'site=b', 'batch=x', 'batch=y']));
  expect(r.groups.some((x) => x.attribute.startsWith('probe:'))).toBe(true);
  expect(r.heatmap.length).toBe(CLASSES.length * r.probeSets.length);
  // Every q is at least its p (BH only raises); the flagged are listed first.
  for (const f of r.findings) if (Number.isFinite(f.p)) expect(f.q).toBeGreaterThanOrEqual(f.p - 1e-15);
  const firstUnflagged = r.findings.findIndex((f) => !f.flagged);
  expect(r.findings.slice(firstUnflagged).some((f) => f.flagged)).toBe(false);
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  expect(html).toContain('weat:gender');
  expect(html).toContain('<svg');
  expect(JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'))).toEqual(r);
});

test('the same inputs and seed give the same report', () => {
  const a = report(path.join(tmp, 'r2a'));
  const b = report(path.join(tmp, 'r2b'));
  expect(b.findings).toEqual(a.findings);
});

test('review loop: decisions are folded in, stale ones reported, bad lines refused', () => {
  const out = path.join(tmp, 'r3');
  const first = report(out);
  const flagged = first.findings.filter((f) => f.flagged);
  expect(flagged.length).toBeGreaterThanOrEqual(2);
  const lines = [
    { id: flagged[0].id, decision: 'confirmed', note: 'seen in the images <b>too</b>', reviewer: 'ana' },
    { id: flagged[1].id, decision: 'confirmed' },
    { id: flagged[1].id, decision: 'dismissed', note: 'changed my mind' },
    { id: 'rate:nowhere=x:joy', decision: 'dismissed' },
  ];
  fs.writeFileSync(path.join(out, 'review.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const second = report(out);
  expect(second.counts).toMatchObject({ flagged: first.counts.flagged, confirmed: 1, dismissed: 1, pending: first.counts.flagged - 2 });
  expect(second.findings.find((f) => f.id === flagged[1].id)!.review).toEqual({ decision: 'dismissed', note: 'changed my mind' });
  expect(second.warnings.join(' ')).toMatch(/1 reviewed ids are not among this run's tests.*rate:nowhere=x:joy/);
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  expect(html).toContain('seen in the images &lt;b&gt;too&lt;/b&gt;');
  expect(html).not.toContain('<b>too</b>');
  fs.appendFileSync(path.join(out, 'review.jsonl'), '{"id": "weat:gender", "decision": "maybe"}\n');
  const bad = run('bias', '--model', model, '--out', out);
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/review\.jsonl.*line 5: "decision" must be "confirmed" or "dismissed" \[INVALID_FILE\]/);
});

test('hostile and mistaken inputs get typed errors; text from files is escaped in the page', () => {
  const bad = (name: string, text: string) => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, text);
    return run('bias', '--model', model, '--data', data, '--attributes', f, '--out', path.join(tmp, 'rx'));
  };
  expect(bad('dup.csv', 'id,a\njoy/1,x\njoy/1,y\n').stderr).toMatch(/line 3: the id "joy\/1" appears twice \[INVALID_FILE\]/);
  expect(bad('ragged.csv', 'id,a,b\njoy/1,x\n').stderr).toMatch(/line 2: 2 fields, the header has 3/);
  expect(bad('none.csv', 'id,a\nnobody,x\n').stderr).toMatch(/no sample is named in .*sample ids look like "anger\/0"/);
  expect(bad('quote.csv', 'id,a\n"joy/1,x\n').stderr).toMatch(/a quoted field is not closed/);
  expect(bad('obj.jsonl', '{"id": "joy/1", "a": {"x": 1}}\n').stderr).toMatch(/line 1: "a" must be a string/);
  expect(bad('bin.csv', '\xff\xfe\x00id').status).toBe(2);
  const noData = run('bias', '--model', model, '--attributes', attrs, '--out', path.join(tmp, 'ry'));
  expect(noData.stderr).toMatch(/attributes describe samples: give --data too/);
  const probes = path.join(tmp, 'probes.json');
  fs.writeFileSync(probes, JSON.stringify({ sets: [{ id: 'x', a: { name: 'a', words: [] }, b: { name: 'b', words: ['y'] } }] }));
  expect(run('bias', '--model', model, '--probes', probes, '--out', path.join(tmp, 'rz')).stderr).toMatch(/sets\[0\]\.a needs a "name" and a non-empty "words" list/);
  // A hostile attribute value ends up escaped in the HTML.
  const evil = path.join(tmp, 'evil.csv');
  const rows = ['id,who'];
  for (const c of CLASSES) for (let i = 0; i < 40; ++i) rows.push(`${c}/${i},${i % 2 ? '<script>alert(1)</script>' : '"a ""quoted"", value"'}`);
  fs.writeFileSync(evil, rows.join('\r\n'));
  const ok = run('bias', '--model', model, '--data', data, '--attributes', evil, '--out', path.join(tmp, 'rw'), '--permutations', '100', '--bootstrap', '100');
  expect(ok.status).toBe(0);
  const html = fs.readFileSync(path.join(tmp, 'rw', 'report.html'), 'utf8');
  expect(html).not.toContain('<script>');
  expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
});

test('a random label space: embedding tests are skipped and the report says why', () => {
  const plain = path.join(tmp, 'plain');
  const t = run('train', '--data', data, '--out', plain, '--val-split', '0', '--epochs', '2', '--hidden', '16', '--json');
  expect(t.status).toBe(0);
  const r = run('bias', '--model', plain, '--data', data, '--attributes', attrs, '--out', path.join(tmp, 'r5'), '--permutations', '200', '--bootstrap', '200', '--json');
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout) as BiasReport;
  expect(j.embeddingSpace).toBeNull();
  expect(j.heatmap).toEqual([]);
  expect(j.notes.join(' ')).toMatch(/words have no place in it/);
  expect(j.findings.every((f) => f.kind !== 'weat')).toBe(true);
  // With --llm, the LLM is tested on its own, but samples are not grouped by probes (another space).
  const withLlm = run('bias', '--model', plain, '--llm', llm, '--out', path.join(tmp, 'r6'), '--permutations', '200', '--json');
  const k = JSON.parse(withLlm.stdout) as BiasReport;
  expect(k.findings.some((f) => f.id === 'weat:gender')).toBe(true);
  expect(k.notes.join(' ')).toMatch(/probes test the LLM alone/);
});

describeWithEmotion6('the real Emotion6 features end to end', () => {
  test('train, then bias with attributes that mean nothing: the pipeline runs and flags nothing', () => {
    const train = path.join(EMOTION6, 'train');
    const m = path.join(tmp, 'e6');
    expect(run('train', '--data', train, '--out', m, '--json').status).toBe(0);
    const rows = ['id,parity,object'];
    const rng = new Rng(3);
    for (const c of fs.readdirSync(train).sort()) {
      for (const f of fs.readdirSync(path.join(train, c))) {
        const n = parseInt(f, 10);
        rows.push(`${c}/${path.basename(f, '.pt')},${n % 2 ? 'odd' : 'even'},${['dog', 'gun', 'cake'][rng.int(3)]}`);
      }
    }
    const a = path.join(tmp, 'e6.csv');
    fs.writeFileSync(a, rows.join('\n'));
    const r = run('bias', '--model', m, '--data', train, '--attributes', a, '--out', path.join(tmp, 'e6-bias'), '--json');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as BiasReport;
    expect(j.n).toBe(1386);
    expect(j.findings.some((f) => f.id === 'context:object')).toBe(true);
    expect(j.counts.flagged).toBe(0);
  });
});

test('an overall accuracy gap is its own test; --fail-on-flagged gates on it; too few permutations are warned about', () => {
  // Group g: 10 of its 20 samples per class carry the next class's label (wrong whatever the model), group h none.
  const relabelled = path.join(tmp, 'relabelled');
  fs.cpSync(data, relabelled, { recursive: true });
  const rows = ['id,cohort'];
  CLASSES.forEach((c, k) => {
    const next = CLASSES[(k + 1) % CLASSES.length];
    for (let i = 0; i < 40; ++i) {
      const file = fs.readdirSync(path.join(relabelled, c)).find((f) => f.startsWith(`${i}.`))!;
      const moved = i < 20 && i % 10 < 5;
      if (moved) fs.renameSync(path.join(relabelled, c, file), path.join(relabelled, next, `${c}_${file}`));
      rows.push(`${moved ? `${next}/${c}_${i}` : `${c}/${i}`},${i < 20 ? 'g' : 'h'}`);
    }
  });
  const cohorts = path.join(tmp, 'cohorts.csv');
  fs.writeFileSync(cohorts, `${rows.join('\n')}\n`);
  const args = ['bias', '--model', model, '--data', relabelled, '--attributes', cohorts, '--out', path.join(tmp, 'acc'), '--bootstrap', '200', '--json'];
  const r = run(...args, '--permutations', '2000');
  expect(r.status).toBe(0);
  const rep = JSON.parse(r.stdout) as BiasReport;
  const acc = rep.findings.find((f) => f.id === 'accuracy:cohort=g')!;
  expect(acc.kind).toBe('accuracy');
  expect(acc.effect).toBeLessThan(-0.15);
  expect(acc.flagged).toBe(true);
  expect(rep.warnings.join(' ')).not.toMatch(/can never be flagged on its own/);
  const gate = run(...args, '--permutations', '2000', '--fail-on-flagged');
  expect(gate.status).toBe(1);
  expect(gate.stderr).toMatch(/--fail-on-flagged: \d+ flagged findings? not dismissed/);
  const few = JSON.parse(run(...args, '--permutations', '20').stdout) as BiasReport;
  expect(few.warnings.join(' ')).toMatch(
    /with 20 permutations and \d+ tests, a single finding can reach no q below [\d.]+ \(alpha 0.05\), so it can never be flagged on its own: use --permutations \d+ or more/,
  );
});
