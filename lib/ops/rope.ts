/** Rotary position embedding (rotate-half layout, as Hugging Face's LLaMA, OpenELM, Phi, Qwen2). */
import { TinyEmoError, invalid } from '../errors';
import { binding } from '../native';
import { Tensor } from '../tensor';
import { expectDType, expectNdim, expectTensor, finiteNumber, output } from './check';
import { Planned, defineOp } from './run';

export interface RopeOptions {
  /** [S] or [B, S] positions (i32 or i64); default offset + s. */
  positions?: Tensor<'i32' | 'i64'>;
  /** First position when `positions` is absent (the KV cache length). Default 0. */
  offset?: number;
  /** Dims rotated, from the start of each head (Phi-2: 32 of 80). Default all. */
  rotaryDim?: number;
  /** Base of the frequencies. Default 10000. */
  theta?: number;
  /** Where to write; pass x itself to rotate in place. */
  out?: Tensor<'f32'>;
}

function plan(x: Tensor<'f32'>, opts: RopeOptions = {}): Planned<Tensor<'f32'>> {
  expectTensor(x, 'x');
  expectDType(x, 'x', ['f32']);
  expectNdim(x, 'x', 4);
  const d = x.shape[3];
  const rotaryDim = opts.rotaryDim ?? d;
  if (!Number.isInteger(rotaryDim) || rotaryDim < 2 || rotaryDim % 2 !== 0 || rotaryDim > d) {
    throw invalid(`rotaryDim ${rotaryDim} must be even and in 2..${d}`);
  }
  const offset = opts.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0) throw invalid('offset must be a non-negative integer');
  const theta = finiteNumber(opts.theta ?? 10000, 'theta');
  const pos = opts.positions;
  if (pos !== undefined) {
    expectTensor(pos, 'positions');
    expectDType(pos, 'positions', ['i32', 'i64']);
    if (pos.shape[pos.ndim - 1] !== x.shape[1] || pos.ndim > 2) {
      throw new TinyEmoError('SHAPE_MISMATCH', `positions [${pos.shape.join(', ')}] must be [S] or [B, S] for x [${x.shape.join(', ')}]`);
    }
  }
  const y = output(opts.out, 'out', x.shape, 'f32', x) as Tensor<'f32'>;
  return {
    result: y,
    owned: opts.out ? [] : [y],
    invoke: (async) => binding().rope(x.handle, pos?.handle ?? null, offset, rotaryDim, theta, y.handle, async),
  };
}

const ropeOp = defineOp(plan);

/** Rotates x [B, S, H, D] by position. */
export const rope = ropeOp.async;
export const ropeSync = ropeOp.sync;
export const ropeQueued = ropeOp.queued;

/**
 * Rotary's backward: a rotation's gradient is the rotation by the opposite angle, so dL/dx is dL/dy rotated at
 * the negated positions (sin is odd and cos even, so this is exact). Runs the forward kernel with positions
 * -(offset + s); `out` may be dy itself.
 */
export function ropeBackwardSync(dy: Tensor<'f32'>, opts: Omit<RopeOptions, 'positions'> & { offset?: number } = {}): Tensor<'f32'> {
  const S = dy.shape[1] ?? 0;
  const offset = opts.offset ?? 0;
  const neg = Tensor.fromArray(
    'i32',
    Int32Array.from({ length: S }, (_, s) => -(offset + s)),
    [S],
    dy.device,
  );
  try {
    return ropeSync(dy, { ...opts, offset: 0, positions: neg });
  } finally {
    neg.dispose();
  }
}
