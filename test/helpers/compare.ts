/** Comparing kernel outputs with float64 references. */
import { Tensor, setCpuIsa, backendInfo } from '../../lib';
import type { CpuIsa } from '../../lib';
import type { Rng } from './random';

/** max |got - want| / max |want|: error relative to the output's scale. */
export function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} vs ${want.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < got.length; ++i) {
    const d = Math.abs(got[i] - want[i]);
    if (Number.isNaN(got[i]) !== Number.isNaN(want[i])) return Infinity;
    if (!Number.isNaN(d)) num = Math.max(num, d);
    den = Math.max(den, Math.abs(want[i]));
  }
  return den === 0 ? num : num / den;
}

/** Largest elementwise |got - want| / (|want| + floor). */
export function maxElementError(got: ArrayLike<number>, want: ArrayLike<number>, floor: number): number {
  let worst = 0;
  for (let i = 0; i < got.length; ++i) {
    if (Number.isNaN(got[i]) || Number.isNaN(want[i])) {
      if (Number.isNaN(got[i]) !== Number.isNaN(want[i])) return Infinity;
      continue;
    }
    worst = Math.max(worst, Math.abs(got[i] - want[i]) / (Math.abs(want[i]) + floor));
  }
  return worst;
}

/** An output tensor filled with NaN, so an element the kernel skips shows up. */
export function poisoned(shape: number[]): Tensor<'f32'> {
  const t = Tensor.empty(shape, 'f32');
  t.data.fill(NaN);
  return t;
}

/** The CPU kernel sets this machine can run. */
export function isas(): CpuIsa[] {
  const f = backendInfo().cpuFeatures;
  const out: CpuIsa[] = [];
  if (['avx512f', 'avx512dq', 'avx512bw', 'avx512vl', 'avx2', 'fma', 'f16c'].every((x) => f.includes(x))) out.push('avx512');
  if (['avx2', 'fma', 'f16c'].every((x) => f.includes(x))) out.push('avx2');
  out.push('generic');
  return out;
}

/** Runs body once per instruction set, restoring the default after. */
export async function forEachIsa(body: (isa: CpuIsa) => void | Promise<void>): Promise<void> {
  const initial = backendInfo().isa;
  try {
    for (const isa of isas()) {
      setCpuIsa(isa);
      await body(isa);
    }
  } finally {
    setCpuIsa(initial);
  }
}

/** IEEE half bits -> number, written from the format's definition. */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** bfloat16 bits -> number: the top half of an f32. */
export function bf16ToNumber(h: number): number {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setUint32(0, h << 16);
  return buf.getFloat32(0);
}

/** A random [rows, cols] f32 matrix from `rng` (normal values times `scale`): the tensor and its values. */
export function randomMatrix(rng: Rng, rows: number, cols: number, scale = 1): { t: Tensor<'f32'>; v: Float32Array } {
  const v = rng.floats(rows * cols, scale);
  return { t: Tensor.from(v, [rows, cols]), v };
}

/** Each value as a bf16 product sees it: rounded to the nearest bf16, ties to even (bf16 is the top 16 bits of an f32). */
export function toBf16(x: Float32Array): Float32Array {
  const f = Float32Array.from(x);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < u.length; ++i) u[i] = (((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16) << 16) >>> 0;
  return f;
}
