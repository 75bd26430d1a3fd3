/** The benchmark harness's arithmetic, on made-up timings (no timing is asserted). */
import { caseResult, formatTable, summarize } from '../bench/stats';
import { isGenericCore, torchConfigs } from '../bench/torch';

test('medians, minima and maxima', () => {
  expect(summarize([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5, n: 3 });
  expect(summarize([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, n: 4 });
  expect(() => summarize([])).toThrow();
});

test('ratio, rate and fraction of the machine', () => {
  const r = caseResult('gemm_x', { M: 10 }, summarize([2, 2, 4]), summarize([6, 8, 10]), 'torch 2t', { flops: 4e9, bytes: 1e8 }, { peak_gflops: 4000, read_gbs: 100 });
  expect(r.ratio).toBe(4); // 8 ms / 2 ms
  expect(r.gflops).toBe(2000); // 4e9 flop in 2 ms
  expect(r.peak_fraction).toBe(0.5);
  expect(r.gbs).toBe(50);
  expect(r.bandwidth_fraction).toBe(0.5);
  expect(r.tinyemo_min_ms).toBe(2);
  expect(r.torch_max_ms).toBe(10);
  const none = caseResult('n', {}, summarize([1]), summarize([1]), 'c', {}, { peak_gflops: 1, read_gbs: 1 });
  expect(none.gflops).toBeNull();
  expect(none.peak_fraction).toBeNull();
});

test('the JSON fields and the table', () => {
  const r = caseResult('attention_x', { B: 1 }, summarize([1.5]), summarize([3]), 'torch 1t', { flops: 3e6 }, { peak_gflops: 100, read_gbs: 10 });
  expect(Object.keys(r)).toEqual(expect.arrayContaining(['name', 'tinyemo_ms', 'torch_ms', 'torch_config', 'ratio', 'gflops', 'peak_fraction']));
  const machine = {
    date: '2026-01-01',
    cpu: 'cpu',
    cores: 2,
    threads: 2,
    isa: 'avx2',
    peak_gflops: 100,
    read_gbs: 10,
    node: 'v20',
    torch: '1.13',
    blas_core: 'Haswell',
  };
  const table = formatTable([r], machine);
  expect(table).toContain('attention_x');
  expect(table).toContain('2.00x');
  expect(table).toContain('2.0 GFLOP/s (2%)');
});

test('baseline configurations: both fair ones, plus a named core when OpenBLAS falls back', () => {
  expect(torchConfigs(2, 'Haswell', false).map((c) => c.name)).toEqual(['torch 2t + OpenBLAS 2t', 'torch 1t + OpenBLAS 2t']);
  const c = torchConfigs(2, 'Prescott', true);
  expect(c).toHaveLength(4);
  expect(c[2].env.OPENBLAS_CORETYPE).toBe('SkylakeX');
  expect(c.every((x) => x.env.OMP_WAIT_POLICY === 'PASSIVE' && x.env.OPENBLAS_NUM_THREADS === '2')).toBe(true);
  expect(isGenericCore('Prescott')).toBe(true);
  expect(isGenericCore('Zen')).toBe(false);
});

test('the ratio chart draws one bar per case, on the right side of 1x when tinyemo is faster', async () => {
  const { ratioChart } = await import('../bench/chart');
  const machine = { date: 'd', cpu: 'c', cores: 2, threads: 2, isa: 'avx2', peak_gflops: 1, read_gbs: 1, node: 'v', torch: 't', blas_core: 'b' };
  const mk = (name: string, ratio: number) => caseResult(name, {}, summarize([1]), summarize([ratio]), 'cfg', {}, machine);
  const svg = ratioChart({ machine, cases: [mk('fast', 4), mk('slow', 0.5)] });
  expect(svg.match(/<rect /g)).toHaveLength(3); // background + 2 bars
  expect(svg).toContain('4.00x');
  expect(svg).toContain('0.50x');
  expect(svg).toContain('#2b7bb9'); // faster: blue
  expect(svg).toContain('#d9822b'); // slower: orange
});
