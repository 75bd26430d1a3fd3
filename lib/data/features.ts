/**
 * Data folders of precomputed features: one sub-folder per class name, one
 * file per sample (.pt as the released Emotion6 features, .safetensors as
 * `tinyemo features` writes them with a tensor `image_embeds`, or .npy).
 * Files are listed in a fixed order (classes by name, files by natural
 * order), so a seed fixes everything downstream.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { WeightFile } from '../io/weights';
import { Rng } from '../util/rng';

export const FEATURE_EXTENSIONS = ['.pt', '.pth', '.bin', '.safetensors', '.npy'];

export interface FeatureSet {
  classes: string[];
  dim: number;
  /** [N, dim] row-major. */
  x: Float32Array;
  y: Int32Array;
  files: string[];
  /** Files that could not be read, with the reason (skipped). */
  skipped: Array<{ file: string; reason: string }>;
}

const natural = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** One feature vector from a file: its only tensor, or `image_embeds`. */
export function readFeatureVector(file: string): Float32Array {
  const w = WeightFile.open(file);
  try {
    const names = w.tensors.map((t) => t.name);
    const name = names.length === 1 ? names[0] : names.includes('image_embeds') ? 'image_embeds' : undefined;
    if (name === undefined) throw new TinyEmoError('INVALID_FILE', `${file}: expected one tensor or "image_embeds", found ${names.length}`);
    const t = w.load(name, { dtype: 'f32' });
    try {
      if (t.size === 0) throw new TinyEmoError('INVALID_FILE', `${file}: empty tensor`);
      if (t.shape.filter((d) => d > 1).length > 1) throw new TinyEmoError('INVALID_FILE', `${file}: shape [${t.shape.join(', ')}] is not one vector`);
      return t.toArray() as Float32Array;
    } finally {
      t.dispose();
    }
  } finally {
    w.close();
  }
}

export function loadFeatureFolder(dir: string, opts: { classes?: readonly string[] } = {}): FeatureSet {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new TinyEmoError('NOT_FOUND', `${dir} is not a folder`);
  const found = fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort(natural.compare);
  const classes = opts.classes ? [...opts.classes] : found;
  if (opts.classes) {
    const extra = found.filter((c) => !classes.includes(c));
    if (extra.length) throw new TinyEmoError('INVALID_ARGUMENT', `${dir} has classes the model does not know: ${extra.join(', ')}`);
  }
  if (classes.length < 2) throw new TinyEmoError('INVALID_ARGUMENT', `${dir} needs at least two class folders (found ${found.length})`);
  const rows: Float32Array[] = [];
  const y: number[] = [];
  const files: string[] = [];
  const skipped: FeatureSet['skipped'] = [];
  classes.forEach((c, ci) => {
    const cdir = path.join(dir, c);
    if (!fs.existsSync(cdir)) return;
    const names = fs
      .readdirSync(cdir)
      .filter((f) => FEATURE_EXTENSIONS.includes(path.extname(f).toLowerCase()))
      .sort(natural.compare);
    for (const f of names) {
      const file = path.join(cdir, f);
      try {
        rows.push(readFeatureVector(file));
        y.push(ci);
        files.push(file);
      } catch (e) {
        if (!(e instanceof TinyEmoError)) throw e;
        skipped.push({ file, reason: e.message });
      }
    }
  });
  checkOneWidth(dir, rows, files);
  const dim = rows.length ? rows[0].length : 0;
  // A class folder whose files are all unreadable (or that has none) cannot be learnt: say so rather than train without it.
  const empty = found.filter((c) => classes.includes(c) && !y.includes(classes.indexOf(c)));
  if (!opts.classes && empty.length && rows.length) {
    throw new TinyEmoError(
      'INVALID_ARGUMENT',
      `${dir}: no readable feature file in ${empty.map((c) => `${c}/`).join(', ')}${skipped.length ? ` (${skipped.length} files unreadable: ${skipped[0].reason}${skipped.length > 1 ? ', ...' : ''})` : ''}`,
    );
  }
  if (rows.length === 0) throw new TinyEmoError('NOT_FOUND', `${dir} holds no readable feature files (${FEATURE_EXTENSIONS.join(', ')})`);
  const x = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => x.set(r, i * dim));
  return { classes, dim, x, y: Int32Array.from(y), files, skipped };
}

/** One width for every feature file of a folder; else a refusal naming a file of each width and how many have it. */
function checkOneWidth(dir: string, rows: Float32Array[], files: string[]): void {
  const byWidth = new Map<number, { n: number; example: string }>();
  rows.forEach((r, i) => {
    const w = byWidth.get(r.length);
    if (w) w.n += 1;
    else byWidth.set(r.length, { n: 1, example: files[i] });
  });
  if (byWidth.size <= 1) return;
  const list = [...byWidth].sort((a, b) => b[1].n - a[1].n).map(([width, w]) => `${w.n} files of ${width} values (e.g. ${path.relative(dir, w.example)})`);
  throw new TinyEmoError('INVALID_ARGUMENT', `${dir} mixes feature widths: ${list.join(', ')}; features from one vision tower have one width`);
}

/** A subset of the samples, in the given order. */
export function subset(s: FeatureSet, idx: readonly number[]): FeatureSet {
  const x = new Float32Array(idx.length * s.dim);
  idx.forEach((i, k) => x.set(s.x.subarray(i * s.dim, (i + 1) * s.dim), k * s.dim));
  return { classes: s.classes, dim: s.dim, x, y: Int32Array.from(idx, (i) => s.y[i]), files: idx.map((i) => s.files[i]), skipped: [] };
}

/** A stratified split: `fraction` of each class (rounded) goes to validation, chosen with the seed. */
export function stratifiedSplit(s: FeatureSet, fraction: number, seed: number): { train: number[]; val: number[] } {
  if (!(fraction > 0 && fraction < 1)) throw new TinyEmoError('INVALID_ARGUMENT', 'the validation fraction must be in (0, 1)');
  const rng = new Rng(seed ^ 0x5eed5eed);
  const train: number[] = [];
  const val: number[] = [];
  s.classes.forEach((_, c) => {
    const idx: number[] = [];
    s.y.forEach((t, i) => t === c && idx.push(i));
    rng.shuffle(idx);
    const n = Math.round(idx.length * fraction);
    val.push(...idx.slice(0, n));
    train.push(...idx.slice(n));
  });
  return { train: train.sort((a, b) => a - b), val: val.sort((a, b) => a - b) };
}
