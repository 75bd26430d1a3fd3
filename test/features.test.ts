/** Feature data folders: the three file formats, skipped files, fixed order, stratified splits, taxonomies. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { TinyEmoError } from '../lib';
import { loadFeatureFolder, stratifiedSplit, subset } from '../lib/data/features';
import { TAXONOMIES, findTaxonomy } from '../lib/data/taxonomies';
import { npyBytes } from '../lib/io/npy';
import { writeClusters } from './helpers/feature_data';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-features-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('safetensors, npy and a PyTorch-written .pt load in class and natural file order; junk is skipped and reported', () => {
  const dir = path.join(tmp, 'mixed');
  const d = writeClusters(dir, { classes: ['b_cls', 'a_cls'], counts: [12, 3], dim: 5, sep: 2, seed: 1 });
  // A [3, 4]-shaped tensor is not one vector -> skipped with a reason; a 1-D one loads.
  fs.writeFileSync(path.join(dir, 'a_cls', '9.npy'), npyBytes(new Float32Array(12), [3, 4]));
  fs.writeFileSync(path.join(dir, 'a_cls', '10.npy'), 'not an npy file');
  fs.writeFileSync(path.join(dir, 'a_cls', 'notes.txt'), 'ignored: not a feature extension');
  fs.mkdirSync(path.join(dir, '.hidden'));

  const s = loadFeatureFolder(dir);
  expect(s.classes).toEqual(['a_cls', 'b_cls']);
  expect(s.dim).toBe(5);
  expect(s.y.length).toBe(15);
  expect(s.files.slice(0, 3).map((f) => path.basename(f))).toEqual(['0.safetensors', '1.npy', '2.safetensors']);
  expect(s.files[3].endsWith(path.join('b_cls', '0.safetensors'))).toBe(true);
  expect(s.files.slice(3, 6).map((f) => path.basename(f))).toEqual(['0.safetensors', '1.npy', '2.safetensors']);
  expect(path.basename(s.files[14])).toBe('11.npy'); // natural order: 11 after 2
  // Values are exactly what was written (a_cls is class 1 in writing order).
  expect(Array.from(s.x.subarray(0, 5))).toEqual(Array.from(d.samples[1][0]));
  expect(Array.from(s.x.subarray(4 * 5, 5 * 5))).toEqual(Array.from(d.samples[0][1]));
  expect(s.skipped.map((k) => path.basename(k.file)).sort()).toEqual(['10.npy', '9.npy']);
  s.skipped.forEach((k) => expect(k.reason.length).toBeGreaterThan(5));
});

test('mixed feature widths are refused, naming a file of each width and how many have it', () => {
  const dir = path.join(tmp, 'lengths');
  writeClusters(dir, { classes: ['x', 'y'], counts: [3, 3], dim: 4, sep: 1, seed: 2 });
  writeClusters(path.join(tmp, 'other'), { classes: ['y'], counts: [1], dim: 6, sep: 1, seed: 3 });
  fs.copyFileSync(path.join(tmp, 'other', 'y', '0.safetensors'), path.join(dir, 'y', '7.safetensors'));
  expect(() => loadFeatureFolder(dir)).toThrow(/mixes feature widths: 6 files of 4 values \(e\.g\. x\/0\.safetensors\), 1 files of 6 values \(e\.g\. y\/7\.safetensors\)/);
});

test('bad folders are typed errors', () => {
  expect(() => loadFeatureFolder(path.join(tmp, 'absent'))).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  const one = path.join(tmp, 'one');
  writeClusters(one, { classes: ['only'], counts: [2], dim: 3, sep: 1, seed: 1 });
  expect(() => loadFeatureFolder(one)).toThrow(/at least two class folders/);
  const empty = path.join(tmp, 'empty');
  fs.mkdirSync(path.join(empty, 'a'), { recursive: true });
  fs.mkdirSync(path.join(empty, 'b'));
  expect(() => loadFeatureFolder(empty)).toThrow(TinyEmoError);
  // A folder with classes the model does not know.
  const d = path.join(tmp, 'extra');
  writeClusters(d, { classes: ['a', 'b', 'c'], counts: [2, 2, 2], dim: 3, sep: 1, seed: 1 });
  expect(() => loadFeatureFolder(d, { classes: ['a', 'b'] })).toThrow(/classes the model does not know: c/);
});

test('stratified split: disjoint, complete, per-class proportions, fixed by the seed', () => {
  const dir = path.join(tmp, 'split');
  const counts = [41, 7, 23];
  writeClusters(dir, { classes: ['a', 'b', 'c'], counts, dim: 3, sep: 1, seed: 4 });
  const s = loadFeatureFolder(dir);
  const sp = stratifiedSplit(s, 0.2, 9);
  expect([...sp.train, ...sp.val].sort((a, b) => a - b)).toEqual(Array.from({ length: 71 }, (_, i) => i));
  counts.forEach((n, c) => expect(sp.val.filter((i) => s.y[i] === c).length).toBe(Math.round(n * 0.2)));
  expect(stratifiedSplit(s, 0.2, 9)).toEqual(sp);
  expect(stratifiedSplit(s, 0.2, 10).val).not.toEqual(sp.val);
  const v = subset(s, sp.val);
  expect(v.y.length).toBe(sp.val.length);
  expect(Array.from(v.x.subarray(0, 3))).toEqual(Array.from(s.x.subarray(sp.val[0] * 3, sp.val[0] * 3 + 3)));
  expect(() => stratifiedSplit(s, 1, 0)).toThrow(TinyEmoError);
});

test('taxonomies are recognised from folder names in any order', () => {
  expect(findTaxonomy(['surprise', 'anger', 'joy', 'fear', 'disgust', 'sadness'])).toBe('emotion6');
  expect(findTaxonomy([...TAXONOMIES.webemo25.classes].reverse())).toBe('webemo25');
  expect(findTaxonomy(['amusement', 'anger', 'awe', 'contentment', 'disgust', 'excitement', 'fear', 'sadness'])).toBe('mikels8');
  expect(findTaxonomy(['joy', 'anger'])).toBeUndefined();
  expect(TAXONOMIES.webemo25.classes).toHaveLength(25);
});
