/** `tinyemo train` and `tinyemo eval` as a user runs them (the built command, synthetic data). */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { readFeatureVector } from '../lib/data/features';
import { MetricClassifier } from '../lib/models/projector/classifier';
import { LabelSpace } from '../lib/models/projector/label_space';
import { npyBytes } from '../lib/io/npy';
import { writeClusters } from './helpers/feature_data';

const bin = path.join(__dirname, '..', 'bin', 'tinyemo.js');
function run(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
}

let tmp: string;
let data: string;
let model: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-cli-train-'));
  data = path.join(tmp, 'data');
  writeClusters(data, { classes: ['anger', 'joy', 'fear', 'sadness'], counts: [17, 15, 16, 14], dim: 13, sep: 0.9, seed: 3 });
  model = path.join(tmp, 'model');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A model trained with --no-refit, whose validation part stays held out (trained once, on first use). */
function heldModel(): string {
  const dir = path.join(tmp, 'model-held');
  if (!fs.existsSync(dir)) {
    const r = run('train', '--data', data, '--out', dir, '--epochs', '4', '--batch-size', '8', '--hidden', '20', '--lr', '1e-2', '--seed', '2', '--no-refit');
    expect(r.status).toBe(0);
  }
  return dir;
}

test('train --json: one JSON document, the label space said, a model folder written', () => {
  const r = run('train', '--data', data, '--out', model, '--epochs', '4', '--batch-size', '8', '--hidden', '20', '--lr', '1e-2', '--seed', '2', '--json');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout);
  expect(j.labelSpace).toMatch(/random unit vectors of dimension 20 \(seed 2\)/);
  // 4 validation epochs, then the refit's 4 on all 62 samples (the model kept).
  expect(j.epochs.map((e: { phase: string; epoch: number }) => `${e.phase} ${e.epoch}`)).toEqual([1, 2, 3, 4, 1, 2, 3, 4].map((e, i) => `${i < 4 ? 'validation' : 'refit'} ${e}`));
  expect([j.trainSamples, j.valSamples]).toEqual([62, 12]);
  expect(j.refitted).toEqual({ validationTop1: j.epochs[3].val.top1, validationTrainSamples: 50 });
  for (const f of ['tinyemo.json', 'projector.safetensors', 'labels.safetensors', 'checkpoint.safetensors', 'log.jsonl', 'train.json']) {
    expect(fs.existsSync(path.join(model, f))).toBe(true);
  }
});

