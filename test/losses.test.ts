import { LOSSES, LabelTable, metricLoss } from '../lib/train/losses';
import { scheduleAt } from '../lib/train/schedule';
import { Rng } from '../lib/train/rng';
import { relError } from './helpers/compare';

function labels(C: number, H: number, rng: Rng): LabelTable {
  const data = new Float32Array(C * H);
  for (let c = 0; c < C; ++c) {
    let n = 0;
    for (let h = 0; h < H; ++h) n += (data[c * H + h] = rng.normal()) ** 2;
    for (let h = 0; h < H; ++h) data[c * H + h] /= Math.sqrt(n);
  }
  return { count: C, dim: H, data };
}

describe('metric losses', () => {
  test.each(LOSSES)('%s: gradient equals central differences', (name) => {
    const rng = new Rng(5);
    const [B, H, C] = [9, 7, 4];
    const L = labels(C, H, rng);
    const y = Float32Array.from({ length: B * H }, () => rng.normal());
    const t = Int32Array.from([0, 1, 1, 2, 3, 0, 2, 2, 1]);
    const { grad } = metricLoss(name, y, t, L);
    const num = new Float64Array(B * H);
    for (let i = 0; i < y.length; ++i) {
      const yp = Float32Array.from(y);
      const h = 1e-3;
      yp[i] += h;
      const lp = metricLoss(name, yp, t, L).loss;
      yp[i] -= 2 * h;
      const lm = metricLoss(name, yp, t, L).loss;
      num[i] = (lp - lm) / (2 * h);
    }
    expect(relError(grad, num)).toBeLessThan(2e-3);
  });

  test('values against the definitions on a hand-made case', () => {
    // Two 2-d labels on the axes, outputs at known angles.
    const L: LabelTable = { count: 2, dim: 2, data: Float32Array.from([1, 0, 0, 1]) };
    const y = Float32Array.from([2, 0, 0, -3]); // cos with own label: 1 and -1
    const t = Int32Array.from([0, 1]);
    expect(metricLoss('cosine', y, t, L).loss).toBeCloseTo((0 + 2) / 2, 10);
    // infoNCE, tau 0.1: sample 0 candidates {0, 1}: cos (1, 0); sample 1: own 1 (cos -1), other 0 (cos 0).
    const l0 = -10 + Math.log(Math.exp(10) + Math.exp(0));
    const l1 = 10 + Math.log(Math.exp(-10) + Math.exp(0));
    expect(metricLoss('infonce', y, t, L).loss).toBeCloseTo((l0 + l1) / 2, 8);
    // A batch of one class has no negatives for infoNCE: the loss is 0.
    expect(metricLoss('infonce', Float32Array.from([1, 1]), Int32Array.from([0]), L).loss).toBeCloseTo(0, 12);
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
    expect(metricLoss('ntxent', y, t, L).loss).toBeCloseTo(total / pairs, 8);
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
