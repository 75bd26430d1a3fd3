/**
 * The native thread pool under the timings that decide who runs a task: calls after idle gaps (workers asleep,
 * their share taken back by the caller when they wake too late), calls from several libuv threads at once (they
 * take turns), and more workers than cores. Every result must be one thread's, bit for bit.
 */
import { Tensor, backendInfo, gemm, gemmSync, setThreads } from '../lib';
import { randomMatrix } from './helpers/compare';
import { Rng } from './helpers/random';

const rng = new Rng(20261204);
const bits = (t: Tensor) => Buffer.from(t.toArray().buffer);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const idle = (ms: number) => Atomics.wait(sleeper, 0, 0, ms);

// A one-row product (a few tasks), a small and a larger matrix product (many tasks).
const shapes: Array<[number, number, number]> = [
  [1, 1283, 771],
  [5, 97, 333],
  [67, 301, 129],
];

test('after idle gaps, from several threads at once, with more workers than cores: one thread’s bits', async () => {
  const threads = backendInfo().threads;
  const cases = shapes.map(([m, n, k]) => ({ a: randomMatrix(rng, m, k).t, w: randomMatrix(rng, n, k).t }));
  try {
    setThreads(1);
    const want = cases.map((c) => bits(gemmSync(c.a, c.w)));
    setThreads(5);
    for (let round = 0; round < 40; ++round) {
      const i = round % cases.length;
      // 0 ms: the workers still spin; 1 and 3 ms: they have gone to sleep and wake as (or after) the caller ends.
      idle([0, 1, 3][round % 3]);
      expect(bits(gemmSync(cases[i].a, cases[i].w)).equals(want[i])).toBe(true);
      const together = await Promise.all(cases.map((c) => gemm(c.a, c.w)));
      together.forEach((t, j) => expect(bits(t).equals(want[j])).toBe(true));
    }
  } finally {
    setThreads(threads);
  }
});
