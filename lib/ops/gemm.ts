/** Matrix products: C = act(alpha * A.B^T + bias + beta * C), B in nn.Linear's [N, K] layout. */
import { invalid } from '../errors';
import { binding } from '../native';
import { Tensor } from '../tensor';
import { Activation, activationCode } from './activation';
import { expectDType, expectNdim, expectShape, expectTensor, finiteNumber, output } from './check';
import { Planned, defineOp } from './run';

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

function plan(a: Tensor, b: Tensor, opts: GemmOptions): Planned<Tensor<'f32'>> {
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
  const alpha = finiteNumber(opts.alpha ?? 1, 'alpha');
  const beta = finiteNumber(opts.beta ?? 0, 'beta');
  if (beta !== 0 && opts.out === undefined) throw invalid('beta != 0 needs an `out` tensor to accumulate into');
  const bias = opts.bias;
  if (bias !== undefined) {
    expectTensor(bias, 'bias');
    expectDType(bias, 'bias', ['f32']);
    expectShape(bias, 'bias', [n]);
  }
  const act = activationCode(opts.activation);
  const out = output(opts.out, 'out', [m, n], 'f32', a) as Tensor<'f32'>;
  return {
    result: out,
    owned: opts.out ? [] : [out],
    invoke: (async) => binding().gemm(a.handle, b.handle, bias?.handle ?? null, out.handle, aTrans, bTrans, alpha, beta, act, async),
  };
}

const gemmOp = defineOp(plan);

/** C = act(alpha * A.B^T + bias + beta * C), off the event loop. B may be f32, f16 or bf16. */
export const gemm: (a: Tensor<'f32'>, b: Tensor, opts?: GemmOptions) => Promise<Tensor<'f32'>> = (a, b, opts = {}) => gemmOp.async(a, b, opts);
/** The same, on the calling thread. */
export const gemmSync: (a: Tensor<'f32'>, b: Tensor, opts?: GemmOptions) => Tensor<'f32'> = (a, b, opts = {}) => gemmOp.sync(a, b, opts);
