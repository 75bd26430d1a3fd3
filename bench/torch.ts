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
 * OpenBLAS N threads. When OpenBLAS does not recognise the CPU and falls
 * back to a generic core, the same two again with the core named, so the
 * baseline is never a crippled one.
 */
export function torchConfigs(threads: number, blasCore: string, avx512: boolean): TorchConfig[] {
  const base = (torchThreads: number, extra: Record<string, string> = {}) => ({
    OMP_NUM_THREADS: String(torchThreads),
    OPENBLAS_NUM_THREADS: String(threads),
    OMP_WAIT_POLICY: 'PASSIVE',
    ...extra,
  });
  const out: TorchConfig[] = [
    { name: `torch ${threads}t + OpenBLAS ${threads}t`, torchThreads: threads, env: base(threads) },
    { name: `torch 1t + OpenBLAS ${threads}t`, torchThreads: 1, env: base(1) },
  ];
  if (isGenericCore(blasCore)) {
    const core = avx512 ? 'SkylakeX' : 'Haswell';
    out.push(
      { name: `torch ${threads}t + OpenBLAS ${threads}t (${core})`, torchThreads: threads, env: base(threads, { OPENBLAS_CORETYPE: core }) },
      { name: `torch 1t + OpenBLAS ${threads}t (${core})`, torchThreads: 1, env: base(1, { OPENBLAS_CORETYPE: core }) },
    );
  }
  return out;
}

/** OpenBLAS's fallbacks for CPUs it does not know. */
export function isGenericCore(core: string): boolean {
  return ['prescott', 'core2', 'katmai', 'coppermine', 'northwood', 'banias', 'unknown', 'generic'].includes(core.toLowerCase());
}

type Json = Record<string, unknown>;

export class TorchWorker {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterableIterator<string>;
  private stderr = '';

  constructor(readonly config: TorchConfig) {
    this.proc = spawn(PYTHON, [path.join(__dirname, '..', '..', 'bench', 'torch_worker.py'), String(config.torchThreads)], {
      env: { ...process.env, ...config.env },
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

/** The core OpenBLAS picked (asked of the benchmark worker). */
export async function blasCore(threads: number): Promise<string> {
  const w = new TorchWorker(torchConfigs(threads, 'known', false)[0]);
  try {
    return ((await w.request({ op: 'info' })) as { blas_core: string }).blas_core;
  } finally {
    await w.close();
  }
}

/**
 * The environment of a baseline run: this process's, without the OpenBLAS core settings some machines set
 * (inherited, they can halve the baseline), then the configuration's own.
 */
export function baselineEnv(c: TorchConfig): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return { ...env, ...c.env };
}
