import { Tensor, backendInfo, metricLoss, metricLossSync, setThreads } from '../lib';
import { LOSSES, LabelTable, LossName } from '../lib/ops/loss';
import { scheduleAt } from '../lib/train/schedule';
import { Rng } from '../lib/util/rng';
import { relError } from './helpers/compare';
import { metricLossReference } from './helpers/metric_loss_reference';

function labels(C: number, H: number, rng: Rng): LabelTable {
  const data = new Float32Array(C * H);
  for (let c = 0; c < C; ++c) {
    let n = 0;
    for (let h = 0; h < H; ++h) n += (data[c * H + h] = rng.normal()) ** 2;
    for (let h = 0; h < H; ++h) data[c * H + h] /= Math.sqrt(n);
  }
  return { count: C, dim: H, data };
}

/** The native op on host arrays: [loss, grad]. */
function native(name: LossName, y: Float32Array, t: Int32Array, L: LabelTable, tau?: number): { loss: number; grad: Float32Array } {
  const yt = Tensor.from(y, [t.length, L.dim]);
  const tt = Tensor.fromArray('i32', t, [t.length]);
  const lt = Tensor.from(L.data, [L.count, L.dim]);
  const r = metricLossSync(name, yt, tt, lt, { tau });
  const out = { loss: (r.loss.toArray() as Float32Array)[0], grad: r.grad.toArray() as Float32Array };
  [yt, tt, lt, r.loss, r.grad].forEach((x) => x.dispose());
  return out;
}

describe('metric losses (native op)', () => {
  test.each(LOSSES)('%s: loss and gradient equal the float64 reference on odd sizes', (name) => {
    const rng = new Rng(31);
    for (const [B, H, C] of [
      [37, 129, 7],
      [5, 1283, 3],
      [1, 17, 4],
      [64, 33, 27],
    ]) {
      const L = labels(C, H, rng);
      const y = Float32Array.from({ length: B * H }, () => rng.normal() * 3);
      // Some classes absent from the batch, some repeated.
      const t = Int32Array.from({ length: B }, () => rng.int(Math.max(1, C - 1)));
      for (const tau of [undefined, 0.5]) {
        const want = metricLossReference(name, y, t, L, tau);
        const got = native(name, y, t, L, tau);
        expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-6 * Math.max(1, Math.abs(want.loss)));
        expect(relError(got.grad, want.grad)).toBeLessThan(1e-6);
      }
    }
  });

  test.each(LOSSES)('%s: gradient equals central differences of the loss', (name) => {
    const rng = new Rng(5);
    const [B, H, C] = [9, 7, 4];
    const L = labels(C, H, rng);
    const y = Float32Array.from({ length: B * H }, () => rng.normal());
    const t = Int32Array.from([0, 1, 1, 2, 3, 0, 2, 2, 1]);
    const { grad } = native(name, y, t, L);
    const num = new Float64Array(B * H);
    // The loss comes back as f32: a step of 1e-2 keeps its rounding well below the differences.
    for (let i = 0; i < y.length; ++i) {
      const yp = Float32Array.from(y);
      const h = 1e-2;
      yp[i] += h;
      const lp = native(name, yp, t, L).loss;
      yp[i] -= 2 * h;
      const lm = native(name, yp, t, L).loss;
      num[i] = (lp - lm) / (2 * h);
    }
    expect(relError(grad, num)).toBeLessThan(5e-3);
  });

  test('values against the definitions on a hand-made case', () => {
    // Two 2-d labels on the axes, outputs at known angles.
    const L: LabelTable = { count: 2, dim: 2, data: Float32Array.from([1, 0, 0, 1]) };
    const y = Float32Array.from([2, 0, 0, -3]); // cos with own label: 1 and -1
    const t = Int32Array.from([0, 1]);
    expect(native('cosine', y, t, L).loss).toBeCloseTo((0 + 2) / 2, 6);
    // infoNCE, tau 0.1: sample 0 candidates {0, 1}: cos (1, 0); sample 1: own 1 (cos -1), other 0 (cos 0).
    const l0 = -10 + Math.log(Math.exp(10) + Math.exp(0));
    const l1 = 10 + Math.log(Math.exp(-10) + Math.exp(0));
    expect(native('infonce', y, t, L).loss).toBeCloseTo((l0 + l1) / 2, 5);
    // A batch of one class has no negatives for infoNCE: the loss and its gradient are 0.
    const one = native('infonce', Float32Array.from([1, 1]), Int32Array.from([0]), L);
    expect(one.loss).toBeCloseTo(0, 7);
    expect(Array.from(one.grad, Math.abs)).toEqual([0, 0]);
  });

  test('ntxent matches its definition over positive pairs with duplicated references', () => {
    const rng = new Rng(9);
    const [H, C] = [5, 3];
    const L = labels(C, H, rng);
    const y = Float32Array.from({ length: 4 * H }, () => rng.normal());
    const t = Int32Array.from([0, 0, 1, 2]);
    const cos = (b: number, c: number) => {
      let d = 0;
      let n = 0;
      for (let h = 0; h < H; ++h) {
        d += y[b * H + h] * L.data[c * H + h];
        n += y[b * H + h] ** 2;
      }
      return d / Math.sqrt(n);
    };
    let total = 0;
    let pairs = 0;
    for (let b = 0; b < 4; ++b)
      for (let p = 0; p < 4; ++p) {
        if (t[p] !== t[b]) continue;
        pairs++;
        const pos = Math.exp(cos(b, t[p]) / 0.07);
        let neg = 0;
        for (let k = 0; k < 4; ++k) if (t[k] !== t[b]) neg += Math.exp(cos(b, t[k]) / 0.07);
        total += -Math.log(pos / (pos + neg));
      }
    expect(native('ntxent', y, t, L).loss).toBeCloseTo(total / pairs, 5);
    expect(metricLossReference('ntxent', y, t, L).loss).toBeCloseTo(total / pairs, 10);
  });

  test('in place, async, and the same bits whatever the thread count', async () => {
    const rng = new Rng(2);
    const [B, H, C] = [300, 65, 6];
    const L = labels(C, H, rng);
    const y = Float32Array.from({ length: B * H }, () => rng.normal());
    const t = Int32Array.from({ length: B }, () => rng.int(C));
    const threads = backendInfo().threads;
    setThreads(1);
    let want: ReturnType<typeof native>;
    try {
      want = native('ntxent', y, t, L);
    } finally {
      setThreads(threads);
    }
    const yt = Tensor.from(y, [B, H]);
    const tt = Tensor.fromArray('i32', t, [B]);
    const lt = Tensor.from(L.data, [C, H]);
    const r = await metricLoss('ntxent', yt, tt, lt, { grad: yt });
    expect(r.grad).toBe(yt);
    expect(Array.from(yt.toArray())).toEqual(Array.from(want.grad));
    expect((r.loss.toArray() as Float32Array)[0]).toBe(want.loss);
    [yt, tt, lt, r.loss].forEach((x) => x.dispose());
  });

  test('bad arguments are typed errors, checked before anything is written', () => {
    const y = Tensor.from(new Float32Array(12).fill(0.5), [3, 4]);
    const lt = Tensor.from(new Float32Array(8).fill(0.5), [2, 4]);
    const bad = Tensor.fromArray('i32', Int32Array.from([0, 2, 1]), [3]);
    const neg = Tensor.fromArray('i32', Int32Array.from([0, -1, 1]), [3]);
    const ok = Tensor.fromArray('i32', Int32Array.from([0, 1, 1]), [3]);
    const grad = Tensor.from(new Float32Array(12).fill(7), [3, 4]);
    expect(() => metricLossSync('infonce', y, bad, lt, { grad })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/targets\[1\] = 2 is not a label index \(0..1\)/) }),
    );
    expect(() => metricLossSync('infonce', y, neg, lt, { grad })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(Array.from(grad.toArray())).toEqual(new Array(12).fill(7));
    expect(() => metricLossSync('triplet' as LossName, y, ok, lt)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => metricLossSync('infonce', y, ok, lt, { tau: 0 })).toThrow(/tau must be > 0/);
    expect(() => metricLossSync('infonce', y, ok, Tensor.from(new Float32Array(6), [2, 3]))).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    expect(() => metricLossSync('infonce', y, Tensor.fromArray('i32', Int32Array.from([0, 1]), [2]), lt)).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    expect(() => metricLossSync('infonce', y, ok, lt, { grad: lt })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    [y, lt, bad, neg, ok, grad].forEach((x) => x.dispose());
  });
});

