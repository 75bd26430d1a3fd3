/** The harness's arithmetic: summaries of timings, ratios, and the report. */

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

/**
 * Rounds of timings of one side: the median of its best round (min and max over all). A VM's neighbours can
 * slow a whole round of small calls several times over; both sides are summarised alike, so the ratio stays fair.
 */
export function summarizeRounds(rounds: ReadonlyArray<readonly number[]>): Summary {
  const each = rounds.filter((r) => r.length > 0).map((r) => summarize(r));
  if (each.length === 0) throw new Error('no timings');
  const best = each.reduce((a, b) => (b.median < a.median ? b : a));
  return {
    median: best.median,
    min: Math.min(...each.map((s) => s.min)),
    max: Math.max(...each.map((s) => s.max)),
    n: each.reduce((n, s) => n + s.n, 0),
  };
}

export function summarize(times: readonly number[]): Summary {
  if (times.length === 0) throw new Error('no timings');
  const s = [...times].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

export interface Machine {
  date: string;
  cpu: string;
  cores: number;
  threads: number;
  isa: string;
  /** TINYEMO_ISA when it forced the kernels' instruction set, else null. */
  isa_forced: string | null;
  /** Measured vector-FMA throughput with `threads` threads (the kernels' instruction set). */
  peak_gflops: number;
  /** Measured parallel read bandwidth, GB/s. */
  read_gbs: number;
  node: string;
  torch: string;
  blas_core: string;
}

export interface CaseResult {
  name: string;
  params: Record<string, number | boolean | string>;
  tinyemo_ms: number;
  tinyemo_min_ms: number;
  tinyemo_max_ms: number;
  torch_ms: number;
  torch_min_ms: number;
  torch_max_ms: number;
  /** Which fair PyTorch configuration was fastest (and is the baseline). */
  torch_config: string;
  /** torch_ms / tinyemo_ms: above 1 means tinyemo is faster. */
  ratio: number;
  gflops: number | null;
  peak_fraction: number | null;
  gbs: number | null;
  bandwidth_fraction: number | null;
}

export interface Work {
  flops?: number;
  bytes?: number;
}

export function caseResult(
  name: string,
  params: CaseResult['params'],
  tiny: Summary,
  torch: Summary,
  torchConfig: string,
  work: Work,
  machine: Pick<Machine, 'peak_gflops' | 'read_gbs'>,
): CaseResult {
  const gflops = work.flops !== undefined ? work.flops / (tiny.median * 1e6) : null;
  const gbs = work.bytes !== undefined ? work.bytes / (tiny.median * 1e6) : null;
  return {
    name,
    params,
    tinyemo_ms: tiny.median,
    tinyemo_min_ms: tiny.min,
    tinyemo_max_ms: tiny.max,
    torch_ms: torch.median,
    torch_min_ms: torch.min,
    torch_max_ms: torch.max,
    torch_config: torchConfig,
    ratio: torch.median / tiny.median,
    gflops,
    peak_fraction: gflops !== null && machine.peak_gflops > 0 ? gflops / machine.peak_gflops : null,
    gbs,
    bandwidth_fraction: gbs !== null && machine.read_gbs > 0 ? gbs / machine.read_gbs : null,
  };
}

function fmtMs(ms: number): string {
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

/** A fixed-width table for a terminal (and the README). */
export function formatTable(results: readonly CaseResult[], machine: Machine): string {
  const head = [
    `${machine.date} · ${machine.cpu} · ${machine.threads} threads · kernels ${machine.isa}`,
    `peak ${machine.peak_gflops.toFixed(0)} GFLOP/s (measured FMA), read ${machine.read_gbs.toFixed(1)} GB/s · ` +
      `Node ${machine.node} · PyTorch ${machine.torch} (BLAS core ${machine.blas_core})`,
    '',
  ];
  const rows = results.map((r) => [
    r.name,
    fmtMs(r.tinyemo_ms),
    fmtMs(r.torch_ms),
    `${r.ratio.toFixed(2)}x`,
    r.gflops !== null ? `${r.gflops.toFixed(1)} GFLOP/s (${(100 * (r.peak_fraction ?? 0)).toFixed(0)}%)` : r.gbs !== null ? `${r.gbs.toFixed(1)} GB/s` : '',
    r.torch_config,
  ]);
  const header = ['case', 'tinyemo ms', 'torch ms', 'torch/tinyemo', 'tinyemo rate (of peak)', 'baseline'];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [...head, line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
