/** `tinyemo doctor`: what this installation runs on, and a kernel self-check. */
import { Command } from 'commander';
import * as os from 'os';

import { backendInfo, BackendInfo, CpuCaches } from '../backend';
import { TinyEmoError } from '../errors';
import { resolveModel } from '../hub/client';
import { PrecisionCheck, checkBf16Embeddings } from '../models/vision/precision_check';
import { checkPrecision, gemmSync } from '../ops/gemm';
import { Device, Tensor } from '../tensor';
import { FlagTable, addFlags, printResult, readFlags } from './flags';

export interface DoctorReport {
  tinyemo: string;
  node: string;
  platform: string;
  cpu: { model: string; cores: number };
  backend: BackendInfo;
  selfCheck: { ok: boolean; detail: string };
  /** The same product on the GPU, where a CUDA device answers. */
  gpuCheck?: { ok: boolean; detail: string };
  /** Whether `--precision bf16` runs here (and why not), and with --vision what it does to that tower's embeddings. */
  bf16: { available: boolean; reason?: string; embeddings?: PrecisionCheck };
}

/** A 3x3 product with a known answer, through the loaded kernels of one device. */
function selfCheck(device: Device = 'cpu'): { ok: boolean; detail: string } {
  try {
    const a = Tensor.from([1, 2, 3, 4, 5, 6, 7, 8, 9], [3, 3], device);
    const b = Tensor.from([1, 0, 0, 0, 2, 0, 0, 0, 3], [3, 3], device);
    const bias = Tensor.from([0.5, 0.5, 0.5], [3], device);
    const c = gemmSync(a, b, { bias });
    const want = [1.5, 4.5, 9.5, 4.5, 10.5, 18.5, 7.5, 16.5, 27.5];
    const got = Array.from(c.toArray());
    [a, b, bias, c].forEach((t) => t.dispose());
    const ok = got.every((v, i) => v === want[i]);
    return { ok, detail: ok ? 'gemm 3x3 matches' : `gemm 3x3 gave [${got.join(', ')}]` };
  } catch (e) {
    return { ok: false, detail: (e as Error).message };
  }
}

function bf16Available(): DoctorReport['bf16'] {
  try {
    checkPrecision('bf16', 'cpu');
    return { available: true };
  } catch (e) {
    if (!(e instanceof TinyEmoError)) throw e;
    return { available: false, reason: e.message };
  }
}

/** The report; with `vision` (a tower folder), bf16's effect on its embeddings where bf16 is available. */
export async function doctor(opts: { vision?: string } = {}): Promise<DoctorReport> {
  const cpus = os.cpus();
  const bf16 = bf16Available();
  if (opts.vision !== undefined && bf16.available) bf16.embeddings = await checkBf16Embeddings(opts.vision);
  return {
    tinyemo: backendInfo().version,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: { model: cpus[0]?.model ?? 'unknown', cores: cpus.length },
    backend: backendInfo(),
    selfCheck: selfCheck(),
    ...(backendInfo().cudaDevices > 0 ? { gpuCheck: selfCheck('cuda') } : {}),
    bf16,
  };
}

function formatBf16(b: DoctorReport['bf16']): string {
  if (!b.available) return `bf16      unavailable: ${b.reason ?? ''}`;
  const e = b.embeddings;
  if (!e) return 'bf16      available (--precision bf16); `tinyemo doctor --vision DIR` measures its embedding error';
  return (
    `bf16      available: on ${e.images} images, embedding cosine to f32 min ${e.cosineMin.toFixed(5)} mean ${e.cosineMean.toFixed(5)}, ` +
    `relative error ${e.relError.toExponential(2)}; ${e.bf16MsPerImage.toFixed(0)} ms per image against ${e.f32MsPerImage.toFixed(0)} in f32`
  );
}

function formatCaches(c: CpuCaches): string {
  const sizes = `L1d ${c.l1dBytes / 1024} KB, L2 ${c.l2Bytes / 1024} KB per core`;
  return c.reported ? `${sizes} (the GEMMs' cache blocks are sized from these)` : `not reported by the OS: ${sizes} assumed`;
}

export function formatDoctor(r: DoctorReport): string {
  const b = r.backend;
  return [
    `tinyemo ${r.tinyemo} on Node ${r.node} (${r.platform}, N-API ${b.napiVersion})`,
    `addon     ${b.addonPath}`,
    `build     ${b.build}`,
    `device    ${b.device}${b.cudaDevices ? ` (${b.cudaDeviceNames.join(', ')}; f32 GEMMs ${b.cudaTf32 ? 'TF32' : 'exact f32'})` : ''}`,
    `cpu       ${r.cpu.model}, ${r.cpu.cores} cores`,
    `features  ${b.cpuFeatures.join(' ') || '(none detected)'}`,
    `caches    ${formatCaches(b.cpuCaches)}`,
    `kernels   ${b.isa}`,
    `threads   ${b.threads}${process.env.TINYEMO_THREADS ? ' (TINYEMO_THREADS)' : ''}`,
    `check     ${r.selfCheck.ok ? 'ok' : 'FAILED'}: ${r.selfCheck.detail}`,
    ...(r.gpuCheck ? [`gpu check ${r.gpuCheck.ok ? 'ok' : 'FAILED'}: ${r.gpuCheck.detail}`] : []),
    formatBf16(r.bf16),
  ].join('\n');
}

const FLAGS = {
  vision: { arg: '<dir>', help: 'a vision tower (folder or hub id in the cache): measure what --precision bf16 does to its embeddings' },
  json: { kind: 'boolean', help: 'print one JSON document' },
} as const satisfies FlagTable;

/** `tinyemo doctor`; `failed` is called when a self-check fails (the exit status becomes 1). */
export function registerDoctor(program: Command, failed: () => void): void {
  const cmd = program.command('doctor').description('report the native build, CPU features, threads and device, and run a kernel self-check');
  addFlags(cmd, FLAGS).action(async (raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    const report = await doctor({ vision: f.vision === undefined ? undefined : resolveModel(f.vision) });
    printResult(f.json, report, formatDoctor);
    if (!report.selfCheck.ok || report.gpuCheck?.ok === false) failed();
  });
}