describe('schedules', () => {
  test("one-cycle as torch's OneCycleLR: warm-up to max_lr, anneal to max_lr/25/1e4, beta1 mirrored", () => {
    const s = { kind: 'onecycle' as const, maxLr: 5e-4, totalSteps: 100 };
    expect(scheduleAt(s, 0).lr).toBeCloseTo(5e-4 / 25, 12);
    expect(scheduleAt(s, 0).beta1).toBeCloseTo(0.95, 12);
    // Phase 1 ends at step 0.3 * 100 - 1 = 29.
    expect(scheduleAt(s, 29).lr).toBeCloseTo(5e-4, 12);
    expect(scheduleAt(s, 29).beta1).toBeCloseTo(0.85, 12);
    expect(scheduleAt(s, 99).lr).toBeCloseTo(5e-4 / 25 / 1e4, 15);
    expect(scheduleAt(s, 99).beta1).toBeCloseTo(0.95, 12);
    // Mid-phase values from the cosine formula.
    const p = (64 - 29) / (99 - 29);
    const min = 5e-4 / 25 / 1e4;
    expect(scheduleAt(s, 64).lr).toBeCloseTo(min + ((5e-4 - min) / 2) * (Math.cos(Math.PI * p) + 1), 14);
  });

  test('cosine decays from max to min', () => {
    const s = { kind: 'cosine' as const, maxLr: 1e-3, totalSteps: 10 };
    expect(scheduleAt(s, 0).lr).toBe(1e-3);
    expect(scheduleAt(s, 5).lr).toBeCloseTo(5e-4, 12);
    expect(scheduleAt(s, 10).lr).toBeCloseTo(0, 12);
  });
});

test('the generator is deterministic, restorable and unbiased enough', () => {
  const a = new Rng(42);
  a.u32();
  const saved = a.state();
  const seq = [a.u32(), a.u32(), a.u32()];
  const b = new Rng(saved);
  expect([b.u32(), b.u32(), b.u32()]).toEqual(seq);
  const counts = new Array(6).fill(0);
  const r = new Rng(1);
  for (let i = 0; i < 60000; ++i) counts[r.int(6)]++;
  counts.forEach((c) => expect(Math.abs(c - 10000)).toBeLessThan(400));
});
