import { Tensor, backendInfo, dropoutApplySync, setThreads } from '../lib';
import { forEachIsa, poisoned } from './helpers/compare';
import { Rng } from './helpers/random';

const rng = new Rng(31);
const M64 = (1n << 64n) - 1n;

/** The documented mask, written again from the words of native/cpu/dropout.h: BigInt for the 64-bit finaliser. */
function mix64(z: bigint): bigint {
  z = (z ^ (z >> 30n)) & M64;
  z = (z * 0xbf58476d1ce4e5b9n) & M64;
  z = (z ^ (z >> 27n)) & M64;
  z = (z * 0x94d049bb133111ebn) & M64;
  return (z ^ (z >> 31n)) & M64;
}
function mix32(h: number): number {
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
function referenceFactors(n: number, p: number, seed: bigint): number[] {
  const h = mix64(seed ^ mix64(0x9e3779b97f4a7c15n)); // block 0: every index here is below 2^32
  const k1 = Number(h & 0xffffffffn);
  const k2 = Number(h >> 32n);
  const threshold = Math.trunc(Math.fround(p * 16777216));
  const kept = Math.fround(1 / Math.fround(1 - Math.fround(p)));
  return Array.from({ length: n }, (_, i) => (mix32((mix32((i + k1) >>> 0) ^ k2) >>> 0) >>> 8 < threshold ? 0 : kept));
}

describe('dropoutApply', () => {
  test('the mask is the documented function of (seed, index), on every ISA and any thread count', async () => {
    const n = 40_961; // more than one task's chunk, odd
    const x = rng.floats(n, 2);
    for (const [p, seed] of [
      [0.05, 7n],
      [0.5, (123n << 32n) | 9n],
    ] as const) {
      const f = referenceFactors(n, p, seed);
      const want = Array.from(x, (v, i) => Math.fround(v * f[i]));
      await forEachIsa((isa) => {
        const threads = backendInfo().threads;
        for (const t of [1, Math.max(2, threads)]) {
          setThreads(t);
          try {
            const y = dropoutApplySync(Tensor.from(x), { p, seed }).data;
            const bad = want.findIndex((w, i) => w !== y[i]);
            if (bad >= 0) throw new Error(`${isa}, ${t} threads, p ${p}: element ${bad} is ${y[bad]}, want ${want[bad]}`);
          } finally {
            setThreads(threads);
          }
        }
      });
      const dropped = f.filter((v) => v === 0).length / n;
      expect(Math.abs(dropped - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
    }
  });

  test('different seeds draw unrelated masks; the same seed the same', () => {
    const n = 20_000;
    const ones = new Float32Array(n).fill(1);
    const a = dropoutApplySync(Tensor.from(ones), { p: 0.5, seed: 1 }).data;
    const b = dropoutApplySync(Tensor.from(ones), { p: 0.5, seed: 2 }).data;
    const again = dropoutApplySync(Tensor.from(ones), { p: 0.5, seed: 1 }).data;
    expect(Array.from(again)).toEqual(Array.from(a));
    const agree = a.reduce((s, v, i) => s + (v === b[i] ? 1 : 0), 0) / n;
    expect(Math.abs(agree - 0.5)).toBeLessThan(0.03);
  });

  test('accumulates into out, works in place, passes NaN through, and p = 0 is the identity', () => {
    const n = 1037;
    const x = rng.floats(n, 1);
    const base = rng.floats(n, 1);
    const d = { p: 0.3, seed: 99 };
    const alone = dropoutApplySync(Tensor.from(x), d).data;
    const out = Tensor.from(base);
    dropoutApplySync(Tensor.from(x), d, { out, accumulate: true });
    // One rounding (a fused multiply-add) or two: within an ulp of the exact sum.
    out.data.forEach((v, i) => expect(Math.abs(v - (base[i] + alone[i]))).toBeLessThanOrEqual(1.2e-7 * (Math.abs(base[i]) + Math.abs(alone[i])) + 1e-30));
    const inPlace = Tensor.from(x);
    dropoutApplySync(inPlace, d, { out: inPlace });
    expect(Array.from(inPlace.data)).toEqual(Array.from(alone));
    const nan = new Float32Array(64).fill(NaN);
    expect(dropoutApplySync(Tensor.from(nan), { p: 0.5, seed: 3 }).data.every((v) => Number.isNaN(v))).toBe(true);
    expect(Array.from(dropoutApplySync(Tensor.from(x), { p: 0, seed: 5 }).data)).toEqual(Array.from(x));
  });

  test('refusals name the argument', () => {
    const x = Tensor.from(new Float32Array(6), [2, 3]);
    expect(() => dropoutApplySync(x, { p: 1, seed: 0 })).toThrow(/dropout.p must be in \[0, 1\)/);
    expect(() => dropoutApplySync(x, { p: 0.1, seed: -1 })).toThrow(/dropout.seed/);
    expect(() => dropoutApplySync(x, { p: 0.1, seed: 0 }, { accumulate: true })).toThrow(/accumulate needs an `out`/);
    expect(() => dropoutApplySync(x, { p: 0.1, seed: 0 }, { out: poisoned([3, 2]) })).toThrow(/out/);
    expect(() => dropoutApplySync(x.narrow(1, 0, 2), { p: 0.1, seed: 0 })).toThrow(/contiguous/);
  });
});