test('train without --json reports the label space and one line per epoch on stderr', () => {
  const out = path.join(tmp, 'model-text');
  const r = run('train', '--data', data, '--out', out, '--epochs', '2', '--batch-size', '8', '--hidden', '20');
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(/label space: random unit vectors of dimension 20 \(seed 0\) \(no --llm or --labels: the labels are random points, not words\)/);
  expect(r.stderr).toMatch(/epoch 1\/2 {2}loss [0-9.]+ {2}lr [0-9.e+-]+ {2}val top-1 [0-9.]+%/);
  expect(r.stderr).toMatch(/refit: the same recipe again on all 62 samples; this is the model kept/);
  expect(r.stderr).toMatch(/refit epoch 2\/2 {2}loss [0-9.]+ {2}lr [0-9.e+-]+ {2}\(/);
  expect(r.stdout).toMatch(/validation top-1 [0-9.]+% at the last epoch, trained on 50 and validated on 12 samples/);
  expect(r.stdout).toMatch(/kept: the same recipe refit on all 62 samples/);
  const kept = run('train', '--data', data, '--out', path.join(tmp, 'model-kept'), '--epochs', '2', '--batch-size', '8', '--hidden', '20', '--no-refit');
  expect(kept.status).toBe(0);
  expect(kept.stderr).not.toMatch(/refit/);
  expect(kept.stdout).toMatch(/best epoch \d: validation top-1/);
});

test('an unreadable training file is said once, though validation and refit both read the folder', () => {
  const withJunk = path.join(tmp, 'with-junk');
  fs.cpSync(data, withJunk, { recursive: true });
  fs.writeFileSync(path.join(withJunk, 'joy', 'junk.npy'), 'not a feature file');
  const r = run('train', '--data', withJunk, '--out', path.join(tmp, 'model-junk'), '--epochs', '1', '--hidden', '20');
  expect(r.status).toBe(0);
  expect(r.stderr.split('\n').filter((l) => l.startsWith('skipped ') && l.includes('junk.npy'))).toHaveLength(1);
  expect(r.stderr).toMatch(/refit: the same recipe again on all 62 samples/);
});

test('inspect on a tinyemo train folder lists its weight files and their tensors; a folder without weights is refused', () => {
  const r = run('inspect', model, '--json');
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout) as { format: string; parts: Array<{ file: string; tensors: Array<{ name: string }> }>; tensors: unknown[] };
  expect(j.format).toBe('tinyemo model folder (tinyemo.json)');
  expect(j.parts.map((x) => x.file)).toEqual(expect.arrayContaining(['checkpoint.safetensors', 'labels.safetensors', 'projector.safetensors']));
  const projector = j.parts.find((x) => x.file === 'projector.safetensors')!;
  expect(projector.tensors.map((t) => t.name)).toEqual(expect.arrayContaining(['model.0.weight', 'model.4.weight']));
  expect(j.tensors.length).toBe(j.parts.reduce((n, x) => n + x.tensors.length, 0));
  const text = run('inspect', model);
  expect(text.stdout).toMatch(/tinyemo model folder \(tinyemo.json\), \d+ weight files, \d+ tensors/);
  expect(text.stdout).toMatch(/^projector\.safetensors: safetensors, \d+ tensors/m);
  const empty = path.join(tmp, 'empty');
  fs.mkdirSync(empty, { recursive: true });
  const none = run('inspect', empty);
  expect(none.status).toBe(2);
  expect(none.stderr).toMatch(/holds no weights .*\[NOT_FOUND\]/);
});

