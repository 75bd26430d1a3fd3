/** PyTorch baseline workers: one Python process per fair thread configuration. */
import { ChildProcessWithoutNullStreams, spawn } from 'child_process';
import * as path from 'path';
import * as readline from 'readline';

export const PYTHON = process.env.TINYEMO_BENCH_PYTHON ?? '/usr/bin/python3';

export interface TorchConfig {
  name: string;
  torchThreads: number;
  env: Record<string, string>;
}

/**
 * The fair configurations of ../shared/DESIGN.md: (a) torch N threads +
 * OpenBLAS N threads with passive OpenMP waiting, (b) torch 1 thread +
 * OpenBLAS N threads. Each runs twice: with OpenBLAS detecting the CPU
 * itself (the core settings some machines export are removed, see
 * baselineEnv), and with the core named after the instruction set
 * tinyemo's kernels use here (SkylakeX for AVX-512, Haswell for AVX2), for
 * an OpenBLAS too old to know the CPU. When TINYEMO_ISA forces an
 * instruction set, only the named core runs, so both sides use the same
 * one. The harness keeps the fastest.
 */
export function torchConfigs(threads: number, isa: string, forcedIsa: boolean): TorchConfig[] {
  const base = (torchThreads: number, extra: Record<string, string> = {}) => ({
    OMP_NUM_THREADS: String(torchThreads),
    OPENBLAS_NUM_THREADS: String(threads),
    OMP_WAIT_POLICY: 'PASSIVE',
    // OpenBLAS's idle threads spin for 2^28 cycles (about 0.1 s, longer when descheduled) after each call, and
    // on 2 cores they took them from tinyemo's next timed calls, past the harness's pause: 0.75 ms for a 0.08 ms
    // product. 2^20 cycles (under a millisecond) still keeps them awake between back-to-back timed calls.
    OPENBLAS_THREAD_TIMEOUT: '20',
    ...extra,
  });
  const core = namedCore(isa);
  const named: TorchConfig[] = [
    { name: `torch ${threads}t + OpenBLAS ${threads}t (${core})`, torchThreads: threads, env: base(threads, { OPENBLAS_CORETYPE: core }) },
    { name: `torch 1t + OpenBLAS ${threads}t (${core})`, torchThreads: 1, env: base(1, { OPENBLAS_CORETYPE: core }) },
  ];
  if (forcedIsa) return named;
  return [
    { name: `torch ${threads}t + OpenBLAS ${threads}t (auto)`, torchThreads: threads, env: base(threads) },
    { name: `torch 1t + OpenBLAS ${threads}t (auto)`, torchThreads: 1, env: base(1) },
    ...named,
  ];
}

/** The configurations for this process's backend (threads, kernels' instruction set, whether TINYEMO_ISA forced it). */
export function fairConfigs(info: { threads: number; isa: string }): TorchConfig[] {
  return torchConfigs(info.threads, info.isa, (process.env.TINYEMO_ISA ?? '') !== '');
}

/** The OpenBLAS core whose kernels use the instruction set tinyemo's kernels run here. */
export function namedCore(isa: string): string {
  return isa.startsWith('avx512') ? 'SkylakeX' : 'Haswell';
}

type Json = Record<string, unknown>;

export class TorchWorker {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterableIterator<string>;
  private stderr = '';

  constructor(readonly config: TorchConfig) {
    this.proc = spawn(PYTHON, [path.join(__dirname, '..', '..', 'bench', 'torch_worker.py'), String(config.torchThreads)], {
      env: baselineEnv(config),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.lines = readline.createInterface({ input: this.proc.stdout })[Symbol.asyncIterator]();
  }

  async request(msg: Json): Promise<Json> {
    this.proc.stdin.write(`${JSON.stringify(msg)}\n`);
    const next = await this.lines.next();
    if (next.done) throw new Error(`the PyTorch worker (${this.config.name}) exited: ${this.stderr.trim().slice(-2000)}`);
    const out = JSON.parse(next.value) as Json;
    if (typeof out.error === 'string') throw new Error(out.error);
    return out;
  }

  async close(): Promise<void> {
    try {
      this.proc.stdin.write(`${JSON.stringify({ op: 'exit' })}\n`);
      this.proc.stdin.end();
    } catch {
      /* already gone */
    }
    await new Promise<void>((resolve) => {
      if (this.proc.exitCode !== null) resolve();
      else this.proc.once('exit', () => resolve());
    });
  }
}

/**
 * glibc hands blocks over its mmap threshold back to the kernel when they are freed, so a call that allocates
 * its activations or gradients afresh faults every page of them in again. On a 2-core Zen 5 VM that took
 * PyTorch's projector training step (zero_grad(set_to_none=True) reallocates ~10 MB of gradients) from 7.5 ms to
 * a median of 30–48 ms, single-threaded too; tinyemo's step was about 5% slower without it. Keeping freed
 * memory in the heap is the fast setting for both (PyTorch's CPU tuning advice swaps in jemalloc or tcmalloc
 * for the same reason): the baseline's workers get it here, and bench/run.ts restarts itself with it.
 */
export const MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295';

/** `env` with MALLOC_TUNABLES added to any glibc tunables it already sets (`env` itself when it has them). */
export function withMallocTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const have = env.GLIBC_TUNABLES;
  if (have?.includes(MALLOC_TUNABLES)) return env;
  return { ...env, GLIBC_TUNABLES: have ? `${have}:${MALLOC_TUNABLES}` : MALLOC_TUNABLES };
}

/**
 * The environment of a baseline run: this process's, without the OpenBLAS core settings some machines set
 * (inherited, they can halve the baseline), with glibc keeping freed memory (MALLOC_TUNABLES), then the
 * configuration's own.
 */
export function baselineEnv(c: TorchConfig): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return { ...withMallocTunables(env), ...c.env };
}
