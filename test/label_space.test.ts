/**
 * Label spaces: from an LLM folder's token embeddings (checked against a
 * float64 computation from llama-tokenizer-js's ids, not tinyemo's
 * tokenizer), templates, synonyms, OpenELM's separate tokenizer, saved
 * tables, and the seeded random space.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Tensor, TinyEmoError, writeSafetensors } from '../lib';
import { LabelSpace } from '../lib/models/projector/label_space';
import { Rng } from './helpers/random';
import { llamaIdsIndependent, tokenizerFixture } from './helpers/tokenizers';

const V = 32000;
const D = 11;
let tmp: string;
let table: Float32Array;
let llm: string;
let openelm: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-labels-'));
  table = new Rng(17).floats(V * D);
  const tok = tokenizerFixture('llama');

  // A LLaMA-layout folder: embeddings plus another tensor that must not be needed.
  llm = path.join(tmp, 'TinyLlama-mini');
  fs.mkdirSync(llm);
  const emb = Tensor.from(table, [V, D]);
  const head = Tensor.from(new Rng(3).floats(5 * D), [5, D]);
  writeSafetensors(path.join(llm, 'model.safetensors'), { 'model.embed_tokens.weight': emb, 'lm_head.weight': head });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tok, f), path.join(llm, f));

  // An OpenELM-layout folder: f16 embeddings under its own name, no tokenizer.
  openelm = path.join(tmp, 'OpenELM-mini');
  fs.mkdirSync(openelm);
  const half = emb.toSync('f16');
  writeSafetensors(path.join(openelm, 'model.safetensors'), { 'transformer.token_embeddings.weight': half });
  [emb, head, half].forEach((t) => t.dispose());
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** float64: normalise(sum over texts of normalise(mean of the texts' token rows)). */
function reference(ids: number[][], rows: (id: number) => ArrayLike<number>): number[] {
  const acc = new Array<number>(D).fill(0);
  for (const seq of ids) {
    const mean = new Array<number>(D).fill(0);
    for (const id of seq) {
      const r = rows(id);
      for (let h = 0; h < D; ++h) mean[h] += r[h] / seq.length;
    }
    const n = Math.sqrt(mean.reduce((s, v) => s + v * v, 0));
    for (let h = 0; h < D; ++h) acc[h] += mean[h] / n;
  }
  const n = Math.sqrt(acc.reduce((s, v) => s + v * v, 0));
  return acc.map((v) => v / n);
}

const row = (id: number) => table.subarray(id * D, (id + 1) * D);

function expectRow(space: LabelSpace, c: number, want: number[], tol: number): void {
  const got = space.table.subarray(c * D, (c + 1) * D);
  for (let h = 0; h < D; ++h) expect(Math.abs(got[h] - want[h])).toBeLessThan(tol);
}

test('a label is the normalised mean of its token embeddings, BOS included', () => {
  const names = ['anger', 'joy', 'sadness', 'surprise'];
  const s = LabelSpace.fromLlm(names, llm);
  expect(s.dim).toBe(D);
  const ids = llamaIdsIndependent(names);
  ids.forEach((seq) => expect(seq[0]).toBe(1)); // <s>
  names.forEach((_, c) => expectRow(s, c, reference([ids[c]], row), 1e-6));
  expect(s.source).toMatchObject({ kind: 'llm', embedding: 'model.embed_tokens.weight' });
  expect(s.describe()).toMatch(/TinyLlama-mini/);
});

test('templates fill {emotion}; synonyms average the normalised texts; release misspellings are fixed', () => {
  const template = 'a scene evoking {emotion} to viewers';
  const s = LabelSpace.fromLlm(['joy', 'fear', 'cheerfullness'], llm, { template, synonyms: { joy: ['cheerful', 'happiness'] } });
  const texts = ['joy', 'cheerful', 'happiness', 'fear', 'cheerfulness'].map((w) => `a scene evoking ${w} to viewers`);
  const ids = llamaIdsIndependent(texts);
  expectRow(s, 0, reference(ids.slice(0, 3), row), 1e-6);
  expectRow(s, 1, reference([ids[3]], row), 1e-6);
  expectRow(s, 2, reference([ids[4]], row), 1e-6);
  expect(s.source).toMatchObject({ template, synonyms: { joy: ['cheerful', 'happiness'] } });
});

test('OpenELM: its embedding name, f16 table, and the tokenizer from another folder', () => {
  expect(() => LabelSpace.fromLlm(['joy', 'fear'], openelm)).toThrow(TinyEmoError);
  const s = LabelSpace.fromLlm(['joy', 'fear'], openelm, { tokenizerDir: llm });
  const ids = llamaIdsIndependent(['joy', 'fear']);
  // The table went through f16: compare with the f16-rounded rows.
  const half = Tensor.from(table, [V, D]).toSync('f16').toSync('f32').toArray() as Float32Array;
  ids.forEach((seq, c) =>
    expectRow(
      s,
      c,
      reference([seq], (id) => half.subarray(id * D, (id + 1) * D)),
      1e-6,
    ),
  );
  expect(s.source).toMatchObject({ kind: 'llm', embedding: 'transformer.token_embeddings.weight' });
});

test('a folder without a token embedding table is a typed error', () => {
  const dir = path.join(tmp, 'no-emb');
  fs.mkdirSync(dir);
  const t = Tensor.from([1, 2, 3]);
  writeSafetensors(path.join(dir, 'model.safetensors'), { 'something.else': t });
  t.dispose();
  expect(() => LabelSpace.fromLlm(['joy'], dir, { tokenizerDir: llm })).toThrow(/no token embedding table/);
});

test('random spaces: unit rows, fixed by the seed, recorded as random', () => {
  const a = LabelSpace.random(['x', 'y', 'z'], 257, 4);
  const b = LabelSpace.random(['x', 'y', 'z'], 257, 4);
  const c = LabelSpace.random(['x', 'y', 'z'], 257, 5);
  expect(Array.from(a.table)).toEqual(Array.from(b.table));
  expect(Array.from(a.table)).not.toEqual(Array.from(c.table));
  for (let r = 0; r < 3; ++r) {
    const v = a.table.subarray(r * 257, (r + 1) * 257);
    expect(Math.abs(Math.hypot(...v) - 1)).toBeLessThan(1e-6);
  }
  expect(a.describe()).toMatch(/random unit vectors of dimension 257 \(seed 4\)/);
  expect(a.sameSpaceAs(b)).toBe(true);
  expect(a.sameSpaceAs(c)).toBe(false);
});

test('save and load keep names, vectors and the source', () => {
  const s = LabelSpace.fromLlm(['anger', 'joy'], llm, { template: 'a {emotion} scene' });
  const file = path.join(tmp, 'labels.safetensors');
  s.save(file);
  const t = LabelSpace.load(file);
  expect(t.names).toEqual(['anger', 'joy']);
  expect(Array.from(t.table)).toEqual(Array.from(s.table));
  expect(t.source).toEqual(s.source);
  expect(t.sameSpaceAs(s)).toBe(true);
  expect(t.sameSpaceAs(LabelSpace.random(['anger', 'joy'], D, 0))).toBe(false);
});