test('trainer faults: mixed widths and an empty class are refused, a diverged run keeps nothing, a refused resume makes no folder', () => {
  const mixed = path.join(tmp, 'mixed');
  fs.cpSync(data, mixed, { recursive: true });
  fs.writeFileSync(path.join(mixed, 'joy', 'wide.npy'), npyBytes(new Float32Array(40), [40]));
  const out = path.join(tmp, 'fault-out');
  const m = run('train', '--data', mixed, '--out', out);
  expect(m.status).toBe(2);
  expect(m.stderr).toMatch(/mixes feature widths: 62 files of 13 values \(e\.g\. anger\/0\.safetensors\), 1 files of 40 values \(e\.g\. joy\/wide\.npy\)/);
  expect(fs.existsSync(out)).toBe(false);
  const hollow = path.join(tmp, 'hollow');
  fs.cpSync(data, hollow, { recursive: true });
  for (const f of fs.readdirSync(path.join(hollow, 'fear'))) fs.writeFileSync(path.join(hollow, 'fear', f), 'junk');
  const h = run('train', '--data', hollow, '--out', out);
  expect(h.status).toBe(2);
  expect(h.stderr).toMatch(/no readable feature file in fear\//);
  const nan = run('train', '--data', data, '--out', out, '--lr', '1e9', '--epochs', '3');
  expect(nan.status).toBe(2);
  expect(nan.stderr).toMatch(/the loss became (NaN|Infinity|-Infinity) at step \d+ .*training diverged, no model is kept; try a lower --lr/);
  expect(fs.existsSync(out)).toBe(false);
  // Into a folder holding an earlier run, a diverged run removes what it wrote and leaves the files it never
  // reached (train.json is written at the end) as they were.
  const earlier = path.join(tmp, 'earlier');
  expect(run('train', '--data', data, '--out', earlier, '--epochs', '1', '--hidden', '20').status).toBe(0);
  const summary = fs.readFileSync(path.join(earlier, 'train.json'), 'utf8');
  expect(run('train', '--data', data, '--out', earlier, '--lr', '1e9', '--epochs', '3', '--hidden', '20').status).toBe(2);
  expect(fs.readFileSync(path.join(earlier, 'train.json'), 'utf8')).toBe(summary);
  expect(fs.existsSync(path.join(earlier, 'checkpoint.safetensors'))).toBe(false);
  const resume = run('train', '--data', data, '--out', out, '--resume');
  expect(resume.status).toBe(2);
  expect(resume.stderr).toMatch(/--resume: no checkpoint/);
  expect(fs.existsSync(out)).toBe(false);
});

test('Ctrl-C: a checkpoint, how to resume, exit 130, no temporary file; the resumed log has each epoch once', async () => {
  const out = path.join(tmp, 'interrupted');
  const args = ['train', '--data', data, '--out', out, '--epochs', '40', '--batch-size', '4', '--hidden', '20'];
  const child = spawn(process.execPath, [bin, ...args]);
  let stderr = '';
  let sent = false;
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (!sent && /epoch +2\/40/.test(stderr)) {
      sent = true; // once: a second Ctrl-C ends the process at once, as it should
      child.kill('SIGINT');
    }
  });
  expect(await done).toBe(130);
  expect(stderr).toMatch(/stopped: the checkpoint is in .*interrupted; continue with the same command and --resume/);
  expect(fs.readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
  fs.writeFileSync(path.join(out, '.checkpoint.safetensors.tmp-stale'), 'left by a kill');
  const r = run(...args, '--resume', '--json');
  expect(r.status).toBe(0);
  expect(fs.readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
  const epochs = fs
    .readFileSync(path.join(out, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { epoch: number }).epoch);
  const forty = Array.from({ length: 40 }, (_, i) => i + 1);
  expect(epochs).toEqual([...forty, ...forty]); // validation, then refit
}, 120000);

test('eval on the folder the model was trained on says how many of its samples were trained on', () => {
  const r = run('eval', '--data', data, '--projector', model, '--json');
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout) as { warning?: string };
  expect(j.warning).toMatch(/^\d+ of these 62 samples were trained on, so this score is optimistic/);
  expect(r.stderr).toMatch(/^warning: \d+ of these 62 samples were trained on/);
  // A refit model trained on all of them: nothing is held out.
  expect(j.warning).toMatch(/^62 of these 62 samples/);
  const refused = run('eval', '--data', data, '--projector', model, '--heldout', '--json');
  expect(refused.status).toBe(2);
  expect(refused.stderr).toMatch(/was refit on all of its data after validation .* --no-refit to keep a held-out part/);
  expect((JSON.parse(run('eval', '--data', data, '--projector', heldModel(), '--heldout', '--json').stdout) as { warning?: string }).warning).toBeUndefined();
});

test('eval --json has the contract keys, accuracies as fractions, and writes the pictures', () => {
  const plots = path.join(tmp, 'plots');
  const r = run('eval', '--data', data, '--projector', model, '--json', '--plots', plots);
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout);
  for (const k of ['n', 'top1', 'top5', 'perClass', 'macroF1', 'confusion']) expect(j).toHaveProperty(k);
  expect(j.n).toBe(62);
  for (const v of [j.top1, j.top5, j.macroF1]) expect(v >= 0 && v <= 1).toBe(true);
  expect(j.top1).toBeGreaterThan(0.5);
  expect(Object.keys(j.perClass)).toEqual(['anger', 'fear', 'joy', 'sadness']);
  expect(j.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(62);
  const svg = fs.readFileSync(path.join(plots, 'confusion.svg'), 'utf8');
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg).toContain('sadness');
  expect(fs.readFileSync(path.join(plots, 'embeddings.svg'), 'utf8')).toMatch(/<circle[^>]+>/);
});

test('eval --heldout scores exactly the validation part training held out', () => {
  const model = heldModel();
  const r = run('eval', '--data', data, '--projector', model, '--heldout', '--json');
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout);
  const bundle = JSON.parse(fs.readFileSync(path.join(model, 'tinyemo.json'), 'utf8'));
  expect(j.heldout).toBe(true);
  expect(j.n).toBe(bundle.training.valSamples);
  expect(j.top1).toBe(bundle.training.valTop1);
  const other = path.join(tmp, 'other-data');
  writeClusters(other, { classes: ['anger', 'joy', 'fear', 'sadness'], counts: [5, 5, 5, 5], dim: 13, sep: 0.9, seed: 4 });
  expect(run('eval', '--data', other, '--projector', model, '--heldout').stderr).toMatch(/not the folder the model was trained on/);
});

