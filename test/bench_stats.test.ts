/** The benchmark harness's arithmetic, on made-up timings (no timing is asserted). */
import { caseResult, formatTable, summarize, summarizeRounds } from '../bench/stats';
import { baselineEnv, torchConfigs, withMallocTunables } from '../bench/torch';
import { checkBaseline, cpuIdentity } from '../bench/machine';
import { pairedDiff, parseCounts, reweighted } from '../bench/recipe_stats';

test('medians, minima and maxima', () => {
  expect(summarize([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5, n: 3 });
  expect(summarize([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, n: 4 });
  expect(() => summarize([])).toThrow();
});

test('rounds: the median of the best round, min and max over all, every timing counted', () => {
  expect(
    summarizeRounds([
      [9, 8, 10],
      [2, 3, 1, 4],
    ]),
  ).toEqual({ median: 2.5, min: 1, max: 10, n: 7 });
  expect(summarizeRounds([[5], [4]])).toEqual({ median: 4, min: 4, max: 5, n: 2 });
  expect(() => summarizeRounds([[], []])).toThrow();
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
    isa_forced: null,
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

test('baseline configurations: both fair ones, OpenBLAS detecting the core and with the core of our kernels named', () => {
  const c = torchConfigs(2, 'avx512', false);
  expect(c.map((x) => x.name)).toEqual([
    'torch 2t + OpenBLAS 2t (auto)',
    'torch 1t + OpenBLAS 2t (auto)',
    'torch 2t + OpenBLAS 2t (SkylakeX)',
    'torch 1t + OpenBLAS 2t (SkylakeX)',
  ]);
  expect(c[0].env.OPENBLAS_CORETYPE).toBeUndefined();
  expect(c[3].env.OPENBLAS_CORETYPE).toBe('SkylakeX');
  expect(c.every((x) => x.env.OMP_WAIT_POLICY === 'PASSIVE' && x.env.OPENBLAS_NUM_THREADS === '2')).toBe(true);
  // TINYEMO_ISA=avx2 on any machine: only OpenBLAS's AVX2 core, so both sides run the same instructions.
  expect(torchConfigs(2, 'avx2', true).map((x) => x.env.OPENBLAS_CORETYPE)).toEqual(['Haswell', 'Haswell']);
});

test("the baseline's glibc keeps freed memory, added to any tunables the environment already sets", () => {
  const saved = process.env.GLIBC_TUNABLES;
  try {
    const [auto] = torchConfigs(2, 'avx512', false);
    delete process.env.GLIBC_TUNABLES;
    expect(baselineEnv(auto).GLIBC_TUNABLES).toBe('glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295');
    process.env.GLIBC_TUNABLES = 'glibc.cpu.hwcaps=-AVX512F';
    expect(baselineEnv(auto).GLIBC_TUNABLES).toBe('glibc.cpu.hwcaps=-AVX512F:glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295');
    // The harness restarts itself only when its own environment lacks them: once is enough.
    const tuned = withMallocTunables({ GLIBC_TUNABLES: 'glibc.cpu.hwcaps=-AVX512F' });
    expect(withMallocTunables(tuned)).toBe(tuned);
    expect(tuned.GLIBC_TUNABLES).toBe(baselineEnv(auto).GLIBC_TUNABLES);
  } finally {
    if (saved === undefined) delete process.env.GLIBC_TUNABLES;
    else process.env.GLIBC_TUNABLES = saved;
  }
});

test('the baseline never inherits the OpenBLAS core settings some machines export', () => {
  const saved = { core: process.env.OPENBLAS_CORETYPE, l2: process.env.OPENBLAS_L2_SIZE };
  process.env.OPENBLAS_CORETYPE = 'Haswell';
  process.env.OPENBLAS_L2_SIZE = '512';
  try {
    const [auto, , named] = torchConfigs(4, 'avx512', false);
    expect(baselineEnv(auto).OPENBLAS_CORETYPE).toBeUndefined();
    expect(baselineEnv(auto).OPENBLAS_L2_SIZE).toBeUndefined();
    expect(baselineEnv(named).OPENBLAS_CORETYPE).toBe('SkylakeX');
    expect(baselineEnv(named).OPENBLAS_NUM_THREADS).toBe('4');
  } finally {
    for (const [k, v] of [
      ['OPENBLAS_CORETYPE', saved.core],
      ['OPENBLAS_L2_SIZE', saved.l2],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('a reference BLAS or an sgemm far under the peak is refused, with the fix; a sane OpenBLAS passes', () => {
  const openblas = ['/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so'];
  const reference = ['/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0'];
  const b = (libs: string[], gflops: number) => ({ config: 'c', torch: '1.13', blas_core: 'Haswell', blas_libs: libs, sgemm_gflops: gflops });
  expect(checkBaseline([b(openblas, 100), b(openblas, 190)], 290)).toEqual({ ok: true, problems: [] });
  const ref = checkBaseline([b(reference, 6)], 290);
  expect(ref.ok).toBe(false);
  expect(ref.problems[0]).toMatch(/reference BLAS .*apt install libopenblas0-pthread/);
  expect(ref.problems[1]).toMatch(/6 GFLOP\/s, 2% of the measured 290/);
  const crippled = checkBaseline([b(openblas, 50)], 290);
  expect(crippled.problems).toHaveLength(1);
  expect(crippled.problems[0]).toMatch(/OPENBLAS_/);
});

test('the CPU is identified with the flags that choose kernels', () => {
  const id = cpuIdentity();
  expect(typeof id.model).toBe('string');
  if (process.platform === 'linux') {
    expect(id.family).not.toBeNull();
    expect(id.flags.every((f) => /^[a-z0-9_]+$/.test(f))).toBe(true);
    if (process.arch === 'x64') expect(id.flags).toContain('sse4_2');
  }
});

test('the ratio chart draws one bar per case, on the right side of 1x when tinyemo is faster', async () => {
  const { ratioChart } = await import('../bench/chart');
  const machine = { date: 'd', cpu: 'c', cores: 2, threads: 2, isa: 'avx2', isa_forced: null, peak_gflops: 1, read_gbs: 1, node: 'v', torch: 't', blas_core: 'b' };
  const mk = (name: string, ratio: number) => caseResult(name, {}, summarize([1]), summarize([ratio]), 'cfg', {}, machine);
  const svg = ratioChart({ machine, cases: [mk('fast', 4), mk('slow', 0.5)] });
  expect(svg.match(/<rect /g)).toHaveLength(3); // background + 2 bars
  expect(svg).toContain('4.00x');
  expect(svg).toContain('0.50x');
  expect(svg).toContain('#2b7bb9'); // faster: blue
  expect(svg).toContain('#d9822b'); // slower: orange
});

test('bench:recipe: a test set of other class counts weights the per-class recalls; typos are refused', () => {
  const perClass = { a: { accuracy: 0.5 }, b: { accuracy: 1 }, c: { accuracy: 0.8 } };
  // Counted directly: 2 of 4, 1 of 1, 4 of 5 right.
  expect(reweighted({ perClass } as never, { a: 4, b: 1, c: 5 })).toBeCloseTo((2 + 1 + 4) / 10, 12);
  expect(reweighted({ perClass } as never, { a: 1, b: 1, c: 1 })).toBeCloseTo(2.3 / 3, 12);
  expect(() => reweighted({ perClass } as never, { a: 1, b: 1 })).toThrow(/no count for class "c"/);
  expect(() => reweighted({ perClass } as never, { a: 1, b: 1, c: 1, d: 2 })).toThrow(/names d, which the data has no class of/);
  expect(parseCounts('anger=107,joy=88')).toEqual({ anger: 107, joy: 88 });
  expect(() => parseCounts('anger=107,joy')).toThrow(/"joy" is not NAME=COUNT/);
  expect(() => parseCounts('anger=-1')).toThrow(/positive/);
  expect(() => parseCounts('anger=1=2')).toThrow(/not NAME=COUNT/);
});

test('bench:recipe: paired differences and their standard error', () => {
  const d = pairedDiff([0.8, 0.7, 0.9, 0.75], [0.7, 0.7, 0.8, 0.7]);
  // Differences 0.1, 0, 0.1, 0.05: mean 0.0625, sample sd 0.04787, se = sd / 2.
  expect(d.mean).toBeCloseTo(0.0625, 12);
  expect(d.se).toBeCloseTo(Math.sqrt((0.0375 ** 2 * 2 + 0.0625 ** 2 + 0.0125 ** 2) / 3) / 2, 12);
  expect(() => pairedDiff([1, 2], [1])).toThrow(/2 and 1/);
});
