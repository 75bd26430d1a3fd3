/** Matrix products: C = act(alpha * A.B^T + bias + beta * C), B in nn.Linear's [N, K] layout. */
import { TinyEmoError, invalid } from '../errors';
import { binding } from '../native';
import { Device, Tensor } from '../tensor';
import { Activation, activationCode } from './activation';
import { expectDType, expectNdim, expectShape, expectTensor, finiteNumber, output } from './check';
import { OpBatch, Planned, defineOp } from './run';

export interface GemmOptions {
  /** [N] added to every row. */
  bias?: Tensor<'f32'>;
  /** A is given as [K, M]. */
  aTrans?: boolean;
  /** B is given as [K, N] instead of [N, K]. */
  bTrans?: boolean;
  alpha?: number;
  /** Scales `out`'s previous contents into the result (needs `out`). */
  beta?: number;
  activation?: Activation;
  /** Where to write [M, N] (allocated when absent). */
  out?: Tensor<'f32'>;
}

/**
 * How a packed weight's products are computed: 'f32', or 'bf16' (the weight and A rounded to bf16, every
 * product summed in f32: vdpbf16ps where the CPU has AVX512_BF16, about twice the f32 speed; a slow emulation
 * elsewhere). bf16 keeps 8 significant bits: for a tower's embedding, `tinyemo doctor` measures what it costs.
 */
export type MatmulPrecision = 'f32' | 'bf16';

/**
 * A model's precision option, checked where it will run: bf16 products are a CPU option and only pay with
 * AVX512_BF16 (elsewhere the emulation is several times slower than f32), so anything else is refused, naming
 * what is missing.
 */
export function checkPrecision(precision: MatmulPrecision | undefined, device: Device | undefined): MatmulPrecision {
  const p = precision ?? 'f32';
  if (p !== 'f32' && p !== 'bf16') throw invalid(`precision must be 'f32' or 'bf16', not ${JSON.stringify(p)}`);
  if (p === 'f32') return p;
  if (device !== undefined && device !== 'cpu') throw new TinyEmoError('UNSUPPORTED', `bf16 precision is a CPU option; the model is to run on ${device}`);
  const info = binding().info();
  const features = info.cpuFeatures.split(' ');
  if (!features.includes('avx512_bf16') || info.isa !== 'avx512') {
    throw new TinyEmoError('UNSUPPORTED', `bf16 precision needs a CPU with AVX512_BF16 and the avx512 kernels (this one: ${info.isa} kernels; ${features.join(' ')}); use f32`);
  }
  return p;
}

/**
 * A weight [N, K] packed once into the layout the CPU GEMM reads, for a weight used in many products (a vision
 * tower's layers): the products skip the packing they would otherwise redo on every call. In f32 it holds about
 * as many bytes as an f32 weight (twice a 16-bit one), and the results are the same bits as with the weight
 * itself for more than 48 rows of A; in bf16, half that, and the products are bf16's (see MatmulPrecision).
 * CPU only.
 */
export class PackedWeight {
  private constructor(
    /** f32 [ceil(N / width), K, width], or bf16 pairs along K: [ceil(N / width), ceil(K / 2), 2 * width]. */
    readonly packed: Tensor<'f32' | 'bf16'>,
    readonly n: number,
    readonly k: number,
  ) {}

  /** Packs `w` [N, K] (f32, f16 or bf16, on the CPU) for products in `precision`; `w` itself is left as it is. */
  static pack(w: Tensor, precision: MatmulPrecision = 'f32'): PackedWeight {
    expectTensor(w, 'w');
    expectDType(w, 'w', ['f32', 'f16', 'bf16']);
    expectNdim(w, 'w', 2);
    if (w.device !== 'cpu') throw invalid(`only a CPU weight can be packed (this one is on ${w.device})`);
    if (precision !== 'f32' && precision !== 'bf16') throw invalid(`precision must be 'f32' or 'bf16', not ${JSON.stringify(precision)}`);
    const [n, k] = w.shape;
    const width = binding().gemmPackWidth();
    const panels = Math.ceil(n / width);
    const packed = precision === 'bf16' ? Tensor.empty([panels, Math.ceil(k / 2), 2 * width], 'bf16') : Tensor.empty([panels, k, width], 'f32');
    try {
      binding().gemmPackB(w.handle, packed.handle, false);
    } catch (e) {
      packed.dispose();
      throw e;
    }
    return new PackedWeight(packed, n, k);
  }

  get precision(): MatmulPrecision {
    return this.packed.dtype === 'bf16' ? 'bf16' : 'f32';
  }

  get shape(): [number, number] {
    return [this.n, this.k];
  }

  dispose(): void {
    this.packed.dispose();
  }
}

function planPacked(a: Tensor, b: PackedWeight, opts: GemmOptions): Planned<Tensor<'f32'>> {
  expectTensor(a, 'a');
  expectDType(a, 'a', ['f32']);
  expectNdim(a, 'a', 2);
  if (opts.bTrans) throw invalid('gemm: a packed weight cannot be transposed');
  const aTrans = opts.aTrans ?? false;
  const [m, k] = aTrans ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  if (k !== b.k) throw invalid(`gemm: a [${a.shape.join(', ')}] and the packed b [${b.n}, ${b.k}] disagree on K`);
  const { alpha, beta, bias, act } = epilogue(opts, b.n);
  const out = output(opts.out, 'out', [m, b.n], 'f32', a) as Tensor<'f32'>;
  return {
    result: out,
    owned: opts.out ? [] : [out],
    invoke: (async) => binding().gemmPacked(a.handle, b.packed.handle, bias?.handle ?? null, out.handle, aTrans, alpha, beta, act, async),
  };
}