test('eval in another label space is refused unless asked for', () => {
  const other = path.join(tmp, 'other-labels.safetensors');
  LabelSpace.random(['anger', 'fear', 'joy', 'sadness'], 20, 99).save(other);
  const refused = run('eval', '--data', data, '--projector', model, '--labels', other);
  expect(refused.status).toBe(2);
  expect(refused.stderr).toMatch(/was trained in random unit vectors of dimension 20 \(seed 2\), not random unit vectors of dimension 20 \(seed 99\).*--allow-label-mismatch/s);
  const allowed = run('eval', '--data', data, '--projector', model, '--labels', other, '--allow-label-mismatch', '--json');
  expect(allowed.status).toBe(0);
  // The same space given explicitly is accepted without the flag.
  const same = run('eval', '--data', data, '--projector', model, '--labels', path.join(model, 'labels.safetensors'), '--json');
  expect(same.status).toBe(0);
  expect(JSON.parse(same.stdout).top1).toBe(JSON.parse(run('eval', '--data', data, '--projector', model, '--json').stdout).top1);
});

test('a projector without tinyemo.json needs its label space; bad flags are clear errors', () => {
  const released = path.join(__dirname, 'fixtures', 'projector');
  const r = run('eval', '--data', data, '--projector', released);
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/has no tinyemo.json: give the label space/);
  const bad = run('train', '--data', data, '--out', path.join(tmp, 'x'), '--epochs', 'ten');
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/--epochs takes an integer, not "ten"/);
  const both = run('train', '--data', data, '--out', path.join(tmp, 'x'), '--val', data, '--val-split', '0.1');
  expect(both.stderr).toMatch(/--val or --val-split, not both/);
  const missing = run('train', '--data', path.join(tmp, 'nope'), '--out', path.join(tmp, 'x'));
  expect(missing.status).toBe(2);
  expect(missing.stderr).toMatch(/is not a folder \[NOT_FOUND\]/);
});

test('the one CLI rule: bad inputs skipped and listed, exit 2 when nothing is produced, --strict fails on a skip', () => {
  const good = path.join(data, 'joy', '1.npy');
  const folderPt = path.join(tmp, 'folder.pt');
  fs.mkdirSync(folderPt, { recursive: true });
  const wide = path.join(tmp, 'wide.npy');
  fs.writeFileSync(wide, npyBytes(new Float32Array(14), [14]));
  const bad = [path.join(tmp, 'missing.pt'), folderPt, wide];
  const r = run('classify', good, ...bad, '--model', model, '--json');
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout) as { results: Array<{ file: string }>; skipped: Array<{ file: string; reason: string; code: string }> };
  expect(j.results.map((x) => x.file)).toEqual([good]);
  expect(j.skipped.map((x) => x.file)).toEqual(bad);
  expect(j.skipped[2].reason).toBe('holds 14 values; the projector takes 13');
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(3);
  lines.forEach((l, i) => {
    expect(l.startsWith(`skipped ${bad[i]}: `)).toBe(true);
    expect(l.slice(`skipped ${bad[i]}: `.length)).not.toContain(bad[i]); // the path once
  });
  const none = run('classify', ...bad, '--model', model, '--json');
  expect(none.status).toBe(2);
  expect((JSON.parse(none.stdout) as { skipped: unknown[] }).skipped).toHaveLength(3);
  expect(none.stderr).toMatch(/tinyemo: no result: all 3 inputs were skipped/);
  const strict = run('classify', good, wide, '--model', model, '--strict');
  expect(strict.status).toBe(2);
  expect(strict.stdout).toMatch(/1\.npy: /);
  expect(strict.stderr).toMatch(/--strict: 1 input was skipped/);
  expect(run('classify', good, '--model', model, '--strict').status).toBe(0);
  // A model folder that is not there says so.
  const gone = run('classify', good, '--model', path.join(tmp, 'no-such-model'));
  expect(gone.status).toBe(2);
  expect(gone.stderr).toMatch(/no-such-model does not exist \(a model folder from tinyemo train, or a projector.s weights\) \[NOT_FOUND\]/);
});

