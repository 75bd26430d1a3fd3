/**
 * The Metric Projector model: released checkpoints (fixture written by
 * PyTorch, scripts/fixtures/projector_release.py) load unchanged and give
 * PyTorch's eval-mode outputs; what tinyemo saves reloads to identical
 * predictions; broken files are typed errors.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Tensor, TinyEmoError } from '../lib';
import { Projector, PROJECTOR_KEYS } from '../lib/models/projector/projector';
import { WeightFile } from '../lib/io/weights';
import { writeSafetensors } from '../lib/io/safetensors';
import { relError } from './helpers/compare';
import { Rng } from './helpers/random';

const fixtureDir = path.join(__dirname, 'fixtures', 'projector');
const fx = JSON.parse(fs.readFileSync(path.join(fixtureDir, 'expected.json'), 'utf8')) as {
  sizes: { IN: number; H: number; B: number };
  x: number[];
  y_eval: number[];
  num_batches_tracked: number;
};
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-projector-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('a released pytorch_model.bin loads unchanged and matches PyTorch in eval mode', () => {
  const { IN, H, B } = fx.sizes;
  for (const p of [Projector.load(path.join(fixtureDir, 'pytorch_model.bin')), Projector.fromFolder(fixtureDir)]) {
    expect([p.inDim, p.hidden, p.outDim]).toEqual([IN, H, H]);
    expect(p.numBatchesTracked).toBe(fx.num_batches_tracked);
    const y = p.forwardSync(Tensor.from(fx.x, [B, IN]));
    expect(relError(y.toArray() as Float32Array, fx.y_eval)).toBeLessThan(1e-5);
    y.dispose();
    p.dispose();
  }
});

test('saved safetensors keep the released names and reload to bit-identical predictions', async () => {
  const p = Projector.init(31, 17, 17, 5);
  // Move BatchNorm's running statistics away from their initial values.
  p.weights.runningMean.data.set(new Rng(1).floats(17, 0.3));
  p.weights.runningVar.data.set(Float32Array.from(new Rng(2).floats(17), (v) => 1 + Math.abs(v)));
  p.numBatchesTracked = 42;
  const file = path.join(tmp, 'p.safetensors');
  p.save(file);
  const w = WeightFile.open(file);
  expect(w.tensors.map((t) => t.name).sort()).toEqual(Object.values(PROJECTOR_KEYS).sort());
  w.close();

  const q = Projector.load(file);
  expect(q.numBatchesTracked).toBe(42);
  const x = Tensor.from(new Rng(3).floats(13 * 31, 4), [13, 31]);
  const a = await p.forward(x);
  const b = await q.forward(x);
  expect(Buffer.from((b.toArray() as Float32Array).buffer).equals(Buffer.from((a.toArray() as Float32Array).buffer))).toBe(true);
  [x, a, b].forEach((t) => t.dispose());
  p.dispose();
  q.dispose();
});

test('init is seeded and PyTorch-shaped: bounds 1/sqrt(fan_in), BatchNorm at identity', () => {
  const a = Projector.init(40, 9, 9, 3);
  const b = Projector.init(40, 9, 9, 3);
  const c = Projector.init(40, 9, 9, 4);
  expect(Array.from(a.weights.w1.data)).toEqual(Array.from(b.weights.w1.data));
  expect(Array.from(a.weights.w1.data)).not.toEqual(Array.from(c.weights.w1.data));
  expect(Math.max(...Array.from(a.weights.w1.data, Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(40));
  expect(Math.max(...Array.from(a.weights.w2.data, Math.abs))).toBeLessThanOrEqual(1 / 3);
  expect(Array.from(a.weights.runningVar.data)).toEqual(new Array(9).fill(1));
  [a, b, c].forEach((p) => p.dispose());
});

test('files that are not projectors are typed errors naming what is missing or wrong', () => {
  const notProjector = path.join(__dirname, 'fixtures', 'weights', 'state_zip.pt');
  expect(() => Projector.load(notProjector)).toThrow(TinyEmoError);
  expect(() => Projector.load(notProjector)).toThrow(/not a TinyEmo projector: no "model.0.weight"/);

  // The shapes must chain: w2's input is w1's output.
  const bad = path.join(tmp, 'bad.safetensors');
  const t = (shape: number[]) => Tensor.from(new Rng(9).floats(shape.reduce((a, b) => a * b, 1)), shape);
  const k = PROJECTOR_KEYS;
  const parts = {
    [k.w1]: t([6, 5]),
    [k.b1]: t([6]),
    [k.bnWeight]: t([6]),
    [k.bnBias]: t([6]),
    [k.runningMean]: t([6]),
    [k.runningVar]: t([6]),
    [k.w2]: t([6, 7]),
    [k.b2]: t([6]),
  };
  writeSafetensors(bad, parts);
  Object.values(parts).forEach((x) => x.dispose());
  expect(() => Projector.load(bad)).toThrow(expect.objectContaining({ code: 'INVALID_FILE' }));

  const truncated = path.join(tmp, 'truncated.bin');
  const raw = fs.readFileSync(path.join(fixtureDir, 'pytorch_model.bin'));
  fs.writeFileSync(truncated, raw.subarray(0, raw.length - 100));
  expect(() => Projector.load(truncated)).toThrow(TinyEmoError);
});
