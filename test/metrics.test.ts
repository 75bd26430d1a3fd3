/** Evaluation metrics against a direct float64 computation written here. */
import { evaluate } from '../lib/eval/report';
import { Rng } from './helpers/random';

test('top-1, top-5, per-class recall and precision, macro-F1 and confusion on random rankings', () => {
  const rng = new Rng(21);
  const C = 7;
  const n = 211;
  const classes = Array.from({ length: C }, (_, i) => `c${i}`);
  const targets: number[] = [];
  const ranked: number[][] = [];
  for (let i = 0; i < n; ++i) {
    const t = rng.int(C);
    targets.push(t);
    const order = Array.from({ length: C }, (_, k) => k).sort(() => rng.next() - 0.5);
    // Make the classifier better than chance: often put the target first.
    if (rng.next() < 0.5) {
      order.splice(order.indexOf(t), 1);
      order.unshift(t);
    }
    ranked.push(order);
  }
  const r = evaluate(classes, targets, ranked);

  let top1 = 0;
  let top5 = 0;
  targets.forEach((t, i) => {
    if (ranked[i][0] === t) top1++;
    if (ranked[i].slice(0, 5).includes(t)) top5++;
  });
  expect(r.n).toBe(n);
  expect(r.top1).toBeCloseTo(top1 / n, 12);
  expect(r.top5).toBeCloseTo(top5 / n, 12);
  let f1sum = 0;
  for (let c = 0; c < C; ++c) {
    const tp = targets.filter((t, i) => t === c && ranked[i][0] === c).length;
    const fn = targets.filter((t, i) => t === c && ranked[i][0] !== c).length;
    const fp = targets.filter((t, i) => t !== c && ranked[i][0] === c).length;
    const p = tp / (tp + fp);
    const rc = tp / (tp + fn);
    expect(r.perClass[`c${c}`]).toMatchObject({ support: tp + fn });
    expect(r.perClass[`c${c}`].accuracy).toBeCloseTo(rc, 12);
    expect(r.perClass[`c${c}`].precision).toBeCloseTo(p, 12);
    f1sum += (2 * p * rc) / (p + rc);
    for (let q = 0; q < C; ++q) expect(r.confusion[c][q]).toBe(targets.filter((t, i) => t === c && ranked[i][0] === q).length);
  }
  expect(r.macroF1).toBeCloseTo(f1sum / C, 12);
});

test('classes never predicted have precision and F1 0; absent classes do not count in macro-F1', () => {
  const r = evaluate(['a', 'b', 'c'], [0, 0, 1, 1], [[0], [0], [0], [1]]);
  expect(r.top1).toBe(0.75);
  expect(r.perClass.c).toEqual({ support: 0, accuracy: 0, precision: 0, f1: 0 });
  expect(Object.keys(r.perClass)).toEqual(['a', 'b', 'c']);
  const f1a = (2 * (2 / 3) * 1) / (2 / 3 + 1);
  const f1b = (2 * 1 * 0.5) / 1.5;
  expect(r.macroF1).toBeCloseTo((f1a + f1b) / 2, 12);
  expect(r.top5).toBe(0.75); // only one ranked class per sample here
});