test('eval lists unreadable feature files and follows the same rule', () => {
  const copy = path.join(tmp, 'data-with-junk');
  fs.cpSync(data, copy, { recursive: true });
  fs.writeFileSync(path.join(copy, 'joy', 'junk.safetensors'), 'not a safetensors file');
  const r = run('eval', '--data', copy, '--projector', model, '--json');
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout) as { n: number; skipped: Array<{ file: string; reason: string }> };
  expect(j.n).toBe(62);
  expect(j.skipped.map((x) => path.relative(copy, x.file))).toEqual([path.join('joy', 'junk.safetensors')]);
  expect(r.stderr).toMatch(/^skipped .*junk\.safetensors: /);
  expect(run('eval', '--data', copy, '--projector', model, '--strict').status).toBe(2);
});

test('classify --json: ranked labels per feature file, as the library classifier gives them', async () => {
  const files = ['anger/0.safetensors', 'joy/1.npy', 'sadness/2.safetensors'].map((f) => path.join(data, f));
  const r = run('classify', ...files, '--model', model, '--top-k', '2', '--json');
  expect(r.status).toBe(0);
  const out = JSON.parse(r.stdout) as { results: Array<{ file: string; predictions: Array<{ label: string; score: number }> }>; skipped: unknown[] };
  expect(out.skipped).toEqual([]);
  const j = out.results;
  expect(j.map((x) => x.file)).toEqual(files);
  const cls = MetricClassifier.load(model);
  const x = new Float32Array(files.length * cls.inDim);
  files.forEach((f, i) => x.set(readFeatureVector(f), i * cls.inDim));
  const want = await cls.classify(x, { topK: 2 });
  expect(cls.classifySync(x, { topK: 2 })).toEqual(want);
  cls.dispose();
  j.forEach((row, i) => {
    expect(row.predictions.map((p) => p.label)).toEqual(want[i].map((p) => p.label));
    row.predictions.forEach((p, k) => expect(p.score).toBeCloseTo(want[i][k].score, 6));
    expect(row.predictions[0].score).toBeGreaterThanOrEqual(row.predictions[1].score);
  });
  // This projector's features came from no known tower, so an image needs --vision.
  const image = run('classify', path.join(tmp, 'photo.jpg'), '--model', model);
  expect(image.status).toBe(2);
  expect(image.stderr).toMatch(/does not say which vision tower made its \d+-value features: give --vision DIR \[INVALID_ARGUMENT\]/);
});

test('the library classifier: shapes checked, a released projector needs its label space', () => {
  const cls = MetricClassifier.load(model);
  expect(cls.labels).toEqual(['anger', 'fear', 'joy', 'sadness']);
  expect(() => cls.classifySync(new Float32Array(cls.inDim + 1))).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
  expect(() => cls.classifySync(new Float32Array(cls.inDim).fill(1), { topK: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  // topK past the number of labels gives them all.
  expect(cls.classifySync(new Float32Array(cls.inDim).fill(0.5), { topK: 9 })[0]).toHaveLength(4);
  cls.dispose();
  expect(() => cls.classifySync(new Float32Array(cls.inDim))).toThrow(expect.objectContaining({ code: 'DISPOSED' }));

  const released = path.join(__dirname, 'fixtures', 'projector');
  expect(() => MetricClassifier.load(released)).toThrow(/has no tinyemo.json/);
  const labels = LabelSpace.random(['a', 'b', 'c'], 19, 1);
  const r = MetricClassifier.load(released, { labels });
  expect(
    r
      .classifySync(new Float32Array(23).fill(0.3), { topK: 3 })[0]
      .map((p) => p.label)
      .sort(),
  ).toEqual(['a', 'b', 'c']);
  r.dispose();
  expect(() => MetricClassifier.load(released, { labels: LabelSpace.random(['a'], 7, 1) })).toThrow(/outputs 19 values, the label space has 7/);
});
