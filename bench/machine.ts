/**
 * What a benchmark result must say about where it ran, and the check that
 * the PyTorch baseline is worth comparing with: the CPU (model, family,
 * the instruction-set flags that decide which kernels run), the BLAS each
 * baseline configuration loaded, its OpenBLAS core, and the GFLOP/s of a
 * 1024³ sgemm against this machine's measured FMA peak.
 */
import * as fs from 'fs';
import * as os from 'os';

/** The CPU flags that choose kernels (ours and OpenBLAS's). */
const ISA_FLAGS = ['sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_bf16', 'amx_tile'];

export interface CpuIdentity {
  model: string;
  vendor: string;
  family: number | null;
  model_number: number | null;
  flags: string[];
}

/** From /proc/cpuinfo where there is one (Linux), else what Node knows. */
export function cpuIdentity(): CpuIdentity {
  const model = os.cpus()[0]?.model ?? 'unknown';
  let text = '';
  try {
    text = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n\n')[0];
  } catch {
    return { model, vendor: 'unknown', family: null, model_number: null, flags: [] };
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const num = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : null);
  const flags = new Set((field('flags') ?? '').split(/\s+/));
  return { model, vendor: field('vendor_id') ?? 'unknown', family: num(field('cpu family')), model_number: num(field('model')), flags: ISA_FLAGS.filter((f) => flags.has(f)) };
}

/** One baseline configuration as its worker reported itself. */
export interface BaselineInfo {
  config: string;
  /** PyTorch's version. */
  torch: string;
  blas_core: string;
  blas_libs: string[];
  sgemm_gflops: number;
}

export interface BaselineVerdict {
  ok: boolean;
  /** Why not, and what to do (empty when ok). */
  problems: string[];
}

/** A baseline below this fraction of the measured FMA peak on 1024³ is broken, not slow. */
export const MIN_PEAK_FRACTION = 0.3;

/**
 * Whether ratios against these baselines mean anything: some configuration must run an optimised BLAS
 * (not the reference one) and reach a sane fraction of the peak.
 */
export function checkBaseline(baselines: readonly BaselineInfo[], peakGflops: number): BaselineVerdict {
  const problems: string[] = [];
  const reference = baselines.filter((b) => b.blas_libs.length > 0 && !b.blas_libs.some((l) => /openblas|mkl|blis/i.test(l)));
  if (reference.length === baselines.length && baselines.length > 0) {
    problems.push(
      `PyTorch runs the reference BLAS (${reference[0].blas_libs.join(', ')}), tens of times slower than an optimised one: ` +
        'install it with `sudo apt install libopenblas0-pthread` (Debian picks it for libblas.so.3)',
    );
  }
  const best = Math.max(0, ...baselines.map((b) => b.sgemm_gflops));
  if (peakGflops > 0 && best < MIN_PEAK_FRACTION * peakGflops) {
    problems.push(
      `PyTorch's best 1024³ sgemm reaches ${best.toFixed(0)} GFLOP/s, ${((100 * best) / peakGflops).toFixed(0)}% of the measured ` +
        `${peakGflops.toFixed(0)} GFLOP/s FMA peak (under ${100 * MIN_PEAK_FRACTION}%): check which BLAS torch loads and ` +
        'that nothing in the environment (OPENBLAS_*, OMP_*) cripples it',
    );
  }
  return { ok: problems.length === 0, problems };
}
