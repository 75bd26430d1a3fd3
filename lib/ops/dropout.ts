/**
 * Inverted dropout with masks that are a pure function of (seed, element): the backward applies the same op,
 * with the same seed, to the gradient instead of keeping the mask, and both devices drop the same elements.
 */
import { invalid } from '../errors';
import { binding } from '../native';
import { Tensor } from '../tensor';
import { expectDType, expectShape, expectTensor, finiteNumber, output } from './check';
import { Planned, defineOp } from './run';

export interface Dropout {
  /** Drop probability in [0, 1). */
  p: number;
  /** The mask is a pure function of (seed, element). */
  seed: number | bigint;
}

/** [p, seed] checked for the binding. */
export function dropoutArgs(d: Dropout | undefined): [number, number | bigint] {
  if (d === undefined) return [0, 0];
  const p = finiteNumber(d.p, 'dropout.p');
  if (p < 0 || p >= 1) throw invalid('dropout.p must be in [0, 1)');
  const seed = d.seed;
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed >= 1n << 64n) throw invalid('dropout.seed must fit in 64 bits');
  } else if (!Number.isSafeInteger(seed) || seed < 0) {
    throw invalid('dropout.seed must be a non-negative safe integer or a bigint');
  }
  return [p, seed];
}

export interface DropoutApplyOptions {
  /** Where to write (allocated when absent; may be x itself). */
  out?: Tensor<'f32'>;
  /** Add into `out` instead of overwriting it (needs `out`). */
  accumulate?: boolean;
}

function plan(x: Tensor<'f32'>, d: Dropout, opts: DropoutApplyOptions = {}): Planned<Tensor<'f32'>> {
  expectTensor(x, 'x');
  expectDType(x, 'x', ['f32']);
  const [p, seed] = dropoutArgs(d);
  if (opts.accumulate && !opts.out) throw invalid('dropoutApply: accumulate needs an `out` tensor');
  if (opts.out) expectShape(opts.out, 'out', x.shape);
  const y = output(opts.out, 'out', x.shape, 'f32', x) as Tensor<'f32'>;
  return {
    result: y,
    owned: opts.out ? [] : [y],
    invoke: (async) => binding().dropoutApply(x.handle, p, seed, opts.accumulate ?? false, y.handle, async),
  };
}

const op = defineOp(plan);

/** x ⊙ mask (or out += x ⊙ mask), the mask 0 or 1/(1-p) per element of x's flat index. */
export const dropoutApply = op.async;
export const dropoutApplySync = op.sync;