/** The options applied after the product, checked: alpha, beta (needs out), a bias [n], the activation. */
function epilogue(opts: GemmOptions, n: number): { alpha: number; beta: number; bias: Tensor<'f32'> | undefined; act: number } {
  const alpha = finiteNumber(opts.alpha ?? 1, 'alpha');
  const beta = finiteNumber(opts.beta ?? 0, 'beta');
  if (beta !== 0 && opts.out === undefined) throw invalid('beta != 0 needs an `out` tensor to accumulate into');
  const bias = opts.bias;
  if (bias !== undefined) {
    expectTensor(bias, 'bias');
    expectDType(bias, 'bias', ['f32']);
    expectShape(bias, 'bias', [n]);
  }
  return { alpha, beta, bias, act: activationCode(opts.activation) };
}

function plan(a: Tensor, b: Tensor | PackedWeight, opts: GemmOptions): Planned<Tensor<'f32'>> {
  if (b instanceof PackedWeight) return planPacked(a, b, opts);
  expectTensor(a, 'a');
  expectTensor(b, 'b');
  expectDType(a, 'a', ['f32']);
  expectDType(b, 'b', ['f32', 'f16', 'bf16']);
  expectNdim(a, 'a', 2);
  expectNdim(b, 'b', 2);
  const aTrans = opts.aTrans ?? false;
  const bTrans = opts.bTrans ?? false;
  const [m, k] = aTrans ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [n, kb] = bTrans ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k !== kb) throw invalid(`gemm: a [${a.shape.join(', ')}] and b [${b.shape.join(', ')}] disagree on K`);
  const { alpha, beta, bias, act } = epilogue(opts, n);
  const out = output(opts.out, 'out', [m, n], 'f32', a) as Tensor<'f32'>;
  return {
    result: out,
    owned: opts.out ? [] : [out],
    invoke: (async) => binding().gemm(a.handle, b.handle, bias?.handle ?? null, out.handle, aTrans, bTrans, alpha, beta, act, async),
  };
}

const gemmOp = defineOp(plan);

/** C = act(alpha * A.B^T + bias + beta * C), off the event loop. B may be f32, f16 or bf16, or packed. */
export const gemm: (a: Tensor<'f32'>, b: Tensor | PackedWeight, opts?: GemmOptions) => Promise<Tensor<'f32'>> = (a, b, opts = {}) => gemmOp.async(a, b, opts);
/** The same, on the calling thread. */
export const gemmSync: (a: Tensor<'f32'>, b: Tensor | PackedWeight, opts?: GemmOptions) => Tensor<'f32'> = (a, b, opts = {}) => gemmOp.sync(a, b, opts);
/** The same, queued on an OpBatch (computed when the batch runs). */
export const gemmQueued: (batch: OpBatch, a: Tensor<'f32'>, b: Tensor | PackedWeight, opts?: GemmOptions) => Tensor<'f32'> = (batch, a, b, opts = {}) =>
  gemmOp.queued(batch, a, b, opts);

export interface LinearBackwardOptions {
  /** Where dL/dx goes ([T, in]): overwritten, or added to with `accumulateDx`. Absent: allocated. null: not computed. */
  dx?: Tensor<'f32'> | null;
  accumulateDx?: boolean;
  /** dL/dW [out, in] (f32): the product is added to it (gradients accumulate over a batch). Absent: not computed. */
  dw?: Tensor<'f32'>;
  /** dL/db [out]: the column sums of dy are added to it. */
  db?: Tensor<'f32'>;
}

/**
 * The backward of y = x·Wᵀ (+ b), as products on the GEMM kernels: dx = dy·W, dW += dyᵀ·x, db += 1ᵀ·dy.
 * x [T, in] f32, w [out, in] (f32, f16 or bf16), dy [T, out]. Returns dx (undefined when not asked for).
 */
export function linearBackwardSync(x: Tensor<'f32'>, w: Tensor, dy: Tensor<'f32'>, opts: LinearBackwardOptions = {}): Tensor<'f32'> | undefined {
  let dx: Tensor<'f32'> | undefined;
  if (opts.dx !== null) dx = gemmSync(dy, w, { bTrans: true, ...(opts.dx ? { out: opts.dx, beta: opts.accumulateDx ? 1 : 0 } : {}) });
  if (opts.dw) gemmSync(dy, x, { aTrans: true, bTrans: true, out: opts.dw, beta: 1 });
  if (opts.db) {
    const T = dy.shape[0];
    const ones = Tensor.from(new Float32Array(T).fill(1), [1, T], dy.device);
    const row = opts.db.reshape([1, opts.db.shape[0]]);
    try {
      gemmSync(ones, dy, { bTrans: true, out: row, beta: 1 });
    } finally {
      ones.dispose();
      row.dispose();
    }
  }
  return dx;
}
